"""A take: every processed frame of one recording, as arrays, with save/load and JSON export.

Arrays are (frames, face slots, ...): a frame can hold several faces, each keeping its
stable id across frames; an empty slot has id -1 and NaN data. ``.npz`` saves are lossless
(the same dtypes and bits come back); JSON is the documented interchange form (see README).

A take may lack some arrays: a Live Link CSV or a JSON take has no landmarks, mesh or
MediaPipe pose, and only Live Link takes have eye angles. Such an array is "absent": a
read-only all-NaN view that costs no memory (:func:`absent`, :func:`is_absent`), left out of
``.npz`` files, so a million-frame CSV take stays a few hundred MB instead of 11 GB.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from array import array
from pathlib import Path

import numpy as np

from .errors import FacemeshError
from .channels import ARKIT_NAMES, N_LANDMARKS, N_MESH_VERTICES
from .files import atomic_target
from .jsonstream import NotAnObject, load_object

FORMAT = "blender_facemesh.take"
VERSION = 1
_ARRAYS = {  # name: (per-face shape, dtype, empty value)
    "landmarks": ((N_LANDMARKS, 3), np.float32, np.nan),
    "head_matrix": ((4, 4), np.float64, np.nan),
    "mesh": ((N_MESH_VERTICES, 3), np.float32, np.nan),
    "blendshapes": ((len(ARKIT_NAMES),), np.float32, np.nan),
    "mp_matrix": ((4, 4), np.float32, np.nan),
    "eye_angles": ((2, 3), np.float32, np.nan),  # Live Link's [left, right] x [yaw, pitch, roll], radians
}
_REQUIRED = ("head_matrix", "blendshapes")  # every take has these; the others may be absent


def absent(name: str, n: int, k: int) -> np.ndarray:
    """An all-NaN (frames, faces, ...) array that takes no memory (read-only)."""
    shp, dt, empty = _ARRAYS[name]
    return np.broadcast_to(np.array(empty, dt), (n, k) + shp)


def is_absent(a) -> bool:
    """Whether an array is one of :func:`absent`'s views (the take does not carry it)."""
    a = np.asarray(a)
    return a.size > 1 and not any(a.strides)


class TakeError(FacemeshError, ValueError):
    """A take file that cannot be read; the message names the file and the problem."""


