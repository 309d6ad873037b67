"""The overlay video: the tracked face mesh, head axes and strongest blendshapes on each frame.

Drawn like MediaPipe's own face-mesh pictures: the tessellation as thin grey lines, the
contours (face oval, eyes, eyebrows, lips) in colour, irises as circles; the subject's left
side green, their right side red. The head pose is drawn as 3D axes (X red, Y green, Z blue,
8 cm each) projected through the take's pinhole camera, and the six strongest blendshapes as
bars in a panel at the top right. Frames without a face get a red border and "no face";
video frames the take does not cover get a grey "not tracked".

numpy + OpenCV only; NEVER imports bpy (Blender's preview draws with it from a thread).
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from ..channels import ARKIT_NAMES, N_LANDMARKS, N_MESH_VERTICES
from ..errors import OutputError
from ..files import atomic_target
from ..camera import DEFAULT_FOV_DEG, project
from ..rotations import rotation_part

# Contours as polylines (landmark indices), the same edges as MediaPipe's FaceLandmarksConnections
# (FACE_OVAL, LEFT/RIGHT_EYE, LEFT/RIGHT_EYEBROW, LIPS, LEFT/RIGHT_IRIS), so no import is needed.
FACE_OVAL = ((10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
              152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109, 10),)
LEFT_EYE = ((263, 249, 390, 373, 374, 380, 381, 382, 362), (263, 466, 388, 387, 386, 385, 384, 398, 362))
RIGHT_EYE = ((33, 7, 163, 144, 145, 153, 154, 155, 133), (33, 246, 161, 160, 159, 158, 157, 173, 133))
LEFT_EYEBROW = ((276, 283, 282, 295, 285), (300, 293, 334, 296, 336))
RIGHT_EYEBROW = ((46, 53, 52, 65, 55), (70, 63, 105, 66, 107))
LIPS = ((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291), (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291),
        (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308), (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308))
LEFT_IRIS = ((474, 475, 476, 477, 474),)    # centre 473
RIGHT_IRIS = ((469, 470, 471, 472, 469),)   # centre 468

# RGB colours, after MediaPipe's drawing styles
TESSELATION_RGB = (192, 192, 192)
WHITE, GREEN, RED, GREY = (224, 224, 224), (48, 255, 48), (255, 48, 48), (150, 150, 150)
CONTOURS = ((FACE_OVAL, WHITE), (LIPS, WHITE), (LEFT_EYE, GREEN), (LEFT_EYEBROW, GREEN),
            (RIGHT_EYE, RED), (RIGHT_EYEBROW, RED))
AXIS_RGB = ((230, 40, 40), (40, 200, 40), (50, 90, 255))   # X red, Y green, Z blue
AXIS_CM = 8.0
NO_FACE_RGB = (220, 40, 40)
TOP_N = 6
_SHIFT = 4                                                # sub-pixel bits for OpenCV drawing
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def polyline_edges(paths) -> np.ndarray:
    """(E, 2) int edges of a set of polylines."""
    return np.array([(p[i], p[i + 1]) for p in paths for i in range(len(p) - 1)], np.int64)


@functools.lru_cache(maxsize=1)
def tessellation_edges() -> np.ndarray:
    """(E, 2) unique undirected edges: MediaPipe's FACE_LANDMARKS_TESSELATION, else the edges of
    the model's own 898 triangles (a slightly different but equally fine triangulation)."""
    try:
        from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections
        e = np.array([(c.start, c.end) for c in FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION])
    except (ImportError, AttributeError):
        from ..capture.model import load_model
        t = load_model().triangles
        e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    e = np.unique(np.sort(e.astype(np.int64), axis=1), axis=0)
    e.setflags(write=False)
    return e


def _scale(h: int) -> float:
    return float(np.clip(h / 512.0, 0.6, 3.0))


