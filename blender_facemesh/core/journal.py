"""Recording journals: a take streamed to disk while it is recorded, so that a crash, a kill or
a power cut loses at most the last second, and the next start can offer to recover it.

A journal is ``<take file>.recording`` beside the take it will become (in the takes folder),
written by its own thread: the recording thread only hands samples over (a list append), the
journal thread writes them as chunks at least every ``INTERVAL`` seconds, flushed and synced.
When the take is saved the journal is deleted; one that is still there at the next start is
an unfinished recording. A pointer file in the user cache (``recordings/``) lets any later
session find journals wherever their takes folder was, and a lock on the open journal tells a
recording still in progress (another Blender, another ``track``) from an abandoned one.

File layout: ``MAGIC``, then records, each ``<length u32><crc32 u32><payload>``. The first
record is the take's header as JSON (plus ``started``, ``pid``, ``take``); each later one is a
chunk: ``<frames u32><first, last time f64>`` and an uncompressed ``.npz`` of the chunk's arrays. A
record cut short or failing its checksum ends the journal: everything before it is kept.

No bpy here.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FacemeshError
from .files import user_cache_dir
from .take import _ARRAYS, Take, TakeError, absent, is_absent, validate

MAGIC = b"FMJOURNAL1\n"
SUFFIX = ".recording"
INTERVAL = 0.5           # seconds between writes: the most a crash can lose is about this
_RECORD = struct.Struct("<II")
_CHUNK = struct.Struct("<Idd")
_MAX_RECORD = 1 << 30


class JournalError(FacemeshError):
    """A journal that cannot be read or recovered; the message names it and says why."""


def journal_for(take_path: str | os.PathLike) -> Path:
    """The journal of the take that will be saved as ``take_path``."""
    p = Path(take_path)
    return p.with_name(p.name + SUFFIX)


def pointer_dir() -> Path:
    return user_cache_dir() / "recordings"


# --- locking: a journal being written is locked, an abandoned one is not -----------------------

def _lock(f, exclusive: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(f.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def in_use(path: str | os.PathLike) -> bool:
    """True while some process (this one included) is still writing the journal."""
    try:
        with open(path, "rb") as f:
            ok = _lock(f, exclusive=False)
    except OSError:
        return False
    return not ok


# --- writing -----------------------------------------------------------------------------------

def _record(payload: bytes) -> bytes:
    return _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


def _chunk_payload(take: Take) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, t=take.t, frame_index=take.frame_index, face_ids=take.face_ids,
             **{k: a for k, a in take.arrays.items() if not is_absent(a)})  # what no sample carries stays out
    return _CHUNK.pack(len(take.t), float(take.t[0]), float(take.t[-1])) + buf.getvalue()


class TakeJournal:
    """Streams the samples of one recording to ``path`` from its own thread. ``append`` is all
    the recording thread does; ``close()`` writes what is left. Writing problems (disk full)
    stop the journal, never the recording: ``error`` says what happened."""

    def __init__(self, path: str | os.PathLike, take: Take, interval: float = INTERVAL):
        self.path = Path(path)
        # the take file this journal becomes once saved
        self.take_path = self.path.with_name(self.path.name[: -len(SUFFIX)]) if self.path.name.endswith(SUFFIX) \
            else self.path.with_suffix(".npz")
        self.interval = float(interval)
        self.error = ""
        self.frames_written = 0
        self._template = take
        self._pending: list = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "xb")  # never overwrite another recording's journal
        try:
            if not _lock(self._file, exclusive=True):
                raise OSError(f"{self.path} is locked by another process")
            header = {**take.header(), "started": time.time(), "pid": os.getpid(),
                      "take": self.take_path.name}
            self._file.write(MAGIC + _record(json.dumps(header).encode()))
            self._sync()
            self._pointer = pointer_dir() / f"{uuid.uuid4().hex}.json"
            try:
                self._pointer.parent.mkdir(parents=True, exist_ok=True)
                self._pointer.write_text(json.dumps({"journal": str(self.path.resolve())}))
            except OSError:
                self._pointer = None  # the journal still works; it is found beside the takes
        except BaseException:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise
        self._thread = threading.Thread(target=self._loop, name="facemesh-journal", daemon=True)
        self._thread.start()

    def append(self, sample) -> None:
        with self._lock:
            self._pending.append(sample)

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def _write_pending(self) -> None:
        with self._lock:
            pend, self._pending = self._pending, []
        if not pend or self.error:
            return
        chunk = Take(self._template.fps, self._template.width, self._template.height)
        for s in pend:
            chunk.append(s)
        chunk._flush()
        try:
            self._file.write(_record(_chunk_payload(chunk)))
            self._sync()
            self.frames_written += len(pend)
        except (OSError, ValueError) as exc:
            self.error = f"the recording journal stopped ({getattr(exc, 'strerror', None) or exc})"

    def _loop(self) -> None:
        while not self._closing:
            self._wake.wait(self.interval)
            self._write_pending()

    def close(self, discard: bool = False) -> None:
        """Write the rest and close; ``discard``: the take is safely saved, delete the journal."""
        if self._file.closed:
            if discard:
                self.discard()
            return
        self._closing = True
        self._wake.set()
        self._thread.join()
        self._write_pending()
        self._file.close()
        if discard:
            self.discard()

    def discard(self) -> None:
        if not self._file.closed:
            self.close()
        self.path.unlink(missing_ok=True)
        if self._pointer is not None:
            self._pointer.unlink(missing_ok=True)


def open_journal(take_path, take: Take) -> tuple[TakeJournal | None, str]:
    """(journal, "") for the take about to be recorded as ``take_path``, or (None, why not):
    a recording goes on without a journal rather than not at all."""
    path = journal_for(take_path)
    try:
        return TakeJournal(path, take), ""
    except OSError as exc:
        return None, f"no crash protection for this recording: cannot write {path} ({exc.strerror or exc})"


# --- reading -----------------------------------------------------------------------------------

def _records(path: Path, headers_only: bool = False):
    """Yields (payload or the chunk prefix when ``headers_only``), stopping quietly at a record
    cut short or damaged: that is where the writer was stopped."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise JournalError(f"{path.name} is not a blender_facemesh recording journal")
        first = True
        while True:
            head = f.read(_RECORD.size)
            if len(head) < _RECORD.size:
                return
            n, crc = _RECORD.unpack(head)
            if n > _MAX_RECORD or f.tell() + n > size:
                return
            if headers_only and not first:
                prefix = f.read(_CHUNK.size)
                f.seek(n - _CHUNK.size, os.SEEK_CUR)
                yield prefix
                continue
            payload = f.read(n)
            if len(payload) < n or zlib.crc32(payload) != crc:
                return
            first = False
            yield payload


