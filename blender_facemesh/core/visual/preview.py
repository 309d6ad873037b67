"""The live preview picture in Blender's pixel layout. The picture itself is the overlay drawing
(core/overlay.py), made on the worker thread; the main thread only copies these pixels into
a Blender image."""

from __future__ import annotations

import numpy as np


def to_blender_pixels(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, top row first -> flat float32 RGBA, bottom row first (Blender's order)."""
    h, w = rgb.shape[:2]
    rgba = np.empty((h, w, 4), np.float32)
    rgba[..., :3] = rgb[::-1] * np.float32(1 / 255)
    rgba[..., 3] = 1.0
    return rgba.ravel()
