"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012), the live smoothing's building block.

One Euro adapts its cut-off to the signal's speed: strong smoothing when the face is still
(no jitter), little when it moves fast (little lag). Each filter works on whole numpy arrays so
one call smooths all the scores of a region. ``smoothing.py`` chooses the settings per region.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import SettingsError


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
        if not (0 < self.min_cutoff < math.inf and 0 < self.d_cutoff < math.inf and 0 <= self.beta < math.inf):
            raise SettingsError("One Euro settings need min_cutoff > 0, d_cutoff > 0 and beta >= 0")


def smoothing_factor(cutoff, dt: float):
    """The exponential smoothing weight of a first-order low-pass at ``cutoff`` Hz over ``dt`` s."""
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
        dx_hat = self._dx + smoothing_factor(self.s.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.s.min_cutoff + self.s.beta * np.abs(dx_hat)
        x_hat = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._x, self._dx, self._t = x_hat, dx_hat, t
        return x_hat
