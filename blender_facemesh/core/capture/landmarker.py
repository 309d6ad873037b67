"""MediaPipe FaceLandmarker behind a small, numpy-only interface.

Why a wrapper: MediaPipe's result objects are lists of Python objects (slow to walk in a
live loop, and not picklable), its VIDEO and LIVE_STREAM modes have different calling
conventions, its face order is not stable across frames, and its GPU delegate can fail in
ways that take the process down. Here each call returns plain arrays with stable face ids,
and the delegate is chosen safely (GPU probed in a child process, answer cached).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FacemeshError
from ..channels import ARKIT_INDEX, ARKIT_NAMES, N_MESH_VERTICES
from .model import load_model, user_cache_dir

# MediaPipe's blendshape output order: index 0 is `_neutral`, then 51 ARKit names.
MODEL_BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
# model output index -> ARKit slot (-1: `_neutral`, which has no ARKit counterpart)
_MODEL_TO_ARKIT = [ARKIT_INDEX.get(n, -1) for n in MODEL_BLENDSHAPE_NAMES]
DELEGATES = ("AUTO", "GPU", "CPU")


class LandmarkerError(FacemeshError):
    """The landmarker could not be created or run; the message says what to do."""


@dataclass
class DetectedFace:
    id: int
    landmarks: np.ndarray        # (478, 3) float32, normalized x, y in 0..1, z scaled like x
    blendshapes: np.ndarray      # (52,) float32, ARKit order (channels.ARKIT_NAMES)
    mp_matrix: np.ndarray        # (4, 4) float32, MediaPipe's own pose (kept for comparison)


@dataclass
class Detection:
    t: float
    faces: list[DetectedFace] = field(default_factory=list)


# --- delegate choice -----------------------------------------------------------------------

_PROBE_CODE = r"""
import sys
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions
opts = vision.FaceLandmarkerOptions(
    base_options=BaseOptions(model_asset_path=sys.argv[1], delegate=BaseOptions.Delegate.GPU),
    running_mode=vision.RunningMode.IMAGE)
try:
    lm = vision.FaceLandmarker.create_from_options(opts)
except Exception as exc:
    import re
    msg = re.sub(r"required by node \S+", "required by the landmarker graph", " ".join(str(exc).split()))
    print("FAIL " + msg[:400])
    sys.exit(0)
