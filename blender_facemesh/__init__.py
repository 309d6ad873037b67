"""blender_facemesh: facial motion capture for Blender with MediaPipe FaceLandmarker.

The capture core lives in ``core/`` and never imports bpy, so ``python -m blender_facemesh``
works without Blender. The Blender side registers only when Blender loads the add-on;
``unregister()`` stops any capture and removes every class, property, timer and handler.
"""


def register():
    from . import operators, preferences, properties, ui
    from .blender import live, recovery

    properties.register()  # first: the preferences hold one of its groups
    preferences.register()
    operators.register()
    ui.register()
    live.register()
    recovery.register()


def unregister():
    from . import operators, preferences, properties, ui
    from .blender import live, recovery

    recovery.unregister()
    live.unregister()
    ui.unregister()
    operators.unregister()
    preferences.unregister()
    properties.unregister()
