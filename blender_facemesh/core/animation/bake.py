"""Turning a take into per-channel keyframe arrays at the scene's frame rate (no bpy here).

Blender code only writes what this module computes, so the resampling, the choice for frames
without a face and quaternion continuity are tested in plain Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..camera import CAMERA_TO_BLENDER
from ..channels import ARKIT_INDEX
from ..errors import SettingsError
from ..solve.eyes import eye_rotations
from ..take import TakeError
from ..rotations import continuous_quaternions, matrix_to_quaternion, rotation_part

MISSING_CHOICES = ("HOLD", "BLEND", "EMPTY")


@dataclass
class BakeCurves:
    frames: np.ndarray        # (M,) float, scene frames
    blendshapes: np.ndarray   # (M, 52), NaN where a frame is left empty
    head_quaternion: np.ndarray  # (M, 4) w, x, y, z in Blender world axes, sign-continuous
    present: np.ndarray       # (M,) bool, a tracked face at (or next to) this frame
    head_location: np.ndarray | None = None  # (M, 3) metres, Blender world axes, from the rest


def pose_to_blender(head_matrices: np.ndarray, rest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Head poses (N, 4, 4; canonical -> camera, cm) -> rotations as quaternions (N, 4) and
    moves in metres (N, 3), both in Blender world axes and relative to ``rest`` (a 4x4 pose
    that counts as 'no rotation, no move'; default: none, i.e. camera axes)."""
    m = np.asarray(head_matrices, np.float64).reshape(-1, 4, 4)
    rest = np.eye(4) if rest is None else np.asarray(rest, np.float64)
    r_rest = rotation_part(rest)
    c = CAMERA_TO_BLENDER
    quats = np.array([matrix_to_quaternion(c @ (rotation_part(x) @ r_rest.T) @ c.T) for x in m])
    loc = (m[:, :3, 3] - rest[:3, 3]) @ c.T * 0.01
    return quats, loc


def split_rotation(quats: np.ndarray, neck_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Share a rotation between neck and head: the neck turns ``neck_share`` of the way
    (slerp from identity) and the head, its child, turns the rest, so together they give the
    tracked rotation. Quaternions w, x, y, z, any sign."""
    q = np.asarray(quats, np.float64).reshape(-1, 4)
    q = q * np.where(q[:, :1] < 0, -1.0, 1.0)  # shortest arc
    angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
    s = np.sin(angle / 2)
    axis = np.divide(q[:, 1:], s[:, None], out=np.zeros_like(q[:, 1:]), where=s[:, None] > 1e-12)
    half = angle * neck_share / 2
    neck = np.concatenate([np.cos(half)[:, None], axis * np.sin(half)[:, None]], axis=1)
    # head = neck^-1 * q: the same axis, the remaining angle
    rest_half = angle * (1 - neck_share) / 2
    head = np.concatenate([np.cos(rest_half)[:, None], axis * np.sin(rest_half)[:, None]], axis=1)
    return neck, head


def resample(t: np.ndarray, values: np.ndarray, present: np.ndarray, scene_fps: float,
             frame_start: int = 1, missing: str = "HOLD") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values sampled on each scene frame covered by the take, by linear interpolation of the
    frames that had a face. ``missing``: HOLD keeps the last value through gaps, BLEND
    interpolates across them, EMPTY leaves NaN (no key)."""
    if missing not in MISSING_CHOICES:
        raise SettingsError(f"missing must be one of {MISSING_CHOICES}")
    t = np.asarray(t, np.float64)
    values = np.asarray(values, np.float64).reshape(len(t), -1)
    if not present.any():
        raise TakeError("the take has no frame with a face: nothing to bake")
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
                   missing: str = "HOLD", rest: np.ndarray | None = None,
                   profile=None) -> BakeCurves:
    """Everything the baker writes for one face of a take. ``rest``: the head pose (4x4, camera
    space, cm) that counts as 'no rotation, no move'; default the first tracked frame's.
    ``profile``: a performer calibration whose ``apply`` maps raw scores to calibrated ones."""
    track = take.face_track(face_id)
    present = track["present"]
    if not present.any():
        raise TakeError("the take has no frame with a face: nothing to bake")
    mats = np.where(present[:, None, None], track["head_matrix"], np.eye(4))
    if rest is None:
        rest = mats[int(np.argmax(present))]
    quats, loc = pose_to_blender(mats, rest)
    quats[present] = continuous_quaternions(quats[present])
    scores = track["blendshapes"]
    if profile is not None:
        scores = profile.apply(scores)
    merged = np.concatenate([np.nan_to_num(scores), np.nan_to_num(quats), np.nan_to_num(loc)], axis=1)
    frames, vals, near = resample(take.t, merged, present, scene_fps, frame_start, missing)
    # interpolating sign-continuous quaternions keeps them continuous; only the length drifts
    q = vals[:, 52:56]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return BakeCurves(frames, vals[:, :52], q, near, vals[:, 56:59])


EYE_RANGE_DEG = 30.0  # a human eye's sideways reach; stylised eyes want less (a per-character setting)