@dataclass
class Unfinished:
    """An unfinished recording as the panel and ``recover --list`` show it."""
    journal: Path
    frames: int
    duration: float
    started: float
    take: Path        # where recovering saves it

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started)) if self.started else "?"
        return f"{self.frames} frames ({self.duration:.1f} s) recorded {when}, in {self.journal}"


def summary(path: str | os.PathLike) -> Unfinished:
    path = Path(path)
    try:
        records = _records(path, headers_only=True)
        header = json.loads(next(records))
        frames, first, last = 0, None, 0.0
        for prefix in records:
            n, t_first, last = _CHUNK.unpack(prefix)
            frames += n
            first = t_first if first is None else first
        start = float(header.get("started") or 0.0)
    except (OSError, StopIteration, ValueError, TypeError, struct.error) as exc:
        raise JournalError(f"{path.name} cannot be read ({exc})") from exc
    return Unfinished(path, frames, last - first if first is not None else 0.0, start, _recovered_name(path))


def _recovered_name(path: Path) -> Path:
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem + ".npz"
    dest = path.with_name(stem)
    if Path(stem).suffix.lower() not in (".npz", ".json"):
        dest = dest.with_name(dest.name + ".npz")
    if dest.exists():
        dest = dest.with_name(f"{Path(dest.name).stem}-recovered{dest.suffix}")
    return dest


