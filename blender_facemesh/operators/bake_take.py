import bpy


class FACEMESH_OT_bake_take(bpy.types.Operator):
    """Bake a saved take (.npz or .json) into keyframes on the face's shape keys and the head bone"""

    bl_idname = "facemesh.bake_take"
    bl_label = "Bake Take"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Take", subtype="FILE_PATH")
    face: bpy.props.StringProperty(name="Face Mesh", default="FaceMesh Face")
    rig: bpy.props.StringProperty(name="Armature", default="FaceMesh Rig")
    head_bone: bpy.props.StringProperty(name="Head Bone", default="head")
    missing: bpy.props.EnumProperty(
        name="Frames Without a Face",
        items=[("HOLD", "Hold", "Keep the last tracked value"),
               ("BLEND", "Blend", "Interpolate across the gap"),
               ("EMPTY", "Leave Empty", "No keys where the face was lost")],
        default="HOLD")

    def execute(self, context):
        from ..blender.bake import bake_take
        from ..core.take import Take, TakeError

        face = bpy.data.objects.get(self.face) if self.face else None
        rig = bpy.data.objects.get(self.rig) if self.rig else None
        if face is None and rig is None:
            self.report({"ERROR"}, f"no target: neither {self.face!r} nor {self.rig!r} exists; "
                                   "build the capture rig or name your own mesh and armature")
            return {"CANCELLED"}
        if face is not None and (face.type != "MESH" or face.data.shape_keys is None):
            self.report({"ERROR"}, f"{face.name} has no shape keys: add ARKit-named shape keys or pick another mesh")
            return {"CANCELLED"}
        if rig is not None and (rig.type != "ARMATURE" or self.head_bone not in rig.pose.bones):
            self.report({"ERROR"}, f"{rig.name} is not an armature with a bone named {self.head_bone!r}")
            return {"CANCELLED"}
        try:
            take = Take.load(bpy.path.abspath(self.filepath))
            done = bake_take(context, take, face, rig, self.head_bone, missing=self.missing)
        except (TakeError, ValueError) as exc:
            self.report({"ERROR"}, f"cannot bake: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"baked {done['frames']} frames: {done['shape_keys']} shape-key keys, "
                              f"{done['head']} head keys")
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}
