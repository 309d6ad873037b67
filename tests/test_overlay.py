"""Overlay video: the tracked mesh, head axes and blendshape bars drawn exactly where they belong."""

import cv2
import numpy as np
import pytest

from blender_facemesh.core.visual import overlay
from blender_facemesh.core.channels import ARKIT_NAMES
from blender_facemesh.core.camera import focal_px, project
from blender_facemesh.core.capture.sources import VideoFileSource
from blender_facemesh.core.rotations import euler_to_matrix
from blender_facemesh.core.take import Take
from blender_facemesh.core.tracking.worker import WorkerSettings, track_take

MARGIN = 16  # px: mp4v works in 8x8 / 16x16 blocks, so a drawn line disturbs its neighbourhood


def _frames(path):
    with VideoFileSource(path) as src:
        return [rgb for _, rgb in src]


def _reencode(frames, path, fps):
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    return _frames(path)


def _box(points, w, h, margin=0):
    lo = np.floor(points.min(axis=0)).astype(int) - margin
    hi = np.ceil(points.max(axis=0)).astype(int) + margin
    m = np.zeros((h, w), bool)
    m[max(lo[1], 0):max(hi[1], 0), max(lo[0], 0):max(hi[0], 0)] = True
    return m


def _copy(take, tmp_path, name):
    return Take.load(take.save(tmp_path / name))


@pytest.fixture(scope="module")
def take(sample_clip):
    return track_take(VideoFileSource(sample_clip), WorkerSettings())


@pytest.fixture(scope="module")
def clip(sample_clip, take, tmp_path_factory):
    """The input's frames, the input re-encoded with the overlay's codec, and the overlay."""
    d = tmp_path_factory.mktemp("overlay")
    progress = []
    info = overlay.write_overlay_video(sample_clip, take, d / "out.mp4",
                                       on_progress=lambda n, total: progress.append((n, total)))
    src = _frames(sample_clip)
    return {"info": info, "progress": progress, "src": src, "ref": _reencode(src, d / "ref.mp4", take.fps),
            "out": _frames(d / "out.mp4"), "path": d / "out.mp4", "dir": d}


def test_overlay_video_has_the_inputs_frames_size_and_rate(sample_clip, clip):
    cap_in, cap_out = cv2.VideoCapture(str(sample_clip)), cv2.VideoCapture(str(clip["path"]))
    try:
        for prop in (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS):
            assert cap_out.get(prop) == cap_in.get(prop)
    finally:
        cap_in.release()
        cap_out.release()
    src, out, info = clip["src"], clip["out"], clip["info"]
    assert len(out) == len(src) == info["frames"] == 90
    assert all(o.shape == s.shape for o, s in zip(out, src))
    assert info["size"] == (512, 512) and info["tracked"] == 90 and info["no_face"] == info["not_tracked"] == 0
    assert clip["progress"][-1] == (90, 90)
    assert not list(clip["dir"].glob(".*tmp*"))  # written under a temporary name, then moved


def test_overlay_changes_the_face_and_panel_and_nothing_else(take, clip):
    src, ref, out = clip["src"], clip["ref"], clip["out"]
    h, w = src[0].shape[:2]
    x0, y0, x1, y1 = overlay.panel_rect(w, h)
    panel = np.zeros((h, w), bool)
    panel[y0:y1, x0:x1] = True
    grown_panel = np.zeros((h, w), bool)
    grown_panel[max(0, y0 - MARGIN):y1 + MARGIN, max(0, x0 - MARGIN):x1 + MARGIN] = True
    for i in range(0, len(out), 3):
        lm = take.landmarks[i, 0, :, :2].astype(np.float64) * (w, h)
        axes, _ = overlay.project_axes(take.head_matrix[i, 0], w, h, take.meta["fov_deg"])
        face = _box(lm, w, h)
        drawn = _box(np.vstack([lm, axes]), w, h, MARGIN) | grown_panel
        d_ref = np.abs(out[i].astype(int) - ref[i]).max(axis=2)
        d_src = np.abs(out[i].astype(int) - src[i]).max(axis=2)
        # where the face is, the mesh covers it: many pixels changed a lot
        assert (d_ref[face & ~panel] > 30).mean() > 0.15, i
        assert (d_ref[panel] > 30).mean() > 0.2, i   # the bars
        # elsewhere the picture is the input's, up to codec noise
        assert d_ref[~drawn].mean() < 0.2 and (d_ref[~drawn] > 10).mean() < 1e-3, i
        assert d_src[~drawn].mean() < 3.0 and d_src[~drawn].max() < 24, i


def _border_red(img, b=3):
    edge = np.concatenate([img[:b].reshape(-1, 3), img[-b:].reshape(-1, 3),
                           img[:, :b].reshape(-1, 3), img[:, -b:].reshape(-1, 3)]).astype(int)
    return ((edge[:, 0] > 150) & (edge[:, 1] < 110) & (edge[:, 2] < 110)).mean()