def read_journal(path: str | os.PathLike) -> Take:
    """The take recorded in a journal (every whole chunk), validated like any loaded take."""
    path = Path(path)
    try:
        records = _records(path)
        take = Take._from_header(json.loads(next(records)))
        chunks = []
        for payload in records:
            with np.load(io.BytesIO(payload[_CHUNK.size:]), allow_pickle=False) as z:
                chunks.append({k: z[k] for k in ("t", "frame_index", "face_ids", *_ARRAYS) if k in z.files})
    except StopIteration:
        raise JournalError(f"{path.name} holds no header: nothing was recorded") from None
    except TakeError as exc:
        raise JournalError(f"{path.name}: {exc}") from None
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise JournalError(f"{path.name} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not chunks:
        raise JournalError(f"{path.name} holds no frames: the recording ended before its first second")
    k = max(c["face_ids"].shape[1] for c in chunks)
    take.t = np.concatenate([c["t"] for c in chunks])
    take.frame_index = np.concatenate([c["frame_index"] for c in chunks])
    take.face_ids = np.concatenate([np.pad(c["face_ids"], ((0, 0), (0, k - c["face_ids"].shape[1])),
                                           constant_values=-1) for c in chunks])
    for name, (shp, dt, empty) in _ARRAYS.items():
        if not any(name in c for c in chunks):
            take.arrays[name] = absent(name, len(take.t), k)  # the source never had it
            continue
        parts = []
        for c in chunks:
            a = np.full((len(c["t"]), k) + shp, empty, dt)
            if name in c:
                a[:, : c[name].shape[1]] = c[name]
            parts.append(a)
        take.arrays[name] = np.concatenate(parts)
    take.meta["recovered_from"] = path.name
    try:
        return validate(take, path.name)
    except TakeError as exc:
        raise JournalError(str(exc)) from None


def unfinished(folders=()) -> list[Unfinished]:
    """Unfinished recordings: those the user cache points at, and any journal in ``folders``
    (a takes folder), leaving out journals still being written. Stale pointers are removed."""
    found: dict[Path, None] = {}
    pdir = pointer_dir()
    for ptr in sorted(pdir.glob("*.json")) if pdir.is_dir() else ():
        try:
            journal = Path(json.loads(ptr.read_text())["journal"])
        except (OSError, ValueError, KeyError, TypeError):
            journal = None
        if journal is None or not journal.is_file():
            ptr.unlink(missing_ok=True)
            continue
        found[journal] = None
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            for j in sorted(folder.glob("*" + SUFFIX)):
                found[j.resolve()] = None
    out = []
    for journal in found:
        if in_use(journal):
            continue
        try:
            out.append(summary(journal))
        except JournalError:
            continue
    return sorted(out, key=lambda u: u.started)


def _forget(journal: Path) -> None:
    journal.unlink(missing_ok=True)
    pdir = pointer_dir()
    for ptr in pdir.glob("*.json") if pdir.is_dir() else ():
        try:
            if Path(json.loads(ptr.read_text())["journal"]) == journal.resolve():
                ptr.unlink(missing_ok=True)
        except (OSError, ValueError, KeyError, TypeError):
            continue


def recover(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> tuple[Take, Path]:
    """Save the journal's take (beside it, as the take it was to become, unless ``dest``), then
    delete the journal. Returns (take, where it was saved)."""
    path = Path(path)
    if in_use(path):
        raise JournalError(f"{path.name} is still being recorded (by this or another program)")
    take = read_journal(path)
    dest = Path(dest) if dest is not None else _recovered_name(path)
    try:
        take.save(dest)
    except OSError as exc:
        raise JournalError(f"could not save the recovered take as {dest} ({exc.strerror or exc}); "
                           f"the journal {path} is kept") from exc
    _forget(path.resolve())
    return take, dest


def discard(path: str | os.PathLike) -> None:
    """Delete an unfinished recording the user does not want."""
    path = Path(path)
    if in_use(path):
        raise JournalError(f"{path.name} is still being recorded (by this or another program)")
    _forget(path.resolve())
