"""bpy glue: building the capture rig and writing keyframes. Thin on purpose: every number it
writes is computed in ``core`` (plain Python, tested without Blender)."""
