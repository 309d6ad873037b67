"""The sidebar panel (3D viewport, N panel, tab "FaceMesh") and the mapping list."""

from .panel import (FACEMESH_PT_bake, FACEMESH_PT_capture, FACEMESH_PT_mapping, FACEMESH_PT_performer,
                    FACEMESH_PT_target, FACEMESH_UL_mappings, FACEMESH_UL_performers, FACEMESH_UL_takes,
                    FACEMESH_UL_undriven)

classes = (FACEMESH_UL_mappings, FACEMESH_UL_performers, FACEMESH_UL_takes, FACEMESH_UL_undriven, FACEMESH_PT_capture, FACEMESH_PT_target,
           FACEMESH_PT_performer, FACEMESH_PT_mapping, FACEMESH_PT_bake)


def register():
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    import bpy

    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