def test_frames_without_a_face_or_outside_the_take_are_marked(sample_clip, take, clip, tmp_path):
    h, w = clip["src"][0].shape[:2]
    lost = _copy(take, tmp_path, "lost.npz")
    lost.face_ids[40] = -1
    info = overlay.write_overlay_video(sample_clip, lost, tmp_path / "lost.mp4")
    assert (info["tracked"], info["no_face"], info["not_tracked"]) == (89, 1, 0)
    out = _frames(tmp_path / "lost.mp4")
    assert len(out) == 90
    assert _border_red(out[40]) > 0.8
    assert _border_red(out[39]) < 0.05 and _border_red(clip["ref"][40]) < 0.05
    face = _box(take.landmarks[40, 0, :, :2].astype(np.float64) * (w, h), w, h)
    d = np.abs(out[40].astype(int) - clip["ref"][40]).max(axis=2)
    assert (d[face] > 30).mean() < 0.01           # no mesh on the face-less frame
    np.testing.assert_array_equal(out[39], clip["out"][39])  # the same drawing elsewhere

    # a take covering only the first 30 frames (as from a frame range): the rest "not tracked"
    part = _copy(take, tmp_path, "part.npz")
    part.t, part.frame_index, part.face_ids = part.t[:30], part.frame_index[:30], part.face_ids[:30]
    part.arrays = {k: v[:30] for k, v in part.arrays.items()}
    info = overlay.write_overlay_video(sample_clip, part, tmp_path / "part.mp4")
    assert (info["frames"], info["tracked"], info["not_tracked"]) == (90, 30, 60)
    out = _frames(tmp_path / "part.mp4")
    assert np.array_equal(out[29], clip["out"][29])
    d = np.abs(out[60].astype(int) - clip["ref"][60]).max(axis=2)
    assert _border_red(out[60]) < 0.05 and (d > 30).any()     # the grey text, no red border
    assert (d[h // 4:, :] > 10).mean() < 1e-3                 # and nothing below the text


def _synthetic_face(w=400, h=300):
    """Normalised landmarks of the canonical mesh at a known pose, irises ringed around the eyes."""
    from blender_facemesh.core.capture.model import load_model

    pose = np.eye(4)
    pose[:3, :3] = euler_to_matrix(15, -5, 5)
    pose[:3, 3] = (2.0, 1.0, -45.0)
    cam = load_model().canonical_vertices @ pose[:3, :3].T + pose[:3, 3]
    xy = project(cam, (w, h)) / (w, h)
    lm = np.zeros((478, 3))
    lm[:468, :2] = xy
    for centre, eye in ((468, overlay.RIGHT_EYE), (473, overlay.LEFT_EYE)):
        c = xy[[i for p in eye for i in p]].mean(axis=0)
        lm[centre, :2] = c
        for k in range(4):
            a = np.pi / 2 * k
            lm[centre + 1 + k, :2] = c + 0.01 * np.array([np.cos(a), np.sin(a)])
    return lm, pose


def test_draw_overlay_is_deterministic_and_leaves_the_input_alone():
    w, h = 400, 300
    blank = np.full((h, w, 3), 40, np.uint8)
    keep = blank.copy()
    lm, pose = _synthetic_face(w, h)
    bs = np.zeros(52, np.float32)
    bs[ARKIT_NAMES.index("jawOpen")], bs[ARKIT_NAMES.index("eyeBlinkLeft")] = 0.9, 0.45
    a = overlay.draw_overlay(blank, lm, pose, bs, 63.0)
    b = overlay.draw_overlay(blank, lm, pose, bs, 63.0)
    np.testing.assert_array_equal(blank, keep)
    assert a is not blank and np.array_equal(a, b) and a.shape == blank.shape and a.dtype == np.uint8
    changed = (a != blank).any(axis=2)
    face = _box(lm[:468, :2] * (w, h), w, h)
    assert changed[face].mean() > 0.2
    x0, y0, x1, y1 = overlay.panel_rect(w, h)
    axes, depth = overlay.project_axes(pose, w, h, 63.0)
    outside = ~(_box(np.vstack([lm[:468, :2] * (w, h), axes]), w, h, 3)
                | _box(np.array([[x0, y0], [x1, y1]]), w, h, 1))
    assert not changed[outside].any()             # nothing drawn away from the face, its axes and the panel
    # the X axis ends at its projection, drawn in red
    px, py = np.floor(axes[1]).astype(int)
    patch = a[py - 2:py + 3, px - 2:px + 3].reshape(-1, 3).astype(int)
    assert ((patch[:, 0] > 150) & (patch[:, 1] < 100)).any()
    # bars: two non-empty rows (orange), their lengths in proportion 0.9 : 0.45
    pan = a[y0:y1, x0:x1].astype(int)
    orange = (pan[..., 0] > 200) & (pan[..., 2] < 100) & (pan[..., 1] > 60)
    rows = np.flatnonzero(orange.any(axis=1))
    groups = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(groups) == 2
    lengths = [np.ptp(np.flatnonzero(orange[g].any(axis=0))) + 1 for g in groups]  # (ndarray.ptp: gone in numpy 2)
    assert lengths[0] / lengths[1] == pytest.approx(2.0, rel=0.1)


def test_pose_and_scores_without_landmarks_still_draw_axes_and_bars():
    """A take loaded from JSON has no landmarks (NaN): axes and bars, no mesh, no "no face"."""
    w, h = 400, 300
    blank = np.zeros((h, w, 3), np.uint8)
    lm, pose = _synthetic_face(w, h)
    a = overlay.draw_overlay(blank, np.full((478, 3), np.nan), pose, np.full(52, 0.3), 63.0)
    full = overlay.draw_overlay(blank, lm, pose, np.full(52, 0.3), 63.0)
    x0, y0, x1, y1 = overlay.panel_rect(w, h)
    axes, _ = overlay.project_axes(pose, w, h, 63.0)
    near_axes = _box(axes, w, h, 3)
    changed = (a != blank).any(axis=2)
    assert changed[near_axes].sum() > 50 and changed[y0:y1, x0:x1].mean() > 0.1
    assert not changed[~near_axes & ~_box(np.array([[x0, y0], [x1, y1]]), w, h, 1)].any()
    assert (full != blank).any(axis=2)[~near_axes].sum() > changed[~near_axes].sum() + 1000
    assert _border_red(a) == 0


def test_no_face_and_not_tracked_markers():
    blank = np.full((240, 320, 3), 90, np.uint8)
    lost = overlay.draw_overlay(blank)
    assert _border_red(lost) > 0.9
    untracked = overlay.draw_overlay(blank, tracked=False)
    assert _border_red(untracked) == 0 and (untracked != blank).any()
    assert not (untracked[60:] != blank[60:]).any()


def test_head_axes_follow_the_pinhole_camera():
    w, h = 640, 480
    pose = np.eye(4)
    pose[:3, 3] = (0.0, 0.0, -50.0)
    xy, depth = overlay.project_axes(pose, w, h, 63.0)
    f = focal_px(h, 63.0)
    np.testing.assert_allclose(xy[0], (w / 2, h / 2))
    np.testing.assert_allclose(xy[1], (w / 2 + f * 8 / 50, h / 2))     # X: to the right
    np.testing.assert_allclose(xy[2], (w / 2, h / 2 - f * 8 / 50))     # Y: up (pixel y down)
    np.testing.assert_allclose(xy[3], (w / 2, h / 2))                  # Z: straight at the camera
    np.testing.assert_allclose(depth, (50, 50, 50, 42))
    pose[:3, :3] = 3.0 * euler_to_matrix(90, 0, 0)                     # scale must not matter
    xy, _ = overlay.project_axes(pose, w, h, 63.0)
    np.testing.assert_allclose(xy[3], (w / 2 + f * 8 / 50, h / 2), atol=1e-9)  # Z now to the right


def test_connection_sets_match_mediapipes():
    conns = pytest.importorskip("mediapipe.tasks.python.vision.face_landmarker").FaceLandmarksConnections

    def edges(conn):
        return {tuple(sorted((c.start, c.end))) for c in conn}

    def ours(paths):
        return {tuple(sorted(e)) for e in overlay.polyline_edges(paths).tolist()}

    for name in ("FACE_OVAL", "LEFT_EYE", "RIGHT_EYE", "LEFT_EYEBROW", "RIGHT_EYEBROW", "LIPS",
                 "LEFT_IRIS", "RIGHT_IRIS"):
        assert ours(getattr(overlay, name)) == edges(getattr(conns, "FACE_LANDMARKS_" + name)), name
    tess = overlay.tessellation_edges()
    assert {tuple(e) for e in tess.tolist()} == edges(conns.FACE_LANDMARKS_TESSELATION)
    assert len(tess) == 1322 and tess.max() < 468


def test_cli_overlay_and_report(sample_clip_with_sound, tmp_path):
    """The commands: an overlay video that keeps the sound, and a report with a plot."""
    import subprocess
    import sys

    out = tmp_path / "overlay.mp4"
    proc = subprocess.run([sys.executable, "-m", "blender_facemesh", "overlay", str(sample_clip_with_sound),
                           "--output", str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sound kept" in proc.stdout and out.is_file()
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 90
    take = tmp_path / "t.npz"
    from blender_facemesh.cli import main

    assert main(["track", str(sample_clip_with_sound), "--output", str(take), "--quiet"]) == 0
    proc = subprocess.run([sys.executable, "-m", "blender_facemesh", "report", str(take), "--plot",
                           str(tmp_path / "r.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "with a face" in proc.stdout and (tmp_path / "r.png").stat().st_size > 10000
    bad = subprocess.run([sys.executable, "-m", "blender_facemesh", "report", str(tmp_path / "nope.npz")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:")
