"""Container timestamps made usable: OpenCV reports 0, junk or repeats for some streams, so each
frame gets a strictly increasing time, falling back to the frame rate where the container lies."""

from __future__ import annotations

import math



_MAX_SANE_SECONDS = 1e7  # ~4 months; anything beyond is a backend returning junk


class _Stamper:
    """Turns container timestamps into strictly increasing seconds.

    Missing or junk values continue at 1/fps after the last one; a value that goes backwards
    or repeats (no pts, concatenated streams) shifts everything after it by a constant
    offset, so one bad timestamp cannot distort the rest of the clip.
    """

    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps
        self.last: float | None = None
        self.offset = 0.0

    def __call__(self, raw_ms: float | None) -> float:
        raw = None
        if raw_ms is not None and math.isfinite(raw_ms):
            s = raw_ms / 1000.0
            if 0.0 <= s < _MAX_SANE_SECONDS:
                raw = s
        if raw is None:
            t = 0.0 if self.last is None else self.last + self.step
        else:
            t = raw + self.offset
            if self.last is not None and t <= self.last:
                self.offset += self.last + self.step - t
                t = self.last + self.step
        self.last = t
        return t
