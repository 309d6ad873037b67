"""Blender classes of this package; filled in with the Blender add-on (issue 3)."""

classes = ()


def register():
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    import bpy

    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
