"""Webcams through OpenCV: opened with a probe that gives up on a hung driver, frames timestamped
on arrival, and the list of cameras for the panel (Linux names them without opening them)."""

from __future__ import annotations

import glob
import math
import re
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from .base import FrameSource, SourceError, SourceInfo, _sane_fps, _to_rgb


# Names users may type (UI/CLI) -> OpenCV API preference.
CAMERA_BACKENDS = {
    "auto": cv2.CAP_ANY,
    "v4l2": cv2.CAP_V4L2,
    "dshow": cv2.CAP_DSHOW,
    "msmf": cv2.CAP_MSMF,
    "avfoundation": cv2.CAP_AVFOUNDATION,
    "gstreamer": cv2.CAP_GSTREAMER,
    "ffmpeg": cv2.CAP_FFMPEG,
}


_CAMERA_PROBE_TIMEOUT_S = 5.0


def list_cameras() -> list[tuple[int, str]] | None:
    """(index, name) of the cameras the system lists, without opening them; None where the
    platform offers no cheap listing (then numbers 0, 1, ... are tried by the user)."""
    if not sys.platform.startswith("linux"):
        return None
    out = []
    for dev in glob.glob("/dev/video*"):
        m = re.fullmatch(r"/dev/video(\d+)", dev)
        if not m:
            continue
        i = int(m.group(1))
        try:
            name = Path(f"/sys/class/video4linux/video{i}/name").read_text().strip()
        except OSError:
            name = f"Camera {i}"
        out.append((i, name))
    return sorted(out)


def _camera_hint() -> str:
    """Cheap listing of what exists, without opening cameras (which is slow and lights LEDs)."""
    if sys.platform.startswith("linux"):
        found = []
        for dev in glob.glob("/dev/video*"):
            m = re.fullmatch(r"/dev/video(\d+)", dev)
            if m:
                found.append(int(m.group(1)))
        if found:
            return "cameras found: " + ", ".join(str(i) for i in sorted(found))
        return "no camera devices found in /dev/video*"
    return "camera numbers start at 0: try camera:0, camera:1, ..."


class CameraSource(FrameSource):
    """A webcam through cv2.VideoCapture; frames are timestamped on arrival."""

    def __init__(
        self,
        index: int = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        try:
            index = int(index)
        except (TypeError, ValueError):
            raise SourceError(f"camera index {index!r} is not a number; use e.g. camera:0") from None
        if index < 0:
            raise SourceError(f"camera index {index} is negative; camera numbers start at 0")
        key = (backend or "auto").lower()
        if key not in CAMERA_BACKENDS:
            raise SourceError(
                f"unknown camera backend {backend!r}; use one of: " + ", ".join(CAMERA_BACKENDS)
            )
        self.index = index
        name = f"camera:{index}"
        cap = cv2.VideoCapture(index, CAMERA_BACKENDS[key])
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_message(index, key))
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(width))
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(height))
        if fps:
            cap.set(cv2.CAP_PROP_FPS, float(fps))
        frame = self._probe(cap)
        if frame is None:
            raise SourceError(
                self._open_message(index, key)
                + f"; it opened but delivered no picture within {_CAMERA_PROBE_TIMEOUT_S:.0f} s"
            )
        h, w = frame.shape[:2]
        self._cap = cap
        self._t0: float | None = None
        self._pos0: float | None = None
        self._last = -math.inf
        self.info = SourceInfo(
            kind="camera",
            name=name,
            width=int(w),
            height=int(h),
            fps=_sane_fps(cap.get(cv2.CAP_PROP_FPS), _sane_fps(fps or 0)),
            frame_count=None,
            live=True,
        )

    @staticmethod
    def _open_message(index: int, backend: str) -> str:
        msg = (
            f"camera {index} could not be opened (not connected, or in use by another "
            f"program); check the index ({_camera_hint()})"
        )
        if backend != "auto":
            msg += f", or try backend 'auto' instead of {backend!r}"
        return msg

    @staticmethod
    def _probe(cap: cv2.VideoCapture) -> np.ndarray | None:
        """Read one frame in a helper thread so a camera that never delivers cannot hang us.

        Busy cameras often open fine and then block or fail in read(). If the read is still
        stuck at the deadline, the helper thread releases the capture when it returns.
        """
        result: dict = {}
        abandoned = threading.Event()

        def work() -> None:
            deadline = time.monotonic() + _CAMERA_PROBE_TIMEOUT_S
            try:
                while time.monotonic() < deadline and not abandoned.is_set():
                    ok, frame = cap.read()
                    if ok and frame is not None and frame.size:
                        result["frame"] = frame
                        return
                    time.sleep(0.05)  # some drivers need a moment before the first frame
            except cv2.error:
                pass
            finally:
                if abandoned.is_set() or "frame" not in result:
                    cap.release()

        th = threading.Thread(target=work, name="camera-probe", daemon=True)
        th.start()
        th.join(_CAMERA_PROBE_TIMEOUT_S + 0.5)
        if th.is_alive() or "frame" not in result:
            abandoned.set()
            return None
        return result["frame"]

    def _read(self) -> tuple[float, np.ndarray] | None:
        ok, frame = self._cap.read()
        if not ok or frame is None or frame.size == 0:
            return None  # unplugged or stopped: the worker treats it as "camera stopped"
        now = time.monotonic()
        pos = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        pos_ok = math.isfinite(pos) and pos > 0
        if self._t0 is None:
            self._t0 = now
            self._pos0 = pos if pos_ok else None
            t = 0.0
        else:
            t = now - self._t0
            # The driver's capture time excludes our read latency, so prefer it while it
            # stays increasing and agrees with the wall clock; drop it for good otherwise.
            if self._pos0 is not None:
                cand = (pos - self._pos0) / 1000.0 if pos_ok else -1.0
                if pos_ok and cand > self._last and abs(cand - t) < 1.0:
                    t = cand
                else:
                    self._pos0 = None
            if t <= self._last:
                t = self._last + 1e-6
        self._last = t
        return t, _to_rgb(frame)

    def _release(self) -> None:
        self._cap.release()
