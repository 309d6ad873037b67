"""Synthetic face video with known head pose.

Tracking code can only be checked against ground truth, and real footage has none. So we
take one real face (scikit-image's astronaut photo), glue it as a texture onto MediaPipe's
own canonical face mesh, and render that mesh at any rotation and translation through a
pinhole camera that matches MediaPipe's assumptions (vertical FOV 63 degrees, principal point
at the image centre). The renderer is a small numpy/OpenCV rasteriser, so nothing beyond the
project's run-time dependencies is needed (scikit-image only supplies the photo).

Conventions (shared with MediaPipe's facial transformation matrix):
  * model space: the canonical face in cm, +X to the viewer's right of a frontal face, +Y up,
    +Z out of the face toward the viewer;
  * camera space: camera at the origin looking down -Z, +X right, +Y up (OpenGL style);
  * a vertex ``v`` is placed at ``R @ (shape * v) + T``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..camera import DEFAULT_FOV_DEG, project
from ..channels import N_MESH_VERTICES
from ..rotations import euler_to_matrix

DEFAULT_DISTANCE_CM = 50.0
DEFAULT_SIZE = (512, 512)      # (W, H)
NEAR_CM = 1.0                  # triangles closer than this to the camera are dropped, not clipped

SAMPLE_SECONDS = 3.0
SAMPLE_FPS = 30
SAMPLE_SIZE = (512, 512)
# Bump when the renderer or the sequence changes so stale cached clips are not reused.
SAMPLE_VERSION = 1


# --- head motion ------------------------------------------------------------------------------


def head_turn_sequence(n_frames: int, yaw_amp: float = 25.0, pitch_amp: float = 15.0,
                       roll_amp: float = 10.0) -> np.ndarray:
    """A smooth, looping, deterministic head path as (n, 3) [yaw, pitch, roll] degrees.

    Starts frontal; yaw does one full left/right cycle, pitch two up/down cycles and roll three,
    so every direction and several combinations are visited and the end meets the start.
    """
    t = np.arange(int(n_frames), dtype=np.float64) / max(int(n_frames), 1)
    return np.stack([
        yaw_amp * np.sin(2 * np.pi * t),
        pitch_amp * np.sin(4 * np.pi * t),
        roll_amp * np.sin(6 * np.pi * t),
    ], axis=1)


def fast_turn_sequence(seconds: float = 8.0, fps: float = 30.0, yaw_amp: float = 40.0, pitch_amp: float = 20.0,
                       roll_amp: float = 15.0, peak_speed: float = 90.0, still_seconds: float = 1.0) -> np.ndarray:
    """Ordinary fast head turns with known truth, as (n, 3) [yaw, pitch, roll] degrees: still
    for ``still_seconds`` (jitter is measured there), moving for ``seconds``, still again.

    Smoothing is judged on this: the turns reach ``peak_speed`` deg/s (about 65 median, as a
    person turning to look at something), so a filter that lags shows it as degrees of error.
    Each axis is a sinusoid of its own frequency, eased in and out, so the motion never jumps.
    """
    n_move = int(round(seconds * fps))
    hold = np.zeros((int(round(still_seconds * fps)), 3))
    if n_move < 2:
        return hold
    t = np.arange(n_move, dtype=np.float64) / fps
    ease = np.sin(np.pi * np.clip(t / min(1.0, seconds / 2), 0, 1) / 2) ** 2
    ease = np.minimum(ease, ease[::-1])
    amps = np.array([yaw_amp, pitch_amp, roll_amp], np.float64)

    def path(rate):
        freq, phase = np.array([0.33, 0.47, 0.39]) * rate, np.array([0.0, 0.9, 2.1])
        return amps * np.sin(2 * np.pi * freq * t[:, None] + phase) * ease[:, None]

    rate = 1.0
    for _ in range(4):  # speed grows with the rate: a few rescalings land on the peak
        speed = np.linalg.norm(np.diff(path(rate), axis=0), axis=1).max() * fps
        rate *= peak_speed / speed
    move = path(rate)
    return np.concatenate([hold + move[:1], move, hold + move[-1:]])


# --- the textured mesh ------------------------------------------------------------------------

def _astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as exc:  # scikit-image is a dev/demo dependency, not a run-time one
        raise ImportError(
            "the synthetic face needs scikit-image for its source photo: pip install scikit-image"
        ) from exc
    return np.ascontiguousarray(data.astronaut()[..., :3])


# Poses at which the texture is re-registered (see _face_texture): a spread around frontal so
# that pose-dependent landmark noise averages out instead of being baked in.
_REGISTRATION_POSES = ((0, 0, 0), (20, 0, 0), (-20, 0, 0), (0, 12, 0), (0, -12, 0))


@functools.lru_cache(maxsize=1)
def _face_texture() -> tuple[np.ndarray, np.ndarray]:
    """The photo and where each of the 468 mesh vertices lies in it (pixels, continuous coords).

    Found with MediaPipe itself, so the rendered features sit where MediaPipe expects them on
    the canonical mesh. The photo's head is pitched about 15 degrees, which skews its landmarks:
    a face textured from them straight away reads about 2.5 degrees "looking down" when rendered
    frontal. One registration pass removes that: render at a few poses, see where MediaPipe puts
    each landmark, and move that vertex's texture coordinate to the photo point shown there.
    IMAGE mode is deterministic, hence the cache.
    """
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from ..capture.model import load_model

    photo = _astronaut()
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(load_model().path)),
        running_mode=vision.RunningMode.IMAGE, num_faces=1)

    def landmarks(lm, rgb):
        res = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        if not res.face_landmarks:
            return None
        h, w = rgb.shape[:2]
        pts = [(p.x, p.y) for p in res.face_landmarks[0][:N_MESH_VERTICES]]
        return np.array(pts, dtype=np.float64) * (w, h)

    with vision.FaceLandmarker.create_from_options(opts) as lm:
        uv = landmarks(lm, photo)
        if uv is None:
            raise RuntimeError("MediaPipe found no face in the astronaut photo; cannot build the texture")
        shift = np.zeros_like(uv)
        count = np.zeros(len(uv))
        for pose in _REGISTRATION_POSES:
            rgb, map_x, map_y = _render(photo, uv, euler_to_matrix(*pose), None, (1.0, 1.0, 1.0),
                                        DEFAULT_SIZE, DEFAULT_FOV_DEG)
            seen = landmarks(lm, rgb)
            if seen is None:
                continue
            tex_x, ok_x = _sample_map(map_x, seen - 0.5)
            tex_y, ok_y = _sample_map(map_y, seen - 0.5)
            ok = ok_x & ok_y
            shift[ok] += np.stack([tex_x, tex_y], axis=1)[ok] + 0.5 - uv[ok]
            count[ok] += 1
    moved = count > 0
    uv[moved] += shift[moved] / count[moved, None]
    photo.setflags(write=False)
    uv.setflags(write=False)
    return photo, uv


def _sample_map(img: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear lookup of a map at (x, y) points; ok is False where any tap is off the face (<0)."""
    h, w = img.shape
    x0 = np.floor(pts[:, 0]).astype(np.int64)
    y0 = np.floor(pts[:, 1]).astype(np.int64)
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    value = np.zeros(len(pts))
    ok = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        tap = img[np.clip(y0 + dy, 0, h - 1), np.clip(x0 + dx, 0, w - 1)]
        ok &= tap >= 0
        value += (fx if dx else 1 - fx) * (fy if dy else 1 - fy) * tap
    return value, ok


