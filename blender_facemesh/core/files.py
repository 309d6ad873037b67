"""Writing files so that a crash or a full disk leaves the old file, never half of a new one."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_target(path: str | os.PathLike, mkdir: bool = True, keep_suffix: bool = False):
    """Yields a temporary path beside ``path`` to write; it replaces ``path`` only once the
    block finishes without an error. ``keep_suffix``: the temporary name ends like ``path``
    (``clip.part.mp4``), for writers that choose the format by the extension."""
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.part{path.suffix}" if keep_suffix else path.name + ".part")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_text_atomic(path: str | os.PathLike, text: str, mkdir: bool = True) -> Path:
    with atomic_target(path, mkdir) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mkdir: bool = True) -> Path:
    with atomic_target(path, mkdir) as tmp:
        tmp.write_bytes(data)
    return Path(path)
