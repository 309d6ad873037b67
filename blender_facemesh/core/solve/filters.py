"""Smoothing for tracked channels: the One Euro filter (Casiez, Roussel, Vogel, CHI 2012).

One Euro adapts its cut-off to the signal's speed: strong smoothing when the face is still
(no jitter), little when it moves fast (no lag). Each filter works on whole numpy arrays so
one call smooths all 478 landmarks or all 52 scores of a frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import SettingsError
from ..rotations import det3, matrix_to_quaternion, quaternion_to_matrix


@dataclass
class OneEuroSettings:
    """User-facing parameters. ``min_cutoff`` (Hz): lower = smoother when still;
    ``beta``: higher = less lag in fast motion; ``d_cutoff`` (Hz): for the speed estimate."""

    enabled: bool = True
    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise SettingsError("One Euro settings need min_cutoff > 0, d_cutoff > 0 and beta >= 0")


@dataclass
class FilterSettings:
    """Separate settings per channel kind: landmarks are in normalized image units, scores in
    0..1, pose in cm and quaternion units, so one set of numbers does not fit all."""

    landmarks: OneEuroSettings = None
    blendshapes: OneEuroSettings = None
    pose: OneEuroSettings = None

    def __post_init__(self):
        self.landmarks = self.landmarks or OneEuroSettings(min_cutoff=1.5, beta=20.0)
        self.blendshapes = self.blendshapes or OneEuroSettings(min_cutoff=3.0, beta=1.0)
        self.pose = self.pose or OneEuroSettings(min_cutoff=1.0, beta=0.3)

    @classmethod
    def off(cls) -> "FilterSettings":
        return cls(OneEuroSettings(enabled=False), OneEuroSettings(enabled=False),
                   OneEuroSettings(enabled=False))

    def as_dict(self) -> dict:
        return {k: getattr(self, k).as_dict() for k in ("landmarks", "blendshapes", "pose")}

    @classmethod
    def from_dict(cls, d: dict) -> "FilterSettings":
        return cls(**{k: OneEuroSettings(**d[k]) for k in ("landmarks", "blendshapes", "pose") if k in d})


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro on an array of any shape; timestamps in seconds drive the rate."""

    def __init__(self, settings: OneEuroSettings):
        settings.validate()
        self.s = settings
        self.reset()

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if not self.s.enabled:
            return x
        if self._x is None or self._x.shape != x.shape or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x
        dt = t - self._t
        dx = (x - self._x) / dt
        dx_hat = self._dx + _alpha(self.s.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.s.min_cutoff + self.s.beta * np.abs(dx_hat)
        x_hat = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._x, self._dx, self._t = x_hat, dx_hat, t
        return x_hat


class PoseFilter:
    """One Euro on a head pose: translation as a vector, rotation as a sign-continuous
    quaternion re-normalised after smoothing (small-angle steps make this accurate)."""

    def __init__(self, settings: OneEuroSettings):
        self.translation = OneEuroFilter(settings)
        self.rotation = OneEuroFilter(settings)
        self._last_q = None

    def reset(self) -> None:
        self.translation.reset()
        self.rotation.reset()
        self._last_q = None

    def __call__(self, pose: np.ndarray, t: float) -> np.ndarray:
        if not self.rotation.s.enabled:
            return pose
        m = pose[:3, :3]
        scale = float(np.cbrt(det3(m)))
        q = matrix_to_quaternion(m / scale)
        if self._last_q is not None and float((q * self._last_q).sum()) < 0:
            q = -q
        self._last_q = q
        qf = self.rotation(q, t)
        out = np.eye(4)
        out[:3, :3] = quaternion_to_matrix(qf) * scale
        out[:3, 3] = self.translation(pose[:3, 3], t)
        return out


class FaceFilter:
    """All filters for one tracked face (one per face id, so faces never smooth into each other)."""

    def __init__(self, settings: FilterSettings):
        self.landmarks = OneEuroFilter(settings.landmarks)
        self.blendshapes = OneEuroFilter(settings.blendshapes)
        self.pose = PoseFilter(settings.pose)
