"""The pinhole camera every stage shares: field of view, focal length, projection to pixels.

Conventions (MediaPipe's): camera at the origin looking down -Z, +X right, +Y up, units cm;
principal point at the image centre; continuous pixel coordinates (pixel i spans [i, i+1)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_FOV_DEG = 63.0  # vertical field of view MediaPipe's geometry pipeline assumes
NEAR_CM = 1.0           # MediaPipe's near plane
PHONE_DISTANCE_CM = 50.0  # where a head is put when its source gives angles only (iPhone apps, their CSVs)

# camera space (x right, y up, z toward the viewer) -> Blender world (x right, z up, -y toward
# the viewer): a character facing -Y turns the way the performer facing the camera turns.
CAMERA_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def focal_px(height: int, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Pinhole focal length in pixels for a vertical field of view."""
    return (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def fov_from_focal(height: int, focal: float) -> float:
    """Vertical field of view (degrees) of a focal length in pixels."""
    return math.degrees(2.0 * math.atan((height / 2.0) / focal))


def project(points: np.ndarray, size: tuple[int, int], fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Camera-space points (..., 3) in cm -> continuous pixel coordinates (..., 2)."""
    w, h = size
    f = focal_px(h, fov_deg)
    p = np.asarray(points, dtype=np.float64)
    depth = -p[..., 2]
    return np.stack([w / 2.0 + f * p[..., 0] / depth, h / 2.0 - f * p[..., 1] / depth], axis=-1)


@dataclass(frozen=True)
class Frustum:
    """The near plane of a perspective camera, as MediaPipe sets it up."""

    left: float
    right: float
    bottom: float
    top: float
    near: float

    @classmethod
    def for_image(cls, width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG, near: float = NEAR_CM):
        h = 2.0 * near * np.tan(0.5 * np.radians(fov_deg))
        w = width * h / height
        return cls(-0.5 * w, 0.5 * w, -0.5 * h, 0.5 * h, near)