class Take:
    def __init__(self, fps: float, width: int, height: int, source: dict | None = None,
                 meta: dict | None = None):
        self.fps = float(fps)
        self.width, self.height = int(width), int(height)
        self.source = dict(source or {})
        self.meta = dict(meta or {})
        self.t = np.zeros(0, np.float64)
        self.frame_index = np.zeros(0, np.int64)
        self.face_ids = np.zeros((0, 0), np.int32)
        self.arrays = {k: np.zeros((0, 0) + shp, dt) for k, (shp, dt, _) in _ARRAYS.items()}
        self._pending: list = []
        self.warnings: list[str] = []  # what loading had to repair (see validate)
        self.journal = None  # the core.journal.TakeJournal streaming it while recorded, if any

    # --- recording -----------------------------------------------------------------------------

    def append(self, sample) -> None:
        """Record one worker sample (cheap: arrays are stacked lazily)."""
        self._pending.append(sample)

    def _flush(self) -> None:
        if not self._pending:
            return
        pend, self._pending = self._pending, []
        n0, k0 = len(self.t), self.face_ids.shape[1]
        k = max([k0] + [len(s.faces) for s in pend])
        n = n0 + len(pend)
        ids = np.full((n, k), -1, np.int32)
        ids[:n0, :k0] = self.face_ids
        arrays = {}
        supplied = {name for name in _ARRAYS for s in pend for f in s.faces if getattr(f, name, None) is not None}
        for name, (shp, dt, empty) in _ARRAYS.items():
            if name not in supplied and name not in _REQUIRED and (n0 == 0 or is_absent(self.arrays[name])):
                arrays[name] = absent(name, n, k)  # no sample carries it (a phone has no landmarks)
                continue
            a = np.full((n, k) + shp, empty, dt)
            a[:n0, :k0] = self.arrays[name]
            arrays[name] = a
        for i, s in enumerate(pend, start=n0):
            for j, f in enumerate(s.faces):
                ids[i, j] = f.id
                for name in supplied:
                    v = getattr(f, name, None)
                    if v is not None:
                        arrays[name][i, j] = v
        self.t = np.concatenate([self.t, [s.t for s in pend]]).astype(np.float64)
        self.frame_index = np.concatenate([self.frame_index, [s.index for s in pend]]).astype(np.int64)
        self.face_ids = ids
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.t) + len(self._pending)

    def _get(self, name):
        self._flush()
        a = self.arrays.get(name)
        if a is None:  # set by hand without it: the take does not carry it
            a = self.arrays[name] = absent(name, *self.face_ids.shape)
        return a

    landmarks = property(lambda self: self._get("landmarks"))
    head_matrix = property(lambda self: self._get("head_matrix"))
    mesh = property(lambda self: self._get("mesh"))
    blendshapes = property(lambda self: self._get("blendshapes"))
    mp_matrix = property(lambda self: self._get("mp_matrix"))
    eye_angles = property(lambda self: self._get("eye_angles"))

    def has(self, name: str) -> bool:
        """Whether the take carries this array (see :func:`is_absent`)."""
        return len(self) > 0 and not is_absent(self._get(name))

    @property
    def face_present(self) -> np.ndarray:
        """(frames,) bool: at least one face in the frame."""
        self._flush()
        return (self.face_ids >= 0).any(axis=1)

    def face_counts(self) -> dict[int, int]:
        """Face id -> frames it is in (the take's performers)."""
        self._flush()
        ids, counts = np.unique(self.face_ids[self.face_ids >= 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}

    @property
    def duration(self) -> float:
        self._flush()
        return float(self.t[-1] - self.t[0]) if len(self.t) > 1 else 0.0

    def face_track(self, face_id: int | None = None) -> dict:
        """One face's data as (frames, ...) arrays, NaN where it is absent (default: first id seen)."""
        self._flush()
        if face_id is None:
            seen = self.face_ids[self.face_ids >= 0]
            face_id = int(seen[0]) if seen.size else 0
        n = len(self.t)
        out = {"present": np.zeros(n, bool)}
        rows, cols = np.nonzero(self.face_ids == face_id)
        out["present"][rows] = True
        for name, (shp, dt, empty) in _ARRAYS.items():
            if is_absent(self._get(name)):
                out[name] = absent(name, n, 1)[:, 0]
                continue
            out[name] = np.full((n,) + shp, empty, dt)
            out[name][rows] = self.arrays[name][rows, cols]
        return out

    # --- files ---------------------------------------------------------------------------------

    def header(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "fps": self.fps, "width": self.width,
                "height": self.height, "source": self.source, "meta": self.meta,
                "blendshape_names": list(ARKIT_NAMES)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write .npz (lossless) or .json (interchange) by the file's extension, atomically."""
        path = Path(path)
        ext = path.suffix.lower()
        if ext not in (".npz", ".json"):
            raise TakeError(f"cannot save a take as {path.name}: use a .npz or .json file name")
        for name in _ARRAYS:
            self._get(name)
        with atomic_target(path) as tmp:
            if ext == ".npz":
                _write_npz(tmp, {"header": np.array(json.dumps(self.header())), "t": self.t,
                                 "frame_index": self.frame_index, "face_ids": self.face_ids,
                                 **{k: a for k, a in self.arrays.items() if not is_absent(a)}})
            else:
                tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        return path

    def to_json(self) -> dict:
        self._flush()
        frames = []
        for i in range(len(self.t)):
            faces = []
            for j in np.flatnonzero(self.face_ids[i] >= 0):
                faces.append({
                    "id": int(self.face_ids[i, j]),
                    "head_matrix": [_num(v) for v in self.arrays["head_matrix"][i, j].reshape(-1)],
                    "blendshapes": {n: _num(v, 5) for n, v in zip(ARKIT_NAMES, self.arrays["blendshapes"][i, j])},
                })
            frames.append({"t": round(float(self.t[i]), 6), "faces": faces})
        d = self.header()
        d["frames"] = frames
        return d

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Take":
        path = Path(path)
        if not path.is_file():
            raise TakeError(f"take file {path} does not exist")
        try:
            if path.suffix.lower() == ".json":
                take = cls._read_json(path)
            else:
                take = cls._read_npz(path)
        except TakeError as exc:
            raise TakeError(f"{path.name}: {exc}") from exc
        except RecursionError as exc:
            raise TakeError(f"{path.name} is not a readable take (nested too deeply)") from exc
        except MemoryError as exc:
            raise TakeError(f"{path.name} is not a readable take (it declares more data than fits in memory)") from exc
        except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, json.JSONDecodeError, TypeError,
                EOFError, AttributeError, OverflowError) as exc:
            raise TakeError(f"{path.name} is not a readable take ({type(exc).__name__}: {exc})") from exc
        validate(take, path.name)
        return take

    @classmethod
    def _read_npz(cls, path: Path) -> "Take":
        with np.load(path, allow_pickle=False) as z:
            take = cls._from_header(json.loads(str(z["header"])))
            take.t = z["t"]
            take.frame_index = z["frame_index"]
            take.face_ids = z["face_ids"]
            take.arrays = {k: z[k] for k in _ARRAYS if k in z.files}  # missing: absent (validate)
            missing = [k for k in _REQUIRED if k not in take.arrays]
            if missing:
                raise TakeError(f"it has no {' or '.join(missing)} array")
        return take

    @classmethod
    def _from_header(cls, h: dict) -> "Take":
        if not isinstance(h, dict):
            raise TakeError("not a blender_facemesh take (no header object)")
        if h.get("format") != FORMAT:
            raise TakeError(f"not a blender_facemesh take (format {h.get('format')!r})")
        if int(h.get("version", 0)) > VERSION:
            raise TakeError(f"take version {h['version']} is newer than this add-on reads ({VERSION})")
        return cls(h["fps"], h["width"], h["height"], h.get("source"), h.get("meta"))

    @classmethod
    def _read_json(cls, path: Path) -> "Take":
        """JSON carries pose and scores only (landmarks and mesh are absent). Read a frame at a
        time: memory grows with the take's arrays, not with the file's Python objects."""
        frames = _JsonFrames()
        with open(path, encoding="utf-8") as f:
            try:
                head = load_object(f, "frames", frames.add)
            except NotAnObject as exc:
                raise TakeError(f"not a blender_facemesh take ({exc})") from exc
        if "frames" not in head:
            cls._from_header(head)  # not a take at all is the clearer message
            raise TakeError("it has no frames")
        return frames.take(head)


def _write_npz(path: Path, arrays: dict) -> None:
    """``np.savez_compressed``'s file, written in a ``with`` so that a failed write (a full disk)
    closes the zip at once instead of failing again later in its finaliser."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)


class _JsonFrames:
    """JSON frames gathered into blocks of compact arrays, then scattered into the take."""

    BLOCK = 8192

    def __init__(self):
        self.t = array("d")
        self.blocks, self.used, self.k = [], 0, 0
        self.col = {n: i for i, n in enumerate(ARKIT_NAMES)}

    def _new_block(self):
        b = self.BLOCK
        self.blocks.append({"frame": np.zeros(b, np.int64), "slot": np.zeros(b, np.int32),
                            "id": np.zeros(b, np.int64), "head_matrix": np.zeros((b, 16), np.float64),
                            "blendshapes": np.full((b, len(ARKIT_NAMES)), np.nan, np.float32)})
        self.used = 0

    def add(self, f) -> None:
        i = len(self.t)
        self.t.append(float(f["t"]))
        faces = f["faces"]
        self.k = max(self.k, len(faces))
        for j, face in enumerate(faces):
            if not self.blocks or self.used == self.BLOCK:
                self._new_block()
            b, r = self.blocks[-1], self.used
            fid, mat = face["id"], face["head_matrix"]
            if not isinstance(fid, int) or isinstance(fid, bool):
                raise TakeError(f"frame {i}: face id {fid!r} is not a whole number")
            if not isinstance(mat, list) or len(mat) != 16:
                raise TakeError(f"frame {i}: the head matrix is not a list of 16 numbers")
            b["frame"][r], b["slot"][r], b["id"][r] = i, j, fid
            b["head_matrix"][r] = mat
            row = b["blendshapes"][r]
            for name, v in face["blendshapes"].items():
                c = self.col.get(name)
                if c is not None:
                    row[c] = v
            self.used += 1

    def take(self, head: dict) -> "Take":
        take = Take._from_header(head)
        n, k = len(self.t), self.k
        if k > MAX_FACES:
            raise TakeError(f"a frame has {k} faces (at most {MAX_FACES})")
        take.t = np.frombuffer(self.t, np.float64) if n else np.zeros(0)
        take.frame_index = np.arange(n, dtype=np.int64)
        take.face_ids = np.full((n, k), -1, np.int64)
        take.arrays = {name: np.full((n, k) + _ARRAYS[name][0], np.nan, _ARRAYS[name][1]) for name in _REQUIRED}
        while self.blocks:  # free each block once scattered
            b = self.blocks.pop(0)
            m = self.used if not self.blocks else self.BLOCK
            rows, slots = b["frame"][:m], b["slot"][:m]
            take.face_ids[rows, slots] = b["id"][:m]
            take.arrays["head_matrix"][rows, slots] = b["head_matrix"][:m].reshape(-1, 4, 4)
            take.arrays["blendshapes"][rows, slots] = b["blendshapes"][:m]
        names = head.get("blendshape_names")
        if isinstance(names, list):  # scores of channels the file does not name stay empty
            unnamed = [i for i, n in enumerate(ARKIT_NAMES) if n not in names]
            take.arrays["blendshapes"][:, :, unnamed] = np.nan
        if take.face_ids.size and not (-1 <= take.face_ids.min() and take.face_ids.max() < 2 ** 31 - 1):
            raise TakeError("some face ids are out of range")
        take.face_ids = take.face_ids.astype(np.int32)
        return take


MAX_FACES = 64
MAX_FPS = 1000.0
MAX_SIZE = 100_000  # pixels a side
MAX_BACKWARD_S = 1.0  # times going back further than this are a broken take, not jitter


def validate(take: Take, name: str = "the take") -> Take:
    """Check a take as read from a file and repair what can be repaired, in place; a take that
    cannot be used raises TakeError naming ``name`` and what is wrong. Every reader (npz, JSON,
    Live Link CSV) calls this, so the rest of the add-on can trust a loaded take. Repairs are
    listed in ``take.warnings``:
    - a face whose pose or scores are not finite in a frame counts as no face in that frame
      (a tracker glitch in a few frames must not make the whole take fail);
    - scores outside 0..1 are clipped; times that step back a little are nudged forward."""
    take._flush()

    def bad(what):
        raise TakeError(f"{name}: {what}")

    fps, w, h = take.fps, take.width, take.height
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        bad(f"frame rate {fps!r} is not between 0 and {MAX_FPS:g} fps")
    if not (0 <= w <= MAX_SIZE and 0 <= h <= MAX_SIZE):
        bad(f"image size {w}x{h} is not a picture size")
    t = np.asarray(take.t)
    if t.ndim != 1 or t.dtype.kind not in "fiu":
        bad(f"its times are not one number per frame (shape {t.shape})")
    n = len(t)
    t = t.astype(np.float64)
    if not np.isfinite(t).all():
        bad("some frame times are not numbers (NaN or infinite)")
    ids = np.asarray(take.face_ids)
    if ids.ndim != 2 or ids.shape[0] != n or ids.dtype.kind not in "iu":
        bad(f"its face ids are not whole numbers per frame and face (shape {ids.shape}, {ids.dtype})")
    if ids.shape[1] > MAX_FACES:
        bad(f"it has {ids.shape[1]} face slots (at most {MAX_FACES})")
    if ids.size and (ids.min() < -1 or ids.max() >= 2 ** 31 - 1):
        bad("some face ids are out of range")
    fi = np.asarray(take.frame_index)
    if fi.ndim != 1 or len(fi) != n or fi.dtype.kind not in "iu":
        bad(f"its frame numbers do not match its {n} frames")
    k = ids.shape[1]
    arrays = {}
    for key, (shp, dt, _empty) in _ARRAYS.items():
        if take.arrays.get(key) is None and key not in _REQUIRED:
            arrays[key] = absent(key, n, k)
            continue
        a = np.asarray(take.arrays.get(key))
        if a.shape != (n, k) + shp or a.dtype.kind not in "fiu":
            bad(f"its {key} array has shape {a.shape}, expected {(n, k) + shp}")
        arrays[key] = a.astype(dt, copy=False)
    if n > 1:
        step = np.diff(t)
        if (step < -MAX_BACKWARD_S).any():
            i = int(np.argmax(step < -MAX_BACKWARD_S))
            bad(f"its times go back from {t[i]:.3f} s to {t[i + 1]:.3f} s (frame {i + 1}): two takes in one file?")
        if (step <= 0).any():
            take.warnings.append(f"{int((step <= 0).sum())} frame times did not increase: nudged forward")
            for i in range(1, n):
                t[i] = max(t[i], t[i - 1] + 1e-6)
    present = ids >= 0
    mats, scores = arrays["head_matrix"], arrays["blendshapes"]
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isfinite(mats).all(axis=(2, 3)) & np.isfinite(scores).all(axis=2)
        ok &= np.abs(mats).max(axis=(2, 3), initial=0) < 1e6
        det = np.linalg.det(np.where(np.isfinite(mats[..., :3, :3]), mats[..., :3, :3], 0.0))
        ok &= np.abs(det) > 1e-9
    lost = present & ~ok
    if lost.any():
        rows, cols = np.nonzero(lost)
        ids = ids.copy()
        ids[rows, cols] = -1
        for key, (shp, dt, empty) in _ARRAYS.items():
            if is_absent(arrays[key]):
                continue
            arrays[key] = arrays[key].copy()
            arrays[key][rows, cols] = empty
        take.warnings.append(f"{len(rows)} face{'s' if len(rows) != 1 else ''} with a pose or scores that are not "
                             "numbers: counted as no face in those frames")
    live_scores = arrays["blendshapes"][ids >= 0]
    if live_scores.size and ((live_scores < 0) | (live_scores > 1)).any():
        arrays["blendshapes"] = np.where(ids[..., None] >= 0, np.clip(arrays["blendshapes"], 0, 1),
                                         arrays["blendshapes"]).astype(np.float32)
        take.warnings.append("scores outside 0..1 were clipped")
    take.t, take.face_ids, take.frame_index, take.arrays = t, ids.astype(np.int32), fi.astype(np.int64), arrays
    return take


def _num(v, digits: int = 6):
    v = float(v)
    return None if math.isnan(v) else round(v, digits)
