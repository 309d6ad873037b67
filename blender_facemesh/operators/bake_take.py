import bpy


class FACEMESH_OT_bake_take(bpy.types.Operator):
    """Bake a saved take (.npz or .json) onto the targets: shape keys through the mapping,
    head, neck and eye bones; re-baking replaces the keys"""

    bl_idname = "facemesh.bake_take"
    bl_label = "Bake Take"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Take", subtype="FILE_PATH",
                                       description="Take file; empty: the scene's most recent take")
    character: bpy.props.StringProperty(name="Character", description="Character object; empty: the scene's")
    face: bpy.props.StringProperty(name="Face Mesh", description="Target mesh; empty: the scene's target")
    rig: bpy.props.StringProperty(name="Armature", description="Target armature; empty: the scene's target")
    filter_glob: bpy.props.StringProperty(default="*.npz;*.json", options={"HIDDEN"})

    def execute(self, context):
        from ..blender.takes import bake_with_scene, describe, list_take, report_level
        from ..core.errors import FacemeshError
        from ..core.take import Take

        s = context.scene.facemesh
        before = s.character, s.target_mesh, s.target_rig  # a failed bake leaves the scene's targets as they were
        for attr, kinds, prop in (("character", ("ARMATURE", "MESH", "EMPTY"), "character"),
                                  ("face", ("MESH",), "target_mesh"), ("rig", ("ARMATURE",), "target_rig")):
            name = getattr(self, attr)
            if name:
                obj = bpy.data.objects.get(name)
                if obj is None or obj.type not in kinds:
                    kind = "character" if attr == "character" else kinds[0].lower()
                    self.report({"ERROR"}, f"no target: there is no {kind} named {name!r}; "
                                           "build the capture rig or pick your own mesh and armature")
                    return {"CANCELLED"}
                setattr(s, prop, obj)
        path = self.filepath or s.last_take
        if not path:
            self.report({"ERROR"}, "no take to bake: pick a take file, or record or process one first")
            return {"CANCELLED"}
        try:
            take = Take.load(bpy.path.abspath(path))
            done = bake_with_scene(context, take, path=bpy.path.abspath(path))
        except FacemeshError as exc:
            s.character, s.target_mesh, s.target_rig = before
            self.report({"ERROR"}, f"cannot bake: {exc}")
            return {"CANCELLED"}
        list_take(context.scene, take, bpy.path.abspath(path))
        self.report(report_level(done), describe(done))
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}
