"""Operators, one per module; registered in order, unregistered in reverse."""

from .bake_take import FACEMESH_OT_bake_take
from .build_rig import FACEMESH_OT_build_rig

classes = (FACEMESH_OT_build_rig, FACEMESH_OT_bake_take)


def register():
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    import bpy

    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
