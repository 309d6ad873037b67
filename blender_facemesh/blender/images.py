"""Pictures the add-on shows in the panel (the live preview, performers' faces) as Blender images."""

from __future__ import annotations

import bpy


def show_pixels(name: str, width: int, height: int, pixels):
    """Put flat RGBA float pixels (Blender's order: core.visual.preview.to_blender_pixels) into
    the image ``name``, made or resized as needed; its preview icon (what the panel draws) is
    refreshed. Returns the image."""
    img = bpy.data.images.get(name)
    if img is None:
        img = bpy.data.images.new(name, width, height)
    elif tuple(img.size) != (width, height):
        img.scale(width, height)
    img.pixels.foreach_set(pixels)
    img.update()
    if img.preview is not None:
        img.preview.reload()
    return img
