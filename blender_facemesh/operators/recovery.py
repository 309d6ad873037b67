import bpy


class FACEMESH_OT_recording_recover(bpy.types.Operator):
    """Save an unfinished recording (left by a crash or a kill) as a take and add it to the
    take list; its journal is deleted once the take is saved"""

    bl_idname = "facemesh.recording_recover"
    bl_label = "Recover Recording"
    bl_options = {"REGISTER", "UNDO"}

    journal: bpy.props.StringProperty(name="Journal", subtype="FILE_PATH",
                                      description="The recording's journal (.recording); empty: the oldest found")
    bake: bpy.props.BoolProperty(name="Bake", default=False, description="Also bake it onto the character")

    def execute(self, context):
        from ..blender import recovery
        from ..blender.takes import bake_with_scene, describe, list_take, report_level
        from ..core.errors import FacemeshError
        from ..core.journal import recover

        path = self.journal or (str(recovery.found[0].journal) if recovery.found else "")
        if not path:
            self.report({"ERROR"}, "no unfinished recording was found")
            return {"CANCELLED"}
        try:
            take, dest = recover(path)
        except FacemeshError as exc:
            self.report({"ERROR"}, f"cannot recover: {exc}")
            return {"CANCELLED"}
        recovery.forget(path)
        list_take(context.scene, take, dest)
        text = f"recovered {len(take)} frames ({take.duration:.1f} s) as {dest}"
        level = {"INFO"}
        if self.bake:
            try:
                done = bake_with_scene(context, take, path=dest)
            except FacemeshError as exc:
                self.report({"WARNING"}, f"{text}; not baked: {exc}")
                return {"FINISHED"}
            text += "; " + describe(done)
            level = report_level(done)
        self.report(level, text)
        return {"FINISHED"}


class FACEMESH_OT_recording_discard(bpy.types.Operator):
    """Delete an unfinished recording's journal: its frames are gone for good"""

    bl_idname = "facemesh.recording_discard"
    bl_label = "Discard Recording"

    journal: bpy.props.StringProperty(name="Journal", subtype="FILE_PATH")

    def execute(self, context):
        from ..blender import recovery
        from ..core.errors import FacemeshError
        from ..core.journal import discard

        if not self.journal:
            self.report({"ERROR"}, "say which recording to discard")
            return {"CANCELLED"}
        try:
            discard(self.journal)
        except (FacemeshError, OSError) as exc:
            self.report({"ERROR"}, f"cannot discard: {exc}")
            return {"CANCELLED"}
        recovery.forget(self.journal)
        self.report({"INFO"}, f"discarded {self.journal}")
        return {"FINISHED"}

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)
