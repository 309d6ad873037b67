"""A video file played as if it were a webcam: frames come at real-time pace and are dropped when
the consumer lags, so the live path can be tested on machines without a camera."""

from __future__ import annotations

import math
import os
import time
from typing import Callable

import cv2
import numpy as np

from .base import SourceError
from .video import VideoFileSource


class SimulatedLiveSource(VideoFileSource):
    """A video file delivered at real-time pace, standing in for a webcam.

    Lets the live pipeline (dropping, latency, smoothing) be exercised on machines with no
    camera. The clock starts at the first read(), so slow start-up (model loading) does not
    count as lag. When the consumer lags, stale frames are skipped with grab() (no colour
    conversion) and counted in ``dropped``; the newest due frame is delivered, as a camera's
    driver would. If the file ends while skipping, the stream ends (None).
    """

    _kind = "simulated"
    _live = True

    def __init__(
        self,
        path: str | os.PathLike,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise SourceError(f"playback speed must be a positive number, not {speed!r}")
        super().__init__(path)
        self.speed = float(speed)
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._ts0 = 0.0

    def _due(self, ts: float) -> float:
        return self._start + (ts - self._ts0) / self.speed

    def _read(self) -> tuple[float, np.ndarray] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            self._start = self._clock()
            self._ts0 = item[0]
            return item
        if self._start is None:  # cannot happen after __init__, but keep read() total
            self._start = self._clock()
        try:
            ts = self._grab()
            if ts is None:
                return None
            now = self._clock()
            due = self._due(ts)
            if due <= now:
                # Lagging: skip every frame whose successor is also already due.
                while self._due(ts + self._interval) <= self._clock():
                    nxt = self._grab()
                    self.dropped += 1
                    if nxt is None:
                        return None
                    ts = nxt
                due = self._due(ts)
                now = self._clock()
            if due > now:
                self._sleep(due - now)
                if self._closed:
                    return None
            frame = self._retrieve()
        except cv2.error:
            return None
        if frame is None:
            return None
        return ts, frame