@functools.lru_cache(maxsize=8)
def background(size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """A smooth, face-free backdrop (HxWx3 RGB), so detectors can only lock onto the mesh."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= max(h - 1, 1)
    xx /= max(w - 1, 1)
    base = 165.0 - 70.0 * yy + 15.0 * np.cos(np.pi * xx)
    img = np.stack([base * 0.92, base * 0.97, base * 1.05], axis=-1)
    out = np.clip(img, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=1)
def _mesh() -> tuple[np.ndarray, np.ndarray]:
    """Canonical vertices and triangles, cached: load_model() re-hashes the model file each call."""
    from ..capture.model import load_model

    model = load_model()
    return model.canonical_vertices, model.triangles


def _camera_points(R, T, shape) -> np.ndarray:
    verts = _mesh()[0] * np.asarray(shape, dtype=np.float64).reshape(1, 3)
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T = np.asarray(T, dtype=np.float64).reshape(3)
    return verts @ R.T + T


def render_face(R: np.ndarray, T=None, shape=(1.0, 1.0, 1.0), size: tuple[int, int] = DEFAULT_SIZE,
                fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Render the textured face with rotation R and translation T (cm, default 50 cm ahead).

    Returns an HxWx3 uint8 RGB image. ``shape`` scales the canonical face per axis before
    posing, to imitate people whose proportions differ from MediaPipe's average face.
    """
    photo, uv = _face_texture()
    return _render(photo, uv, R, T, shape, size, fov_deg)[0]


def _render(photo, uv, R, T, shape, size, fov_deg):
    """Rasterise the mesh; also returns the per-pixel photo coordinates (-1 where no face)."""
    w, h = int(size[0]), int(size[1])
    if T is None:
        T = (0.0, 0.0, -DEFAULT_DISTANCE_CM)
    tris = _mesh()[1]
    cam = _camera_points(R, T, shape)
    xy = project(cam, (w, h), fov_deg) - 0.5          # pixel centres at integers, for OpenCV
    z = cam[:, 2]
    map_x = np.full((h, w), -1.0, dtype=np.float32)
    map_y = np.full((h, w), -1.0, dtype=np.float32)
    out = background((w, h)).copy()

    # Cull: behind/too near the camera, back-facing (canonical winding is CCW seen from +Z, and
    # with y flipped to image-down a front face has negative signed area), off screen.
    a, b, c = xy[tris[:, 0]], xy[tris[:, 1]], xy[tris[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo = np.minimum(np.minimum(a, b), c)
    hi = np.maximum(np.maximum(a, b), c)
    keep = ((z[tris] < -NEAR_CM).all(axis=1) & (area2 < -1e-9)
            & (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < w) & (lo[:, 1] < h))
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return out, map_x, map_y

    # Painter's algorithm into a triangle-id buffer: farthest (most negative z) first.
    idx = idx[np.argsort(z[tris[idx]].mean(axis=1), kind="stable")]
    ids = np.full((h, w), -1, dtype=np.int32)
    fixed = np.round(xy * 16.0).astype(np.int32)      # 4 bits of sub-pixel precision
    for t in idx:
        cv2.fillConvexPoly(ids, fixed[tris[t]], int(t), lineType=cv2.LINE_8, shift=4)

    rows, cols = np.nonzero(ids >= 0)
    tid = ids[rows, cols]
    # Barycentrics of each covered pixel in its screen triangle ...
    m = np.ones((len(idx), 3, 3))
    m[:, :2, :] = xy[tris[idx]].transpose(0, 2, 1)
    minv = np.zeros((len(tris), 3, 3))
    minv[idx] = np.linalg.inv(m)
    pix = np.stack([cols, rows, np.ones_like(cols)], axis=1).astype(np.float64)
    bary = np.einsum("nij,nj->ni", minv[tid], pix)
    # ... made perspective-correct (weights divided by depth), then used to look up the photo.
    bary /= -z[tris[tid]]
    bary /= bary.sum(axis=1, keepdims=True)
    tex = np.einsum("ni,nij->nj", bary, uv[tris[tid]]) - 0.5
    map_x[rows, cols] = tex[:, 0]
    map_y[rows, cols] = tex[:, 1]
    # One remap over the face's bounding box only; the rest of the frame is background.
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    sampled = cv2.remap(photo, map_x[r0:r1, c0:c1], map_y[r0:r1, c0:c1],
                        interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[rows, cols] = sampled[rows - r0, cols - c0]
    return out, map_x, map_y


# --- clips ------------------------------------------------------------------------------------

@dataclass
class ClipTruth:
    """Ground truth for a rendered clip: the pose of the face in every frame."""

    rotations: np.ndarray          # (n, 3, 3), canonical -> camera
    translations: np.ndarray       # (n, 3), cm, camera space (camera looks down -Z)
    fps: float
    fov_deg: float
    shape: tuple[float, float, float]
    size: tuple[int, int]          # (W, H)
    path: Path
    eulers: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (n, 3) yaw, pitch, roll

    @property
    def matrices(self) -> np.ndarray:
        """(n, 4, 4) poses in the same form as MediaPipe's facial transformation matrixes."""
        n = len(self.rotations)
        out = np.tile(np.eye(4), (n, 1, 1))
        out[:, :3, :3] = self.rotations
        out[:, :3, 3] = self.translations
        return out

    def save(self, npz_path: str | os.PathLike) -> None:
        # np.savez appends .npz unless the name already ends with it; a file object avoids that.
        with open(npz_path, "wb") as f:
            np.savez(f, rotations=self.rotations, translations=self.translations,
                     eulers=self.eulers, fps=self.fps, fov_deg=self.fov_deg,
                     shape=np.asarray(self.shape, dtype=np.float64),
                     size=np.asarray(self.size, dtype=np.int64), path=str(self.path))

    @classmethod
    def load(cls, npz_path: str | os.PathLike, path: str | os.PathLike | None = None) -> "ClipTruth":
        with np.load(npz_path) as z:
            return cls(rotations=z["rotations"], translations=z["translations"],
                       fps=float(z["fps"]), fov_deg=float(z["fov_deg"]),
                       shape=tuple(float(s) for s in z["shape"]),
                       size=tuple(int(s) for s in z["size"]),
                       path=Path(path) if path is not None else Path(str(z["path"])),
                       eulers=z["eulers"])


def write_clip(path: str | os.PathLike, eulers: np.ndarray, fps: float = 30, size=DEFAULT_SIZE,
               shape=(1.0, 1.0, 1.0), fov_deg: float = DEFAULT_FOV_DEG,
               distance_cm: float = DEFAULT_DISTANCE_CM) -> ClipTruth:
    """Render one frame per (yaw, pitch, roll) row into an mp4 and return its ground truth."""
    path = Path(path)
    eulers = np.asarray(eulers, dtype=np.float64).reshape(-1, 3)
    w, h = int(size[0]), int(size[1])
    rotations = np.stack([euler_to_matrix(*e) for e in eulers]) if len(eulers) else np.zeros((0, 3, 3))
    translations = np.tile([0.0, 0.0, -float(distance_cm)], (len(eulers), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(
            f"OpenCV could not open a video writer for {path} (codec mp4v, {w}x{h} @ {fps} fps); "
            "check that the folder is writable and the name ends in .mp4")
    try:
        for R, T in zip(rotations, translations):
            rgb = render_face(R, T, shape=shape, size=(w, h), fov_deg=fov_deg)
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    if len(eulers) and (not path.is_file() or path.stat().st_size == 0):
        raise RuntimeError(f"OpenCV wrote nothing to {path} (disk full, or the mp4v encoder failed)")
    return ClipTruth(rotations=rotations, translations=translations, fps=float(fps),
                     fov_deg=float(fov_deg), shape=tuple(float(s) for s in shape), size=(w, h),
                     path=path, eulers=eulers)


def sample_clip_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The built-in demo/test clip, rendered once into the cache and reused afterwards.

    Its ground truth is saved beside it with the same stem and an ``.npz`` suffix (see
    :meth:`ClipTruth.load`). Both files are written under temporary names and moved into place,
    clip last, so an interrupted run never leaves a clip that looks complete.
    """
    if cache_dir is None:
        from ..files import user_cache_dir
        folder = user_cache_dir() / "sample"
    else:
        folder = Path(cache_dir)
    stem = f"head_turn_{SAMPLE_SIZE[0]}x{SAMPLE_SIZE[1]}_v{SAMPLE_VERSION}"
    clip, truth = folder / f"{stem}.mp4", folder / f"{stem}.npz"
    if clip.is_file() and clip.stat().st_size > 0 and truth.is_file():
        return clip
    folder.mkdir(parents=True, exist_ok=True)
    tag = f".{stem}.{os.getpid()}.tmp"
    tmp_clip, tmp_truth = folder / f"{tag}.mp4", folder / f"{tag}.npz"
    try:
        n = int(round(SAMPLE_SECONDS * SAMPLE_FPS))
        info = write_clip(tmp_clip, head_turn_sequence(n), fps=SAMPLE_FPS, size=SAMPLE_SIZE)
        info.path = clip
        info.save(tmp_truth)
        os.replace(tmp_truth, truth)
        os.replace(tmp_clip, clip)
    finally:
        for p in (tmp_clip, tmp_truth):
            if p.exists():
                p.unlink()
    return clip


def sample_clip_truth(cache_dir: str | os.PathLike | None = None) -> ClipTruth:
    """Ground truth of :func:`sample_clip_path`'s clip (generating the clip if needed)."""
    clip = sample_clip_path(cache_dir)
    return ClipTruth.load(clip.with_suffix(".npz"), path=clip)


@dataclass
class TwoFaceTruth:
    path: Path
    fps: float
    left: np.ndarray          # (n, 3) [yaw, pitch, roll] of the left face: it turns side to side
    right: np.ndarray         # (n, 3) of the right face: it nods
    right_present: np.ndarray  # (n,) bool: False while the right face is out of the picture


def two_face_clip(path: str | os.PathLike, seconds: float = 3.0, fps: float = 30.0, away=(1.0, 2.0),
                  half: int = 384) -> TwoFaceTruth:
    """Two of the test faces side by side (a two-person scene): the left one turns its head, the
    right one nods and leaves the picture for the ``away`` stretch (seconds), then comes back."""
    path = Path(path)
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    left = np.stack([20 * np.sin(2 * np.pi * t / seconds), np.zeros(n), np.zeros(n)], 1)
    right = np.stack([np.zeros(n), 15 * np.sin(4 * np.pi * t / seconds), np.zeros(n)], 1)
    present = ~((t >= away[0]) & (t < away[1])) if away is not None else np.ones(n, bool)
    empty = background((half, half))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (2 * half, half))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open a video writer for {path}")
    try:
        for i in range(n):
            a = render_face(euler_to_matrix(*left[i]), size=(half, half))
            b = render_face(euler_to_matrix(*right[i]), size=(half, half)) if present[i] else empty
            writer.write(cv2.cvtColor(np.hstack([a, b]), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return TwoFaceTruth(path, float(fps), left, right, present)
