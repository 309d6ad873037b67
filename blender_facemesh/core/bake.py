"""Turning a take into per-channel keyframe arrays at the scene's frame rate (no bpy here).

Blender code only writes what this module computes, so the resampling, the choice for frames
without a face and quaternion continuity are tested in plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .filters import continuous_quaternions
from .geometry import matrix_to_quaternion, rotation_part

MISSING_CHOICES = ("HOLD", "BLEND", "EMPTY")

# camera space (x right, y up, z toward the viewer) -> Blender world (x right, z up, -y toward
# the viewer): a character facing -Y turns the way the performer facing the camera turns.
CAMERA_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class BakeCurves:
    frames: np.ndarray        # (M,) float, scene frames
    blendshapes: np.ndarray   # (M, 52), NaN where a frame is left empty
    head_quaternion: np.ndarray  # (M, 4) w, x, y, z in Blender world axes, sign-continuous
    present: np.ndarray       # (M,) bool, a tracked face at (or next to) this frame


def resample(t: np.ndarray, values: np.ndarray, present: np.ndarray, scene_fps: float,
             frame_start: int = 1, missing: str = "HOLD") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values sampled on each scene frame covered by the take, by linear interpolation of the
    frames that had a face. ``missing``: HOLD keeps the last value through gaps, BLEND
    interpolates across them, EMPTY leaves NaN (no key)."""
    if missing not in MISSING_CHOICES:
        raise ValueError(f"missing must be one of {MISSING_CHOICES}")
    t = np.asarray(t, np.float64)
    values = np.asarray(values, np.float64).reshape(len(t), -1)
    if not present.any():
        raise ValueError("the take has no frame with a face: nothing to bake")
    t0 = t[0]
    n = int(np.floor((t[-1] - t0) * scene_fps + 1e-6)) + 1
    frames = frame_start + np.arange(n, dtype=np.float64)
    ts = t0 + (frames - frame_start) / scene_fps
    tp, vp = t[present], values[present]
    out = np.empty((n, values.shape[1]))
    for c in range(values.shape[1]):
        out[:, c] = np.interp(ts, tp, vp[:, c])
    # which scene frames fall in a gap (between two frames without a face, or outside tracked range)
    idx = np.clip(np.searchsorted(t, ts, side="right") - 1, 0, len(t) - 1)
    nxt = np.clip(idx + 1, 0, len(t) - 1)
    near_face = present[idx] | (present[nxt] & (np.abs(t[nxt] - ts) < 0.5 / scene_fps))
    if missing == "HOLD":
        last = np.maximum.accumulate(np.where(present, np.arange(len(t)), -1))
        held = last[idx]
        first = int(np.argmax(present))
        held = np.where(held < 0, first, held)
        gap = ~near_face
        out[gap] = values[held[gap]]
    elif missing == "EMPTY":
        out[~near_face] = np.nan
    return frames, out, near_face


def take_to_curves(take, scene_fps: float, frame_start: int = 1, face_id: int | None = None,
                   missing: str = "HOLD", rest: np.ndarray | None = None) -> BakeCurves:
    """Everything the baker writes for one face of a take. ``rest``: the head rotation (3x3,
    camera space) that counts as 'no rotation'; default the first tracked frame's."""
    track = take.face_track(face_id)
    present = track["present"]
    rots = np.array([rotation_part(m) if ok else np.eye(3) for m, ok in zip(track["head_matrix"], present)])
    if rest is None:
        rest = rots[int(np.argmax(present))]
    c = CAMERA_TO_BLENDER
    quats = np.array([matrix_to_quaternion(c @ (r @ rest.T) @ c.T) for r in rots])
    quats[present] = continuous_quaternions(quats[present])
    merged = np.concatenate([np.nan_to_num(track["blendshapes"]), np.nan_to_num(quats)], axis=1)
    frames, vals, near = resample(take.t, merged, present, scene_fps, frame_start, missing)
    # interpolating sign-continuous quaternions keeps them continuous; only the length drifts
    q = vals[:, 52:]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return BakeCurves(frames, vals[:, :52], q, near)