def eye_quaternions(scores: np.ndarray, eye_range_deg: float = EYE_RANGE_DEG) -> np.ndarray:
    """(N, 52) scores -> (N, 2, 4) eye rotations (left, right) in Blender world axes at rest:
    yaw about +Z toward the performer's left (+X), pitch up about -X. ``eye_range_deg``: the
    sideways turn at a full eyeLook score; up and down scale with it."""
    scores = np.asarray(scores, np.float64).reshape(-1, 52)
    k = float(eye_range_deg) / EYE_RANGE_DEG
    ang = eye_rotations(np.nan_to_num(scores), EYE_RANGE_DEG * k, 25.0 * k, 30.0 * k)
    yaw, pitch = ang[..., 0] / 2, -ang[..., 1] / 2
    # Rz(yaw) * Rx(pitch) as quaternions: (cz, 0, 0, sz) * (cx, sx, 0, 0)
    cz, sz, cx, sx = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    q = np.stack([cz * cx, cz * sx, sz * sx, sz * cx], axis=-1)
    q[np.isnan(scores).any(axis=1)] = np.nan  # no key where the frame is left empty
    return q


def rig_channels(quats: np.ndarray, loc: np.ndarray, scores: np.ndarray | None, neck_share: float = 0.3,
                 use_location: bool = False, has_neck: bool = True,
                 eye_range_deg: float = EYE_RANGE_DEG) -> dict:
    """What each bone role gets, in world axes: {'neck'|'head'|'eye_left'|'eye_right':
    (quaternions (N, 4), location (N, 3) metres or None)}. Without a neck bone the head takes
    the whole rotation and the location."""
    out = {}
    if has_neck:
        neck, head = split_rotation(quats, neck_share)
        out["neck"] = (neck, loc if use_location else None)
        out["head"] = (head, None)
    else:
        out["head"] = (np.asarray(quats, np.float64), loc if use_location else None)
    if scores is not None:
        eyes = eye_quaternions(scores, eye_range_deg)
        out["eye_left"], out["eye_right"] = (eyes[:, 0], None), (eyes[:, 1], None)
    return out


_EYE_SCORES = tuple(ARKIT_INDEX[n] for n in (
    "eyeLookOutLeft", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookDownLeft", "eyeLookUpRight", "eyeLookDownRight"))


def _quat_of(m) -> list:
    """3x3 rotation (nested lists) -> [w, x, y, z], w >= 0: matrix_to_quaternion in plain floats."""
    (a, b, c), (d, e, f), (g, h, i) = m
    t = a + e + i
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (h - f) / s, (c - g) / s, (d - b) / s]
    elif a > e and a > i:
        s = math.sqrt(1.0 + a - e - i) * 2
        q = [(h - f) / s, 0.25 * s, (b + d) / s, (c + g) / s]
    elif e > i:
        s = math.sqrt(1.0 + e - a - i) * 2
        q = [(c - g) / s, (b + d) / s, 0.25 * s, (f + h) / s]
    else:
        s = math.sqrt(1.0 + i - a - e) * 2
        q = [(d - b) / s, (c + g) / s, (f + h) / s, 0.25 * s]
    n = math.sqrt(sum(x * x for x in q))
    return [x / n for x in q] if q[0] >= 0 else [-x / n for x in q]


def live_rig_channels(head_matrix, rest_rotation, rest, scores, neck_share: float = 0.3,
                      use_location: bool = False, has_neck: bool = True,
                      eye_range_deg: float = EYE_RANGE_DEG) -> dict:
    """:func:`rig_channels` of :func:`pose_to_blender` for one live frame, in plain floats: the
    same numbers (tests/test_performers.py compares them) at a fraction of numpy's per-call
    cost, since Blender's timer runs this for every performer on every tick.
    ``rest_rotation``: rotation_part(rest), worked out once per capture."""
    c = CAMERA_TO_BLENDER
    m = (c @ (rotation_part(head_matrix) @ rest_rotation.T) @ c.T).tolist()
    w, x, y, z = _quat_of(m)
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    loc = None
    if use_location:
        loc = ((np.asarray(head_matrix, np.float64)[:3, 3] - np.asarray(rest, np.float64)[:3, 3]) @ c.T * 0.01)[None]
    out = {}
    if has_neck:
        angle = 2 * math.acos(min(1.0, max(-1.0, w)))
        s = math.sin(angle / 2)
        ax = (x / s, y / s, z / s) if s > 1e-12 else (0.0, 0.0, 0.0)
        h1, h2 = angle * neck_share / 2, angle * (1 - neck_share) / 2
        out["neck"] = (np.array([[math.cos(h1), *(v * math.sin(h1) for v in ax)]]), loc)
        out["head"] = (np.array([[math.cos(h2), *(v * math.sin(h2) for v in ax)]]), None)
    else:
        out["head"] = (np.array([[w, x, y, z]]), loc)
    if scores is not None:
        k = float(eye_range_deg) / EYE_RANGE_DEG
        yaw_max, up_max, down_max = (math.radians(v * k) for v in (EYE_RANGE_DEG, 25.0, 30.0))
        sc = np.asarray(scores, np.float64).reshape(-1)
        ol, il, ir, orr, ul, dl, ur, dr = (min(1.0, max(0.0, float(sc[j]))) if sc[j] == sc[j] else 0.0
                                           for j in _EYE_SCORES)
        for role, yaw, pitch in (("eye_left", (ol - il) * yaw_max, ul * up_max - dl * down_max),
                                 ("eye_right", (ir - orr) * yaw_max, ur * up_max - dr * down_max)):
            cz, sz, cx, sx = math.cos(yaw / 2), math.sin(yaw / 2), math.cos(-pitch / 2), math.sin(-pitch / 2)
            out[role] = (np.array([[cz * cx, cz * sx, sz * sx, sz * cx]]), None)
    return out
