"""What every frame source is: ``read()`` -> ``(timestamp_seconds, rgb_frame)`` or None at the end,
``close()`` safe from another thread, and the description (:class:`SourceInfo`) a take keeps."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Iterator

import cv2
import numpy as np

from ...errors import FacemeshError


_DEFAULT_FPS = 30.0


_CLOSE_WAIT_S = 0.5




class SourceError(FacemeshError):
    """Clear, user-facing message; says what to do next."""


@dataclass
class SourceInfo:
    kind: str  # 'camera' | 'video' | 'images' | 'simulated'
    name: str  # path or 'camera:0'
    width: int  # of the frames delivered (after rotation)
    height: int
    fps: float
    frame_count: int | None  # None for cameras; approximate for some videos
    rotation: int = 0  # clockwise degrees applied from container metadata
    live: bool = False  # frames come in real time and may be dropped

    def as_dict(self) -> dict:
        return asdict(self)


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """Normalise whatever a backend hands us, so the tracker sees one format only."""
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        out = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    elif frame.shape[2] == 4:
        out = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    else:
        out = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(out)


def _sane_fps(value: float, default: float = _DEFAULT_FPS) -> float:
    if value is None or not math.isfinite(value) or value <= 0 or value > 1000:
        return default
    return float(value)


class FrameSource:
    """Base class: a blocking reader of (timestamp, RGB frame) pairs.

    ``read()`` and ``close()`` are serialised by a lock so that a close from another thread
    cannot release the capture under a running decode (which can crash native code). If a
    read is stuck in the backend, ``close()`` returns anyway and the reader releases the
    capture itself when the backend lets go.
    """

    info: SourceInfo
    dropped: int = 0

    def __init__(self) -> None:
        self.dropped = 0
        self._lock = threading.Lock()
        self._closed = False
        self._released = False

    @property
    def live(self) -> bool:
        return self.info.live

    def read(self) -> tuple[float, np.ndarray] | None:
        if self._closed:
            return None
        with self._lock:
            if self._closed:
                self._release_once()
                return None
            item = self._read()
            if self._closed:  # closed while we were blocked: nobody wants this frame
                self._release_once()
                return None
            return item

    def close(self) -> None:
        self._closed = True
        if self._lock.acquire(timeout=_CLOSE_WAIT_S):
            try:
                self._release_once()
            finally:
                self._lock.release()
        # else: a read is blocked in the backend; read() releases when it returns.

    @property
    def closed(self) -> bool:
        return self._closed

    def _release_once(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    # Subclasses implement these two.
    def _read(self) -> tuple[float, np.ndarray] | None:
        raise NotImplementedError

    def _release(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        while True:
            item = self.read()
            if item is None:
                return
            yield item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r})"
