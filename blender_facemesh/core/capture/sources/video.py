"""Video files through OpenCV's FFmpeg backend: container timestamps, rotation metadata, and
files that end early.

Things learnt about OpenCV 4.11 (opencv-contrib-python wheel, FFmpeg backend):

* ``CAP_PROP_POS_MSEC`` read after ``grab()``/``read()`` is the timestamp of the frame just
  decoded (0 for the first frame). It is 0 for streams without timestamps and garbage for
  single images opened as video, hence the sanitising in :class:`_Stamper`.
* ``CAP_PROP_ORIENTATION_AUTO`` is *off* by default in the wheel despite the docs; rotated
  phone clips come out sideways unless it is switched on. ``CAP_PROP_ORIENTATION_META``
  gives the container's clockwise rotation (0/90/180/270).
* A truncated .avi plays up to the cut and then ``read()`` returns False; an .mp4 whose
  index (moov atom) sits at the end, as OpenCV's and many recorders' files do, cannot be
  opened at all once truncated; a "faststart" .mp4 plays up to the cut.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from .base import FrameSource, SourceError, SourceInfo, _sane_fps, _to_rgb
from .timestamps import _Stamper


_MANUAL_ROTATION = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


def _open_video_capture(path: str) -> cv2.VideoCapture:
    # FFmpeg first: CAP_ANY may hand names with '%' to the image-sequence backend.
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        cap = cv2.VideoCapture(path, cv2.CAP_ANY)
    return cap


class VideoFileSource(FrameSource):
    """A video file read as fast as the consumer asks, with the container's timestamps."""

    _kind = "video"
    _live = False

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        p = Path(path).expanduser()
        if not p.exists():
            raise SourceError(f"video file {p} does not exist; check the path")
        if p.is_dir():
            raise SourceError(
                f"{p} is a folder, not a video file; give it as an image sequence instead"
            )
        undecodable = (
            f"video file {p} could not be decoded: it is not a video format OpenCV/FFmpeg "
            f"can read, or it is damaged or incomplete (an .mp4 whose recording was cut off "
            f"has no index); convert or re-export it, e.g. to H.264 .mp4"
        )
        try:
            cap = _open_video_capture(str(p))
        except cv2.error:
            raise SourceError(undecodable) from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(undecodable)
        self._cap = cap
        self._path = p

        rotation = cap.get(cv2.CAP_PROP_ORIENTATION_META)
        rotation = int(round(rotation)) % 360 if math.isfinite(rotation) else 0
        if rotation not in _MANUAL_ROTATION:
            rotation = 0
        raw_w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        raw_h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._manual_rotation: int | None = None
        if rotation:
            # Off by default in the 4.11 wheel; rotate ourselves if the backend refuses.
            if not (cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
                    and cap.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1):
                self._manual_rotation = _MANUAL_ROTATION[rotation]

        fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS))
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        frame_count = int(round(count)) if math.isfinite(count) and 0 < count < 1e9 else None
        self._stamp = _Stamper(fps)
        self._interval = 1.0 / fps

        try:
            first_ts = self._grab()
            first = self._retrieve() if first_ts is not None else None
        except cv2.error:
            first = None
        if first is None:
            cap.release()
            raise SourceError(
                f"video file {p} could not be decoded: no frame could be read from it; it "
                f"may be damaged, empty or use a codec this build cannot decode"
            )
        h, w = first.shape[:2]
        if self._manual_rotation is None and rotation in (90, 270) and raw_w != raw_h \
                and (w, h) == (raw_w, raw_h):
            # The backend claimed to auto-rotate but did not: do it ourselves from now on.
            self._manual_rotation = _MANUAL_ROTATION[rotation]
            first = np.ascontiguousarray(np.rot90(first, k=-1 if rotation == 90 else 1))
        self._pending: tuple[float, np.ndarray] | None = (first_ts, first)
        h, w = first.shape[:2]
        self.info = SourceInfo(
            kind=self._kind,
            name=str(p),
            width=int(w),
            height=int(h),
            fps=fps,
            frame_count=frame_count,
            rotation=rotation,
            live=self._live,
        )

    def _grab(self) -> float | None:
        """Advance one frame without colour conversion; returns its timestamp or None at end."""
        if not self._cap.grab():
            return None
        prev = self._stamp.last
        ts = self._stamp(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if prev is not None:
            self._interval = max(ts - prev, 1e-6)
        return ts

    def _retrieve(self) -> np.ndarray | None:
        ok, frame = self._cap.retrieve()
        if not ok or frame is None or frame.size == 0:
            return None
        if self._manual_rotation is not None:
            frame = cv2.rotate(frame, self._manual_rotation)
        return _to_rgb(frame)

    def _read(self) -> tuple[float, np.ndarray] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        try:
            ts = self._grab()
            if ts is None:
                return None
            frame = self._retrieve()
        except cv2.error:
            return None  # damaged tail: end cleanly at the last good frame
        if frame is None:
            return None
        return ts, frame

    def _release(self) -> None:
        self._pending = None
        self._cap.release()
