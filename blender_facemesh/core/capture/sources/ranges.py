"""A frame range of another source (Process Video's start and end frames)."""

from __future__ import annotations

import numpy as np

from .base import FrameSource, SourceError, SourceInfo


class FrameRange(FrameSource):
    """Frames ``start`` to ``end`` (inclusive, 0-based; None: to the end) of another source.
    Frames before the range are read and thrown away: exact for any container, and cheap next
    to inference."""

    def __init__(self, source: FrameSource, start: int = 0, end: int | None = None) -> None:
        super().__init__()
        start = int(start)
        if start < 0 or (end is not None and int(end) < start):
            source.close()
            raise SourceError(f"frame range {start}..{end} is empty; the end must not come before the start")
        self._src, self._next, self._end = source, 0, None if end is None else int(end)
        info = source.info
        count = info.frame_count
        if count is not None:
            if start >= count:
                source.close()
                raise SourceError(f"the video has {count} frames: the range cannot start at frame {start}")
            count = min(count - 1, self._end if self._end is not None else count - 1) - start + 1
        self.info = SourceInfo(**{**info.as_dict(), "frame_count": count})
        self._start = start

    def _read(self) -> tuple[float, np.ndarray] | None:
        while self._next < self._start:
            if self._src.read() is None:
                return None
            self._next += 1
        if self._end is not None and self._next > self._end:
            return None
        self._next += 1
        return self._src.read()

    def _release(self) -> None:
        self._src.close()
