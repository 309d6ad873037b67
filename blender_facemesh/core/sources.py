"""Frame sources: camera, video file, image sequence, and a simulated live camera.

Every source yields ``(timestamp_seconds, rgb_frame)`` with strictly increasing timestamps
and uint8 HxWx3 C-contiguous RGB frames, so the tracker never has to care where frames come
from. Sources are plain blocking readers; threading lives in the worker, which may give up
on a reader stuck inside ``read()`` and call ``close()`` from another thread, so ``close()``
never blocks for long and is safe to call while a read is in progress.

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

import glob
import math
import os
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

__all__ = [
    "SourceError",
    "SourceInfo",
    "FrameSource",
    "CameraSource",
    "VideoFileSource",
    "ImageSequenceSource",
    "SimulatedLiveSource",
    "open_source",
    "IMAGE_EXTENSIONS",
    "CAMERA_BACKENDS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

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

_DEFAULT_FPS = 30.0
_CAMERA_PROBE_TIMEOUT_S = 5.0
_CLOSE_WAIT_S = 0.5
_MAX_SANE_SECONDS = 1e7  # ~4 months; anything beyond is a backend returning junk


class SourceError(Exception):
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


# --------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Video files
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Image sequences
# --------------------------------------------------------------------------------------


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


def _natural_key(name: str) -> list:
    # re.split with a group alternates text/number, so ints never meet strs in comparison.
    return [int(t) if i % 2 else t.lower() for i, t in enumerate(re.split(r"(\d+)", name))]


_PRINTF_RE = re.compile(r"%(0?\d*)d")


def _printf_files(pattern: str) -> list[Path]:
    """Files matching a printf pattern like frame_%04d.png, ordered by their number."""
    directory, name = os.path.split(pattern)
    if "%" in directory.replace("%%", ""):
        raise SourceError(f"image pattern {pattern!r}: only the file name may contain %d")
    parts = name.split("%%")
    specs = sum(len(_PRINTF_RE.findall(part)) for part in parts)
    if specs != 1 or any("%" in _PRINTF_RE.sub("", part) for part in parts):
        raise SourceError(
            f"image pattern {pattern!r} must contain exactly one number field such as %04d "
            f"(write %% for a literal %)"
        )
    regex = "%".join(
        "(\\d+)".join(re.escape(piece) for piece in _PRINTF_RE.split(part)[::2])
        for part in parts
    )
    folder = Path(directory or ".").expanduser()
    if not folder.is_dir():
        return []
    matches = []
    for entry in os.scandir(folder):
        m = re.fullmatch(regex, entry.name)
        if m and entry.is_file():
            matches.append((int(m.group(1)), entry.name))
    matches.sort()
    return [folder / n for _, n in matches]


def _decode_image(path: Path) -> np.ndarray | None:
    # np.fromfile + imdecode instead of imread: imread fails on non-ASCII paths on Windows.
    try:
        buf = np.fromfile(str(path), dtype=np.uint8)
        if buf.size == 0:
            return None
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        return None
    if img is None or img.size == 0:
        return None
    return img


class ImageSequenceSource(FrameSource):
    """Numbered stills (a folder, a glob or a printf pattern) played at a fixed fps."""

    def __init__(self, folder_or_pattern: str | os.PathLike, fps: float = _DEFAULT_FPS) -> None:
        super().__init__()
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise SourceError(f"frame rate for an image sequence must be positive, not {fps!r}")
        spec = os.fspath(folder_or_pattern)
        self.files = self._list(spec)
        self.fps = float(fps)
        self._index = 0
        first = _decode_image(self.files[0])
        if first is None:
            raise self._unreadable(self.files[0])
        self._first: np.ndarray | None = first
        h, w = first.shape[:2]
        self.info = SourceInfo(
            kind="images",
            name=spec,
            width=int(w),
            height=int(h),
            fps=self.fps,
            frame_count=len(self.files),
        )

    @staticmethod
    def _list(spec: str) -> list[Path]:
        p = Path(spec).expanduser()
        if p.is_dir():
            files = [
                Path(e.path) for e in os.scandir(p)
                if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
            ]
            if not files:
                raise SourceError(
                    f"folder {p} contains no images ({', '.join(IMAGE_EXTENSIONS)}); "
                    f"choose the folder that holds the frames"
                )
            return sorted(files, key=lambda f: _natural_key(f.name))
        if p.is_file():
            return [p]
        if "%" in spec:
            files = _printf_files(spec)
        elif glob.has_magic(spec):
            files = [Path(f) for f in glob.glob(os.path.expanduser(spec)) if os.path.isfile(f)]
            files.sort(key=lambda f: (_natural_key(str(f.parent)), _natural_key(f.name)))
        else:
            raise SourceError(
                f"image folder {p} does not exist; give a folder, or a pattern such as "
                f"frames/*.png or frames/frame_%04d.png"
            )
        if not files:
            raise SourceError(f"no image files match {spec!r}; check the folder and pattern")
        return files

    @staticmethod
    def _unreadable(path: Path) -> SourceError:
        return SourceError(
            f"image {path} could not be read (damaged, empty, or not an image); "
            f"replace or remove it and start again"
        )

    def _read(self) -> tuple[float, np.ndarray] | None:
        if self._index >= len(self.files):
            return None
        path = self.files[self._index]
        if self._first is not None:
            img, self._first = self._first, None
        else:
            img = _decode_image(path)
            if img is None:
                raise self._unreadable(path)
        h, w = img.shape[:2]
        if (w, h) != (self.info.width, self.info.height):
            raise SourceError(
                f"image {path} is {w}x{h} but the sequence started at "
                f"{self.info.width}x{self.info.height}; all frames must be the same size"
            )
        ts = self._index / self.fps
        self._index += 1
        return ts, _to_rgb(img)

    def _release(self) -> None:
        self._first = None


# --------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------

_CAMERA_SPEC = re.compile(r"camera(?::(.*))?", re.IGNORECASE)


def open_source(
    spec: str,
    *,
    fps: float | None = None,
    simulate_live: bool = False,
    width: int | None = None,
    height: int | None = None,
    camera_fps: float | None = None,
    backend: str = "auto",
) -> FrameSource:
    """Open whatever the user typed: 'camera:N', a video, an image folder/pattern/file.

    ``fps`` applies to image sequences (default 30); ``simulate_live`` to video files;
    ``width``/``height``/``camera_fps``/``backend`` to cameras.
    """
    spec = os.fspath(spec).strip()
    if not spec:
        raise SourceError(
            "no input given: give a video file, an image folder or pattern, or camera:N"
        )
    m = _CAMERA_SPEC.fullmatch(spec)
    if m and not Path(spec).exists():
        arg = (m.group(1) or "0").strip()
        if not re.fullmatch(r"\d+", arg):
            raise SourceError(f"camera number {arg!r} is not valid; use e.g. camera:0")
        return CameraSource(int(arg), width=width, height=height, fps=camera_fps,
                            backend=backend)
    image_fps = _DEFAULT_FPS if fps is None else fps
    p = Path(spec).expanduser()
    if p.is_dir():
        return ImageSequenceSource(spec, fps=image_fps)
    if p.is_file():
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSequenceSource(spec, fps=image_fps)
        if simulate_live:
            return SimulatedLiveSource(p)
        return VideoFileSource(p)
    if "*" in spec or "%" in spec or "?" in spec:
        return ImageSequenceSource(spec, fps=image_fps)
    raise SourceError(
        f"input {spec!r} not found: give a video file, an image folder or pattern, or camera:N"
    )
