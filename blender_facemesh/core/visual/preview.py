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


def face_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int = 64, margin: float = 0.25) -> np.ndarray | None:
    """A square (size, size, 3) uint8 picture of one face: its landmarks' box (normalised image
    coordinates) with a margin; None when the face is off the picture or the landmarks are absent."""
    import cv2

    lm = np.asarray(landmarks, np.float64)[:, :2]
    if not np.isfinite(lm).all():
        return None
    h, w = rgb.shape[:2]
    x0, y0 = lm.min(axis=0) * (w, h)
    x1, y1 = lm.max(axis=0) * (w, h)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a, b = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = int(round(side))
    if n < 4 or a >= w or b >= h or a + n <= 0 or b + n <= 0:
        return None
    canvas = np.zeros((n, n, 3), np.uint8)  # parts past the picture's edge stay black
    sx0, sy0, sx1, sy1 = max(a, 0), max(b, 0), min(a + n, w), min(b + n, h)
    canvas[sy0 - b:sy1 - b, sx0 - a:sx1 - a] = rgb[sy0:sy1, sx0:sx1]
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def face_thumbnail(rgb: np.ndarray, landmarks: np.ndarray, size: int = 64) -> np.ndarray | None:
    """:func:`face_crop` in Blender's pixel layout (a performer's picture in the panel)."""
    crop = face_crop(rgb, landmarks, size)
    return None if crop is None else to_blender_pixels(crop)


def performer_crops(take, size: int = 64, settle: int = 15) -> dict:
    """Face id -> a picture of that face where the take first sees it clearly (``settle`` frames
    into its first stretch, or half way through a shorter one), read from the take's video when
    it is still there and the take has landmarks; {} otherwise (phones, CSVs, moved videos).
    The video is read like tracking reads it (rotation included) and only up to those frames."""
    from pathlib import Path

    from ..capture.sources import SourceError, VideoFileSource

    src = take.source or {}
    video = Path(str(src.get("name", "")))
    if src.get("kind") not in ("video", "simulated") or not video.is_file() or not take.has("landmarks"):
        return {}
    ids = take.face_ids
    want: dict[int, list] = {}  # frame number -> [(face id, row, slot)]
    for fid in np.unique(ids[ids >= 0]).tolist():
        rows, cols = np.nonzero(ids == fid)
        k = min(len(rows) // 2, settle)
        want.setdefault(int(take.frame_index[rows[k]]), []).append((int(fid), rows[k], cols[k]))
    out = {}
    try:
        with VideoFileSource(video) as vid:
            for n in range(max(want) + 1):
                got = vid.read()
                if got is None:
                    break
                for fid, row, col in want.get(n, ()):
                    crop = face_crop(got[1], take.landmarks[row, col], size)
                    if crop is not None:
                        out[fid] = crop
    except SourceError:
        pass  # an unreadable video: the performers are listed without pictures
    return out
