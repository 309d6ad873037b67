"""Per-performer calibration: raw MediaPipe scores -> curves that start at 0 and reach 1.

MediaPipe's scores are offset and compressed per face: a relaxed face can read eyeSquint 0.7
or mouthPress 0.5, and fully closed eyes read eyeBlink 0.5-0.8, never 1. A profile stores each
channel's score on the relaxed face (``neutral``) and at full expression (``high``), and maps
scores linearly between them. ``neutral`` comes from a second of relaxed face, ``high`` from
measured defaults (``DEFAULT_HIGH``) or from a range-of-motion take. Plain numpy, no ``bpy``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import FacemeshError
from ..channels import ARKIT_INDEX, ARKIT_NAMES
from ..files import read_json, write_text_atomic
from ..rotations import matrix_to_quaternion, quaternion_to_matrix, rotation_angle_deg, rotation_part

FORMAT = "blender_facemesh.performer"
VERSION = 1
N_CHANNELS = len(ARKIT_NAMES)
EPS = 1e-3                 # high <= neutral + EPS: the channel has no usable range, pass it through
MAX_CHANNEL_MAD = 0.10     # neutral stretch: largest allowed median absolute deviation of a score
MAX_ROTATION_DEG = 3.0     # ... median angle of the head from its mean rotation
MAX_TRANSLATION_CM = 1.5   # ... median distance of the head from its median position

# Scores MediaPipe reaches at full expression, measured on ../shared/footage (VIDEO mode).
# eyeBlink: eyes held shut read 0.49-0.71 (studio clip, frames 94-97; neutral 0.17-0.19) and
# 0.70-0.84 (webcam clip); 0.5 is the lowest fully-shut score, so shut eyes calibrate to >= 0.9.
# jawOpen: a wide-open jaw reads 0.87 (photo) to 0.93 (studio clip). Everything else stays 1.0:
# either the model reaches ~1 (smiles 0.9-0.97, pucker 1.0, browInnerUp 0.92, mouthLeft 0.94)
# or it gives no signal to scale (cheekPuff, cheekSquint, noseSneer, jawForward stay < 0.001
# and eyeWide < 0.06 even when performed; stretching those would only amplify noise).
DEFAULT_HIGH = tuple({"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5, "jawOpen": 0.9}.get(n, 1.0)
                     for n in ARKIT_NAMES)


class CalibrationError(FacemeshError, ValueError):
    """Calibration refused or a profile file unusable; the one-line message says what to do."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _vector(values, what: str) -> list[float]:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.shape != (N_CHANNELS,) or not np.isfinite(a).all():
        raise CalibrationError(f"{what} must be {N_CHANNELS} finite numbers")
    return [float(v) for v in a]


@dataclass
class PerformerProfile:
    name: str = "performer"
    neutral: list = field(default_factory=lambda: [0.0] * N_CHANNELS)
    high: list = field(default_factory=lambda: list(DEFAULT_HIGH))
    head_rest: list | None = None   # 4x4 head pose in the neutral stretch, camera space, cm
    created: str = field(default_factory=_now)
    frames: int = 0
    extra: dict = field(default_factory=dict)   # room for later additions (e.g. a face shape)

    def __post_init__(self):
        self.neutral = _vector(self.neutral, "neutral")
        self.high = _vector(self.high, "high")
        if self.head_rest is not None:
            m = np.asarray(self.head_rest, dtype=np.float64)
            if m.shape != (4, 4) or not np.isfinite(m).all():
                raise CalibrationError("head_rest must be a finite 4x4 matrix")
            self.head_rest = m.tolist()

    def apply(self, scores) -> np.ndarray:
        """(..., 52) raw scores -> calibrated, clipped to [0, 1]; NaN (no face) stays NaN."""
        s = np.asarray(scores, dtype=np.float64)
        if s.shape[-1:] != (N_CHANNELS,):
            raise ValueError(f"scores must end in {N_CHANNELS} channels, got shape {s.shape}")
        lo, hi = np.asarray(self.neutral), np.asarray(self.high)
        span = hi - lo
        ok = span > EPS
        out = np.where(ok, (s - lo) / np.where(ok, span, 1.0), s)
        dtype = np.asarray(scores).dtype
        return np.clip(out, 0.0, 1.0).astype(dtype if dtype.kind == "f" else np.float64)

    def channel(self, name: str) -> tuple[float, float]:
        """(neutral, high) of one channel by ARKit name."""
        i = ARKIT_INDEX[name]
        return self.neutral[i], self.high[i]

    # --- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "created": self.created,
                "frames": int(self.frames), "channels": list(ARKIT_NAMES),
                "neutral": [round(v, 6) for v in self.neutral], "high": [round(v, 6) for v in self.high],
                "head_rest": self.head_rest, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "PerformerProfile":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CalibrationError(f"not a performer profile (format {d.get('format') if isinstance(d, dict) else None!r})")
        if int(d.get("version", 0)) > VERSION:
            raise CalibrationError(f"profile version {d['version']} is newer than this add-on reads ({VERSION})")
        names = d.get("channels", list(ARKIT_NAMES))
        try:
            if list(names) != list(ARKIT_NAMES):  # reorder by name; unknown channels get defaults
                col = {n: i for i, n in enumerate(names)}
                pick = lambda v, dflt: [v[col[n]] if n in col else dflt[k] for k, n in enumerate(ARKIT_NAMES)]
                d = dict(d, neutral=pick(d["neutral"], [0.0] * N_CHANNELS), high=pick(d["high"], DEFAULT_HIGH))
            return cls(name=str(d.get("name", "performer")), neutral=d["neutral"], high=d["high"],
                       head_rest=d.get("head_rest"), created=str(d.get("created", "")),
                       frames=int(d.get("frames", 0)), extra=dict(d.get("extra") or {}))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"profile is inconsistent ({type(exc).__name__}: {exc})") from exc

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically (a crash leaves the old file, never half a file)."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PerformerProfile":
        return read_json(path, CalibrationError, "performer profile", cls.from_dict)


