import bpy


class FACEMESH_OT_build_rig(bpy.types.Operator):
    """Create the capture rig: neck and head bones and the 468-vertex face with 52 ARKit shape keys"""

    bl_idname = "facemesh.build_rig"
    bl_label = "Build Capture Rig"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..blender.options import model_path
        from ..blender.rig import build_rig
        from ..core.capture.model import ModelError, load_model

        try:
            model = load_model(model_path(context))
        except ModelError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if context.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        rig, face = build_rig(context, model)
        self.report({"INFO"}, f"built {rig.name} and {face.name}")
        return {"FINISHED"}
