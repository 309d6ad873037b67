"""Add-on preferences: the machine-wide choices (model file, camera, delegate, smoothing)."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .core.camera import DEFAULT_FOV_DEG

DELEGATE_ITEMS = [("AUTO", "Auto", "GPU where MediaPipe can use it here, else CPU (the reason is shown)"),
                  ("GPU", "GPU", "MediaPipe's OpenGL ES delegate; falls back to CPU with a reason"),
                  ("CPU", "CPU", "XNNPACK on the CPU")]


class FACEMESH_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    model_path: StringProperty(
        name="Model File", subtype="FILE_PATH",
        description="face_landmarker.task; empty: the copy bundled with the add-on (or the user cache)")
    default_camera: IntProperty(name="Default Camera", min=0, max=15, default=0)
    delegate: EnumProperty(name="Delegate", items=DELEGATE_ITEMS, default="AUTO")
    fov_deg: FloatProperty(name="Camera Field of View", min=10.0, max=150.0, default=DEFAULT_FOV_DEG,
                           description="Vertical field of view of the camera, for the head pose (degrees)")
    smoothing: BoolProperty(name="Smoothing", default=True, description="One Euro filters on the tracked channels")
    expression_cutoff: FloatProperty(name="Expression Cut-off (Hz)", min=0.05, max=30.0, default=3.0,
                                     description="Lower = smoother expressions when the face is still")
    expression_beta: FloatProperty(name="Expression Speed", min=0.0, max=50.0, default=1.0,
                                   description="Higher = less lag on fast expressions")
    pose_cutoff: FloatProperty(name="Head Cut-off (Hz)", min=0.05, max=30.0, default=1.0)
    pose_beta: FloatProperty(name="Head Speed", min=0.0, max=50.0, default=0.3)
    preview_rate: FloatProperty(name="Preview Updates per Second", min=0.0, max=30.0, default=4.0,
                                description="How often the preview image is refreshed (0: off)")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "model_path")
        layout.prop(self, "default_camera")
        layout.prop(self, "delegate")
        layout.prop(self, "fov_deg")
        layout.prop(self, "preview_rate")
        col = layout.column(heading="Smoothing")
        col.prop(self, "smoothing", text="")
        sub = col.column()
        sub.active = self.smoothing
        for name in ("expression_cutoff", "expression_beta", "pose_cutoff", "pose_beta"):
            sub.prop(self, name)


classes = (FACEMESH_preferences,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
