"""Image sequences: a folder, a glob pattern or a printf pattern (``frame_%04d.png``), in natural
order, at a given frame rate."""

from __future__ import annotations

import glob
import math
import os
import re
from pathlib import Path

import cv2
import numpy as np

from .base import FrameSource, SourceError, SourceInfo, _DEFAULT_FPS, _to_rgb


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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