# --- building profiles ---------------------------------------------------------------------------

def _face_rows(blendshapes, present) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(blendshapes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != N_CHANNELS:
        raise CalibrationError(f"blendshapes must be (frames, {N_CHANNELS}), got shape {b.shape}")
    rows = np.isfinite(b).all(axis=1)
    if present is not None:
        p = np.asarray(present, dtype=bool)
        if p.shape != (len(b),):
            raise CalibrationError(f"present must be ({len(b)},), got shape {p.shape}")
        rows &= p
    return b, rows


def mean_pose(head_matrices) -> np.ndarray:
    """Robust rest pose of (N, 4, 4) similarity matrices: chordal mean rotation (the principal
    eigenvector of the summed quaternion outer products, sign-free), median scale and position."""
    m = np.asarray(head_matrices, dtype=np.float64)
    q = np.array([matrix_to_quaternion(rotation_part(x)) for x in m])
    r = quaternion_to_matrix(np.linalg.eigh(q.T @ q)[1][:, -1])
    out = np.eye(4)
    out[:3, :3] = r * np.median(np.linalg.norm(m[:, :3, :3], axis=1))
    out[:3, 3] = np.median(m[:, :3, 3], axis=0)
    return out


def calibrate_neutral(blendshapes, head_matrices=None, present=None, name: str | None = None,
                      min_frames: int = 15, base: PerformerProfile | None = None) -> PerformerProfile:
    """Profile from a stretch of relaxed face: neutral = per-channel median (a blink in the
    stretch does not shift it). Refuses short stretches and faces or heads that moved, since
    a neutral taken from a moving face would bias every frame of every later take. With
    ``base``, its high, name (unless ``name`` is given) and extra carry over."""
    b, rows = _face_rows(blendshapes, present)
    hm = None
    if head_matrices is not None:
        hm = np.asarray(head_matrices, dtype=np.float64)
        if hm.shape != (len(b), 4, 4):
            raise CalibrationError(f"head_matrices must be ({len(b)}, 4, 4), got shape {hm.shape}")
        rows &= np.isfinite(hm).all(axis=(1, 2))
    n = int(rows.sum())
    if n < min_frames:
        raise CalibrationError(f"only {n} frames with a face (need {min_frames}); "
                               "hold still facing the camera for about 1 s and try again")
    s = b[rows]
    neutral = np.median(s, axis=0)
    mad = np.median(np.abs(s - neutral), axis=0)
    k = int(np.argmax(mad))
    if mad[k] > MAX_CHANNEL_MAD:
        raise CalibrationError(f"the face moved during the neutral stretch ({ARKIT_NAMES[k]} varied by "
                               f"{mad[k]:.2f}); relax, hold still and try again")
    rest = None
    if hm is not None:
        rest = mean_pose(hm[rows])
        ang = np.median([rotation_angle_deg(rest[:3, :3] / np.linalg.norm(rest[:3, 0]), rotation_part(x))
                         for x in hm[rows]])
        dist = np.median(np.linalg.norm(hm[rows, :3, 3] - rest[:3, 3], axis=1))
        if ang > MAX_ROTATION_DEG or dist > MAX_TRANSLATION_CM:
            raise CalibrationError(f"the head moved during the neutral stretch ({ang:.1f} deg, {dist:.1f} cm "
                                   "from its mean pose); face the camera, hold still and try again")
        rest = rest.tolist()
    high = list(base.high) if base is not None else list(DEFAULT_HIGH)
    extra = dict(base.extra) if base is not None else {}
    name = name or (base.name if base is not None else "performer")
    return PerformerProfile(name=name, neutral=neutral, high=high, head_rest=rest, frames=n, extra=extra)


def calibrate_range(blendshapes, present, profile: PerformerProfile, percentile: float = 98.0,
                    min_span: float = 0.2) -> PerformerProfile:
    """New profile whose ``high`` is the performer's own peak (a high percentile, so a one-frame
    glitch does not set it) on each channel the range-of-motion take exercised, i.e. whose peak
    is at least ``min_span`` above neutral; other channels keep the profile's high. (A still
    face's scores wander by up to ~0.08; a smaller span would stretch that noise into motion.)"""
    b, rows = _face_rows(blendshapes, present)
    if not rows.any():
        raise CalibrationError("the range-of-motion take has no frames with a face; record it again")
    peak = np.percentile(b[rows], percentile, axis=0)
    neutral = np.asarray(profile.neutral)
    used = peak >= neutral + min_span
    high = np.where(used, peak, profile.high)
    return PerformerProfile(name=profile.name, neutral=list(profile.neutral), high=high,
                            head_rest=profile.head_rest, created=_now(), frames=profile.frames,
                            extra=dict(profile.extra, range_frames=int(rows.sum())))


def neutral_from_take(take, start_s: float = 0.0, duration_s: float = 1.0, face_id: int | None = None,
                      name: str | None = None, **kwargs) -> PerformerProfile:
    """calibrate_neutral over ``[start_s, start_s + duration_s)`` of a Take, counted from its
    first frame, for one face (default: the first id seen)."""
    tr = take.face_track(face_id)
    t = np.asarray(take.t, dtype=np.float64)
    if not len(t):
        raise CalibrationError("the take is empty; record a second of relaxed face first")
    rel = t - t[0]
    win = (rel >= start_s - 1e-6) & (rel < start_s + duration_s - 1e-6)
    return calibrate_neutral(tr["blendshapes"][win], tr["head_matrix"][win], tr["present"][win],
                             name=name, **kwargs)
