"""Writing files so that a crash or a full disk leaves the old file, never half of a new one."""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path


def user_cache_dir() -> Path:
    """Per-user cache folder, following each platform's convention."""
    override = os.environ.get("BLENDER_FACEMESH_CACHE")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "blender_facemesh"


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


def read_json(path: str | os.PathLike, error: type[Exception], what: str, parse=None):
    """``parse(data)`` of the JSON in ``path`` (the data itself without ``parse``). A missing or
    unreadable file, or an ``error`` from ``parse``, raises ``error`` with a message that names
    the file (``what``: "mapping file", "performer profile"...) and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path.name} is not readable JSON ({type(exc).__name__}: {exc})") from exc
    except RecursionError:
        raise error(f"{path.name} is not a {what} (nested too deeply)") from None
    if parse is None:
        return data
    try:
        return parse(data)
    except error as exc:
        raise error(f"{path.name}: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        # hand-edited numbers and shapes the parser did not foresee (1e400, a list for a number)
        raise error(f"{path.name} is not a usable {what} ({type(exc).__name__}: {exc})") from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mkdir: bool = True) -> Path:
    with atomic_target(path, mkdir) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def safe_stem(name, default: str) -> str:
    """A performer's (or any user-typed) name as part of a file name: letters, digits, ``_.-``
    kept, anything else one ``_``; ``default`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or default
