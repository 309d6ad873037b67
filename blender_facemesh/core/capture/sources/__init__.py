"""Frame sources: camera, video file, image sequence, and a simulated live camera.

Every source yields ``(timestamp_seconds, rgb_frame)`` with strictly increasing timestamps
and uint8 HxWx3 C-contiguous RGB frames, so the tracker never has to care where frames come
from. Sources are plain blocking readers; threading lives in the worker, which may give up
on a reader stuck inside ``read()`` and call ``close()`` from another thread, so ``close()``
never blocks for long and is safe to call while a read is in progress.

Here: :func:`open_source` turns what the user typed into a source; the sources live in
``camera.py``, ``video.py`` (with ``timestamps.py``), ``simulated.py``, ``images.py`` and
``ranges.py``, on the interface in ``base.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .base import _DEFAULT_FPS, FrameSource, SourceError, SourceInfo
from .camera import CAMERA_BACKENDS, CameraSource, list_cameras
from .images import IMAGE_EXTENSIONS, ImageSequenceSource
from .ranges import FrameRange
from .simulated import SimulatedLiveSource
from .video import VideoFileSource

__all__ = [
    "SourceError",
    "SourceInfo",
    "FrameSource",
    "CameraSource",
    "VideoFileSource",
    "ImageSequenceSource",
    "SimulatedLiveSource",
    "FrameRange",
    "open_source",
    "list_cameras",
    "IMAGE_EXTENSIONS",
    "CAMERA_BACKENDS",
]


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
        if not re.fullmatch(r"\d+", arg) or int(arg) > 9999:
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
