"""Add-on preferences: the machine-wide choices (model file, camera, delegate, live smoothing)."""

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .core.camera import DEFAULT_FOV_DEG
from .properties import FACEMESH_PG_smoothing, draw_smoothing

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
    live_smoothing: PointerProperty(type=FACEMESH_PG_smoothing, name="Live Smoothing",
                                    description="What the live rig shows (a causal filter: it cannot look ahead); "
                                                "recordings keep the raw values and bakes use the scene's smoothing")
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
        draw_smoothing(layout, self.live_smoothing, "Live Smoothing")


classes = (FACEMESH_preferences,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