import numpy as np, mediapipe as mp
lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
lm.close()
print("OK")
"""


def _short_error(text: str) -> str:
    """MediaPipe errors name graph nodes hundreds of characters long; keep the useful part."""
    import re
    return re.sub(r"required by node \S+", "required by the landmarker graph", " ".join(str(text).split()))[:400]


def _probe_cache_file() -> Path:
    return user_cache_dir() / "gpu_probe.json"


def _probe_key() -> str:
    try:
        from importlib.metadata import version
        mp_version = version("mediapipe")
    except Exception:
        mp_version = "unknown"
    return f"{mp_version}|{sys.platform}|{platform.machine()}|{platform.node()}"


def probe_gpu(model_path: Path, timeout: float = 60.0, use_cache: bool = True) -> tuple[bool, str]:
    """Can the GPU delegate run here? Tried in a child process because GPU start-up failures
    abort the process on some platforms; the answer is cached per machine and mediapipe version."""
    if sys.platform == "win32":
        return False, "MediaPipe has no GPU delegate on Windows"
    cache = _probe_cache_file()
    key = _probe_key()
    if use_cache and cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return bool(data["ok"]), str(data["reason"])
        except (ValueError, KeyError, OSError):
            pass
    python = _python_executable()
    try:
        out = subprocess.run([python, "-c", _PROBE_CODE, str(model_path)], capture_output=True,
                             text=True, timeout=timeout, env={**os.environ, "GLOG_minloglevel": "2"})
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("OK", "FAIL"))]
        if lines and lines[-1] == "OK":
            ok, reason = True, "GPU delegate initialised and ran in a probe process"
        elif lines:
            ok, reason = False, lines[-1][5:]
        else:
            tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
            ok, reason = False, f"GPU probe process exited with code {out.returncode}: {tail[:300]}"
    except subprocess.TimeoutExpired:
        ok, reason = False, f"GPU probe did not finish within {timeout:.0f} s"
    except OSError as exc:
        ok, reason = False, f"GPU probe could not start: {exc}"
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "ok": ok, "reason": reason}))
    except OSError:
        pass
    return ok, reason


def _python_executable() -> str:
    """Inside Blender sys.executable may be the Blender binary; find its Python instead."""
    exe = sys.executable
    if Path(exe).name.lower().startswith("blender"):
        import glob
        found = glob.glob(os.path.join(sys.prefix, "bin", "python3*"))
        if found:
            return found[0]
    return exe


def choose_delegate(requested: str, model_path: Path) -> tuple[str, str]:
    """Return (delegate to use, why). GPU requested but unavailable falls back to CPU, saying why."""
    requested = requested.upper()
    if requested not in DELEGATES:
        raise LandmarkerError(f"unknown delegate {requested!r}: use one of {', '.join(DELEGATES)}")
    if requested == "CPU":
        return "CPU", "CPU requested"
    ok, reason = probe_gpu(model_path)
    if ok:
        return "GPU", reason
    return "CPU", f"GPU unavailable, using CPU: {reason}"


# --- face ids --------------------------------------------------------------------------------

class FaceIdTracker:
    """Gives each face a stable id: match this frame's faces to the last known positions by the
    distance of their landmark centroids (greedy, closest first). A face that leaves (turns away,
    steps out, is hidden) keeps its id when it comes back within ``keep_seconds`` near where it
    was last seen; a face anywhere else, or after longer, is a new performer with a new id."""

    def __init__(self, max_jump: float = 0.25, keep_seconds: float = 3.0, fps: float = 30.0):
        self.max_jump = max_jump
        self.keep_seconds = keep_seconds
        self.fps = fps  # for callers that give no times: one frame each
        self._last: dict[int, tuple[np.ndarray, float]] = {}  # id -> (centroid, time last seen)
        self._next_id = 0
        self._frames = 0

    def reset(self) -> None:
        self._last.clear()
        self._next_id = 0
        self._frames = 0

    def assign(self, centroids: list[np.ndarray], t: float | None = None) -> list[int]:
        if t is None:
            t = self._frames / self.fps
        self._frames += 1
        self._last = {fid: v for fid, v in self._last.items() if t - v[1] <= self.keep_seconds}
        pairs = sorted(
            (float(np.sqrt(((c - prev) ** 2).sum())), i, fid)
            for i, c in enumerate(centroids) for fid, (prev, _) in self._last.items()
        )
        ids: list[int | None] = [None] * len(centroids)
        used = set()
        for dist, i, fid in pairs:
            if dist > self.max_jump or ids[i] is not None or fid in used:
                continue
            ids[i] = fid
            used.add(fid)
        for i in range(len(ids)):
            if ids[i] is None:
                ids[i] = self._next_id
                self._next_id += 1
        self._last.update({fid: (c, t) for fid, c in zip(ids, centroids)})
        return ids


# --- the landmarker --------------------------------------------------------------------------

@dataclass
class LandmarkerSettings:
    model_path: str | None = None
    num_faces: int = 1
    delegate: str = "AUTO"
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5


class Landmarker:
    """FaceLandmarker in VIDEO mode (files: every frame, in order) or LIVE_STREAM mode
    (cameras: MediaPipe may skip frames). ``detect`` is synchronous in both."""

    def __init__(self, settings: LandmarkerSettings | None = None, live: bool = False):
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.settings = s = settings or LandmarkerSettings()
        if not 1 <= int(s.num_faces) <= 8:
            raise LandmarkerError(f"num_faces must be between 1 and 8, got {s.num_faces}")
        self.model = load_model(s.model_path)
        self.live = live
        self.delegate, self.delegate_reason = choose_delegate(s.delegate, self.model.path)
        self._ids = FaceIdTracker()
        self._last_ms = -1
        self._result = None
        self._result_ready = threading.Event()
        delegate = BaseOptions.Delegate.GPU if self.delegate == "GPU" else BaseOptions.Delegate.CPU
        opts = dict(
            base_options=BaseOptions(model_asset_path=str(self.model.path), delegate=delegate),
            num_faces=int(s.num_faces),
            min_face_detection_confidence=s.min_detection_confidence,
            min_face_presence_confidence=s.min_presence_confidence,
            min_tracking_confidence=s.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        if live:
            opts.update(running_mode=vision.RunningMode.LIVE_STREAM, result_callback=self._on_result)
        else:
            opts.update(running_mode=vision.RunningMode.VIDEO)
        try:
            self._lm = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(**opts))
        except Exception as exc:
            if self.delegate != "GPU":
                raise LandmarkerError(f"could not start the face landmarker: {_short_error(exc)}") from exc
            # the probe passed but the real start failed: fall back rather than give up
            self.delegate_reason = f"GPU start failed, using CPU: {_short_error(exc)}"
            self.delegate = "CPU"
            opts["base_options"] = BaseOptions(model_asset_path=str(self.model.path),
                                               delegate=BaseOptions.Delegate.CPU)
            self._lm = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(**opts))

    def _on_result(self, result, image, timestamp_ms):
        self._result = (timestamp_ms, result)
        self._result_ready.set()

    def _timestamp_ms(self, t: float) -> int:
        # MediaPipe needs strictly increasing integer milliseconds
        ms = max(int(round(t * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def detect(self, rgb: np.ndarray, t: float, timeout: float = 2.0) -> Detection:
        return self.convert(self.detect_raw(rgb, t, timeout), t)

    def detect_raw(self, rgb: np.ndarray, t: float, timeout: float = 2.0):
        """Run inference only; ``convert`` the result later (the worker does it on another
        thread, so it overlaps with the next frame's inference). None: MediaPipe dropped it."""
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        ms = self._timestamp_ms(t)
        if not self.live:
            return self._lm.detect_for_video(image, ms)
        self._result_ready.clear()
        self._lm.detect_async(image, ms)
        if not self._result_ready.wait(timeout):
            return None
        result_ms, result = self._result
        return result if result_ms == ms else None

    def convert(self, result, t: float) -> Detection:
        """MediaPipe result -> arrays with stable face ids. Call in frame order."""
        if result is None:
            return Detection(t)
        return self._convert(result, t)

    def _convert(self, result, t: float) -> Detection:
        faces = []
        n = len(result.face_landmarks)
        if n == 0:
            self._ids.assign([], t)
            return Detection(t)
        lms = [np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32) for face in result.face_landmarks]
        ids = self._ids.assign([lm[:N_MESH_VERTICES, :2].mean(axis=0) for lm in lms], t)
        for k in range(n):
            scores = np.zeros(len(ARKIT_NAMES), dtype=np.float32)
            if k < len(result.face_blendshapes or []):
                for cat in result.face_blendshapes[k]:
                    if 0 <= cat.index < len(_MODEL_TO_ARKIT) and _MODEL_TO_ARKIT[cat.index] >= 0:
                        scores[_MODEL_TO_ARKIT[cat.index]] = cat.score
            mats = result.facial_transformation_matrixes or []
            mat = np.asarray(mats[k], dtype=np.float32) if k < len(mats) else np.full((4, 4), np.nan, np.float32)
            faces.append(DetectedFace(ids[k], lms[k], scores, mat))
        faces.sort(key=lambda f: f.id)
        return Detection(t, faces)

    def close(self) -> None:
        lm, self._lm = getattr(self, "_lm", None), None
        if lm is not None:
            try:
                lm.close()
            except RuntimeError:
                # the interpreter is exiting and MediaPipe's dispatcher is already shut down:
                # the process frees the graph anyway, so this is not worth a thread traceback
                import sys

                if not sys.is_finalizing() and "shutdown" not in str(sys.exc_info()[1]):
                    raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
