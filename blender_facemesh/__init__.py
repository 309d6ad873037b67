"""blender_facemesh: facial motion capture for Blender with MediaPipe FaceLandmarker.

The capture core lives in ``core/`` and never imports bpy, so ``python -m blender_facemesh``
works without Blender. The Blender side registers only when Blender loads the add-on.
"""


def register():
    from . import operators, ui

    operators.register()
    ui.register()


def unregister():
    from . import operators, ui

    ui.unregister()
    operators.unregister()
