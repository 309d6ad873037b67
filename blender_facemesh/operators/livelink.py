import bpy


class FACEMESH_OT_import_livelink(bpy.types.Operator):
    """Import a Live Link Face CSV (Epic's iPhone app) as a take, and bake it onto the targets"""

    bl_idname = "facemesh.import_livelink"
    bl_label = "Import Live Link Face CSV"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})
    fps: bpy.props.FloatProperty(name="Timecode fps", min=0.0, default=0.0,
                                 description="The recording's timecode rate; 0: read it from the timecodes")
    bake: bpy.props.BoolProperty(name="Bake", default=True)

    def execute(self, context):
        from ..blender.takes import bake_with_scene, describe, save_take
        from ..core.errors import FacemeshError
        from ..core.formats.livelink import read_csv

        try:
            take = read_csv(bpy.path.abspath(self.filepath), fps=self.fps or None)
        except FacemeshError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        try:
            path = save_take(take, context.scene, stem="livelink")
        except OSError as exc:
            self.report({"ERROR"}, f"could not save the take: {exc}")
            return {"CANCELLED"}
        text = f"imported {len(take)} frames at {take.fps:g} fps as {path.name}"
        if self.bake:
            try:
                done = bake_with_scene(context, take, path=path)
                text += "; " + describe(done)
            except FacemeshError as exc:
                self.report({"WARNING"}, f"{text}; not baked: {exc}")
                return {"FINISHED"}
        self.report({"WARNING"} if "WARNING:" in text else {"INFO"}, text)
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class FACEMESH_OT_export_livelink(bpy.types.Operator):
    """Export the selected take as a Live Link Face CSV, for Unreal, Maya or Faceit"""

    bl_idname = "facemesh.export_livelink"
    bl_label = "Export Live Link Face CSV"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})
    take: bpy.props.StringProperty(name="Take", subtype="FILE_PATH",
                                   description="Take file; empty: the take selected in the list")

    def _source(self, context):
        s = context.scene.facemesh
        if self.take:
            return self.take
        if 0 <= s.take_index < len(s.takes):
            return s.takes[s.take_index].filepath
        return s.last_take

    def execute(self, context):
        from ..core.errors import FacemeshError
        from ..core.formats.livelink import write_csv
        from ..core.take import Take

        src = self._source(context)
        if not src:
            self.report({"ERROR"}, "no take to export: record, process or import one first")
            return {"CANCELLED"}
        import os

        dest = bpy.path.abspath(self.filepath)
        if not self.filepath or os.path.isdir(dest):
            self.report({"ERROR"}, "give the .csv file to write")
            return {"CANCELLED"}
        try:
            from ..blender.options import bake_smoothing
            from ..core.solve.smoothing import smooth_take

            take = smooth_take(Take.load(bpy.path.abspath(src)), bake_smoothing(context.scene))
            path = write_csv(take, dest)
        except FacemeshError as exc:
            self.report({"ERROR"}, f"cannot export: {exc}")
            return {"CANCELLED"}
        except OSError as exc:
            self.report({"ERROR"}, f"cannot write {self.filepath}: {exc.strerror}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {path}")
        return {"FINISHED"}

    def invoke(self, context, event):
        import os

        src = self._source(context)
        if not self.filepath and src:
            self.filepath = os.path.splitext(bpy.path.abspath(src))[0] + ".csv"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}