def panel_rect(width: int, height: int, top_n: int = TOP_N) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the blendshape panel, top right; pixels outside it are the video's."""
    s = _scale(height)
    pw = int(min(width // 2, max(178 * s, 0.3 * width)))
    ph = int(round((8 + 24 * top_n) * s))
    m = int(round(6 * s))
    return width - pw - m, m, width - m, min(height, m + ph)


def project_axes(head_matrix, width: int, height: int, fov_deg: float = DEFAULT_FOV_DEG,
                 length_cm: float = AXIS_CM):
    """Pixel coordinates (continuous, pixel i spans [i, i+1)) of the head's origin and the ends of
    its X, Y, Z axes: (4, 2), plus their camera-space depths (4,). Camera looks down -Z, +Y up."""
    m = np.asarray(head_matrix, np.float64)
    origin = m[:3, 3]
    pts = np.vstack([origin, origin + length_cm * rotation_part(m).T])
    return project(pts, (width, height), fov_deg), -pts[:, 2]


def _fixed(xy: np.ndarray) -> np.ndarray:
    """Continuous pixel coords -> OpenCV's pixel-centre coords in 1/16 px fixed point."""
    return np.round((np.asarray(xy, np.float64) - 0.5) * (1 << _SHIFT)).astype(np.int32)


def _text(img, text, org, scale, colour, thickness=1):
    cv2.putText(img, text, org, _FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _draw_mesh(img, landmarks: np.ndarray) -> None:
    h, w = img.shape[:2]
    lm = np.asarray(landmarks, np.float64)
    xy = lm[:, :2] * (w, h)                       # normalised -> continuous pixel coordinates
    if not np.isfinite(xy[:N_MESH_VERTICES]).all():
        return
    px = _fixed(xy)
    cv2.polylines(img, list(px[tessellation_edges()]), False, TESSELATION_RGB, 1, cv2.LINE_AA, _SHIFT)
    thick = max(1, int(round(_scale(h))))
    for paths, colour in CONTOURS:
        cv2.polylines(img, [px[list(p)] for p in paths], False, colour, thick, cv2.LINE_AA, _SHIFT)
    if len(lm) >= N_LANDMARKS and np.isfinite(xy[N_MESH_VERTICES:N_LANDMARKS]).all():
        for centre, ring, colour in ((473, LEFT_IRIS, GREEN), (468, RIGHT_IRIS, RED)):
            r = float(np.mean(np.linalg.norm(xy[list(ring[0][:4])] - xy[centre], axis=1)))
            cv2.circle(img, tuple(int(v) for v in px[centre]), int(round(r * (1 << _SHIFT))),
                       colour, thick, cv2.LINE_AA, _SHIFT)


def _draw_axes(img, head_matrix, fov_deg: float) -> None:
    h, w = img.shape[:2]
    m = np.asarray(head_matrix, np.float64)
    if not np.isfinite(m).all():
        return
    xy, depth = project_axes(m, w, h, fov_deg)
    if (depth < 1.0).any() or not np.isfinite(xy).all() or np.abs(xy).max() > 8 * max(w, h):
        return  # behind or at the camera: nothing sensible to draw
    px = _fixed(xy)
    thick = max(2, int(round(2 * _scale(h))))
    for k in np.argsort(-depth[1:]):              # farthest axis first, nearest on top
        cv2.line(img, tuple(int(v) for v in px[0]), tuple(int(v) for v in px[k + 1]),
                 AXIS_RGB[k], thick, cv2.LINE_AA, _SHIFT)


def _draw_bars(img, blendshapes, top_n: int) -> None:
    h, w = img.shape[:2]
    b = np.nan_to_num(np.asarray(blendshapes, np.float64), nan=0.0)
    order = np.argsort(-b, kind="stable")[:top_n]
    x0, y0, x1, y1 = panel_rect(w, h, top_n)
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)     # darken: text stays readable
    s = _scale(h)
    pad, row = int(round(6 * s)), 24 * s
    fs = 0.4 * s
    for r, idx in enumerate(order):
        top = y0 + int(round(4 * s + r * row))
        value = float(np.clip(b[idx], 0.0, 1.0))
        _text(img, ARKIT_NAMES[idx], (x0 + pad, top + int(round(11 * s))), fs, (235, 235, 235))
        vw = cv2.getTextSize(f"{value:.2f}", _FONT, fs, 1)[0][0]
        _text(img, f"{value:.2f}", (x1 - pad - vw, top + int(round(11 * s))), fs, (235, 235, 235))
        bt, bb = top + int(round(14 * s)), top + int(round(20 * s))
        cv2.rectangle(img, (x0 + pad, bt), (x1 - pad, bb), (70, 70, 70), -1)
        fill = x0 + pad + int(round(value * (x1 - x0 - 2 * pad)))
        if fill > x0 + pad:
            cv2.rectangle(img, (x0 + pad, bt), (fill, bb), (255, int(200 - 120 * value), 40), -1)


def draw_overlay(rgb: np.ndarray, face_landmarks=None, head_matrix=None, blendshapes=None,
                 fov_deg: float = DEFAULT_FOV_DEG, *, tracked: bool = True, top_n: int = TOP_N,
                 other_faces=()) -> np.ndarray:
    """A new (H, W, 3) uint8 picture: ``rgb`` with one face's mesh (normalised (478, 3)
    landmarks), head axes (4x4 canonical->camera, cm) and top-``top_n`` blendshape bars (52,
    ARKit order). Any of them may be None (or NaN). With none given the frame is marked
    "no face" (red border); ``tracked=False`` marks a frame the take does not cover instead.
    ``other_faces``: (landmarks, head_matrix) pairs of further faces (mesh and axes only)."""
    img = np.array(rgb, np.uint8, copy=True)
    h, w = img.shape[:2]
    s = _scale(h)
    if not tracked:
        _text(img, "not tracked", (int(10 * s), int(24 * s)), 0.6 * s, GREY, max(1, int(s)))
        return img
    faces = [(face_landmarks, head_matrix)] + list(other_faces)
    if face_landmarks is None and head_matrix is None and blendshapes is None and not other_faces:
        b = max(3, int(round(h / 100)))
        cv2.rectangle(img, (b // 2, b // 2), (w - 1 - b // 2, h - 1 - b // 2), NO_FACE_RGB, b)
        _text(img, "no face", (int(10 * s) + b, int(24 * s) + b), 0.7 * s, NO_FACE_RGB, max(1, int(2 * s)))
        return img
    for lm, mat in faces:
        if lm is not None:
            _draw_mesh(img, lm)
        if mat is not None:
            _draw_axes(img, mat, fov_deg)
    if blendshapes is not None and np.isfinite(blendshapes).any():
        _draw_bars(img, blendshapes, top_n)
    return img


def _finite(a):
    return a if a is not None and np.isfinite(a).all() else None


def match_frames(video_t: np.ndarray, take_t: np.ndarray, fps: float) -> np.ndarray:
    """For each video timestamp the index of the take frame within half a frame of it, else -1."""
    video_t, take_t = np.asarray(video_t, np.float64), np.asarray(take_t, np.float64)
    out = np.full(len(video_t), -1, np.int64)
    if not len(take_t) or not len(video_t):
        return out
    j = np.clip(np.searchsorted(take_t, video_t), 1, max(1, len(take_t) - 1))
    cand = np.stack([np.clip(j - 1, 0, len(take_t) - 1), np.clip(j, 0, len(take_t) - 1)], axis=1)
    err = np.abs(take_t[cand] - video_t[:, None])
    best = cand[np.arange(len(video_t)), err.argmin(axis=1)]
    ok = err.min(axis=1) <= 0.5 / fps + 1e-6
    out[ok] = best[ok]
    return out


def write_overlay_video(video_path, take, out_path, on_progress=None, face_id=None) -> dict:
    """Every frame of ``video_path`` with ``take`` drawn on it, into an .mp4 (codec mp4v, the
    input's size and fps, one output frame per input frame; no audio: remux it from the input).
    Video frames are matched to take frames by timestamp (nearest within half a frame; a take
    made from a frame range keeps the video's own timestamps). Bars show ``face_id`` (default:
    the take's first face), or the frame's first face when that one is absent.
    ``on_progress(done, total)`` every 10 frames; total may be None."""
    from ..capture.sources import VideoFileSource

    out_path = Path(out_path)
    lms, mats, bss = take.landmarks, take.head_matrix, take.blendshapes   # properties: flush first
    ids, take_t = take.face_ids, np.asarray(take.t, np.float64)
    if face_id is None:
        seen = ids[ids >= 0]
        face_id = int(seen[0]) if seen.size else 0
    fov = float(take.meta.get("fov_deg", DEFAULT_FOV_DEG))
    counts = {"tracked": 0, "no_face": 0, "not_tracked": 0}
    with VideoFileSource(video_path) as src, atomic_target(out_path, keep_suffix=True) as tmp:
        info = src.info
        w, h, fps = info.width, info.height, info.fps
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise OutputError(f"OpenCV could not open a video writer for {out_path} (mp4v, {w}x{h} @ {fps} fps)")
        n = 0
        try:
            for t, rgb in src:
                i = int(match_frames([t], take_t, take.fps or fps)[0])
                if i < 0:
                    pic = draw_overlay(rgb, tracked=False)
                    counts["not_tracked"] += 1
                else:
                    slots = list(np.flatnonzero(ids[i] >= 0))
                    counts["tracked" if slots else "no_face"] += 1
                    main = [j for j in slots if ids[i, j] == face_id][:1] or slots[:1]
                    rest = [(_finite(lms[i, j]), _finite(mats[i, j])) for j in slots if j not in main]
                    if main:
                        j = main[0]
                        pic = draw_overlay(rgb, _finite(lms[i, j]), _finite(mats[i, j]), bss[i, j], fov,
                                           other_faces=rest)
                    else:
                        pic = draw_overlay(rgb, fov_deg=fov)
                writer.write(cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
                n += 1
                if on_progress is not None and n % 10 == 0:
                    on_progress(n, info.frame_count)
        finally:
            writer.release()
        if n == 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise OutputError(f"OpenCV wrote nothing to {out_path}")
    if on_progress is not None:
        on_progress(n, info.frame_count)
    return {"frames": n, "size": (w, h), "fps": fps, "path": str(out_path), "video": str(video_path),
            "fov_deg": fov, **counts}

