"""Tracking report: its numbers against the take and the sample clip's ground truth; the plot."""

import json

import numpy as np
import pytest

from blender_facemesh.core.visual import report
from blender_facemesh.core.channels import ARKIT_NAMES
from blender_facemesh.core.capture.sources import VideoFileSource
from blender_facemesh.core.rotations import euler_to_matrix, matrix_to_euler
from blender_facemesh.core.rotations import rotation_part
from blender_facemesh.core.take import Take
from blender_facemesh.core.testing.synthetic import sample_clip_truth, write_clip
from blender_facemesh.core.tracking.worker import WorkerSettings, track_take


@pytest.fixture(scope="module")
def take(sample_clip):
    return track_take(VideoFileSource(sample_clip), WorkerSettings())


@pytest.fixture(scope="module")
def gappy(take, tmp_path_factory):
    """The sample take with the face removed from frames 10-19 and 50, and 3 frames dropped."""
    t = Take.load(take.save(tmp_path_factory.mktemp("report") / "gappy.npz"))
    t.face_ids[10:20] = -1
    t.face_ids[50] = -1
    t.meta["frames_dropped"] = 3
    return t


def test_coverage_and_blendshape_ranges_match_the_take(gappy):
    d = report.take_report(gappy)
    present = (gappy.face_ids >= 0).any(axis=1)
    assert d["frames"] == len(gappy.t) == 90
    assert (d["frames_with_face"], d["frames_without_face"]) == (int(present.sum()), int((~present).sum())) == (79, 11)
    assert d["frames_dropped"] == 3 and d["frames_missing_by_time"] == 0
    assert d["fps"] == 30.0 and d["duration_s"] == pytest.approx(89 / 30, abs=1e-3)
    bs = gappy.blendshapes[present, 0].astype(np.float64)
    for k, name in enumerate(ARKIT_NAMES):
        s = d["blendshapes"][name]
        assert s["min"] == pytest.approx(bs[:, k].min(), abs=1e-7), name
        assert s["max"] == pytest.approx(bs[:, k].max(), abs=1e-7), name
        assert s["mean"] == pytest.approx(bs[:, k].mean(), abs=1e-6), name
    rots = [rotation_part(m) for m in gappy.head_matrix[present, 0]]
    yaw = np.array([matrix_to_euler(r)[0] for r in rots])
    assert (d["head_pose"]["yaw"]["min"], d["head_pose"]["yaw"]["max"]) == pytest.approx((yaw.min(), yaw.max()))
    assert report.take_report(gappy, face_id=0) == d   # the default face is the first one seen
    json.dumps(d)  # plain data: ready for --json


def test_head_pose_range_matches_the_sample_clips_truth(sample_clip, take):
    truth = sample_clip_truth(sample_clip.parent).eulers  # (90, 3) yaw, pitch, roll
    d = report.take_report(take)
    assert d["frames_with_face"] == 90 and d["frames_dropped"] is None
    for k, name in enumerate(("yaw", "pitch", "roll")):
        s = d["head_pose"][name]
        assert s["min"] == pytest.approx(truth[:, k].min(), abs=4.0), name
        assert s["max"] == pytest.approx(truth[:, k].max(), abs=4.0), name
        assert s["mean"] == pytest.approx(truth[:, k].mean(), abs=2.0), name
    assert d["head_pose"]["distance_cm"]["min"] == pytest.approx(50.0, abs=3.0)
    # the head never stops in this clip (truth: always faster than 45 deg/s)
    assert d["jitter"]["still_frames"] == 0 and d["jitter"]["rotation_deg_rms"] is None


def _still_take(n_move=30, n_still=30, wobble_deg=0.05, wobble_bs=0.01, wobble_px=0.5, fps=30.0,
                drift_deg_s=0.0):
    """A synthetic take: a head turning at 40 deg/s, then still with a known frame-to-frame wobble."""
    n = n_move + n_still
    take = Take(fps, 640, 480, source={"name": "synthetic"}, meta={"fov_deg": 63.0})
    take.t = np.arange(n) / fps
    take.frame_index = np.arange(n)
    take.face_ids = np.zeros((n, 1), np.int32)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    i = np.arange(n)
    yaw = np.where(i < n_move, 40.0 * i / fps,
                   40.0 * n_move / fps + drift_deg_s * (i - n_move) / fps + sign * wobble_deg)
    hm = np.tile(np.eye(4), (n, 1, 1))
    hm[:, :3, :3] = [euler_to_matrix(y, 0, 0) for y in yaw]
    hm[:, :3, 3] = (0, 0, -50)
    lm = np.full((n, 478, 3), 0.5, np.float32)
    lm[n_move:, :, 0] += (sign[n_move:, None] * wobble_px / 640).astype(np.float32)
    bs = np.full((n, 52), 0.5, np.float32)
    bs[n_move:] += (sign[n_move:, None] * wobble_bs).astype(np.float32)
    take.arrays = {"landmarks": lm[:, None], "head_matrix": hm[:, None],
                   "mesh": np.zeros((n, 1, 468, 3), np.float32),
                   "blendshapes": bs[:, None], "mp_matrix": hm[:, None].astype(np.float32)}
    return take


def test_a_take_without_a_face_reports_instead_of_failing():
    from blender_facemesh.core.take import _ARRAYS

    take = Take(30, 64, 64)
    n = 12
    take.t, take.frame_index = np.arange(n) / 30, np.arange(n)
    take.face_ids = np.full((n, 1), -1, np.int32)
    take.arrays = {k: np.full((n, 1) + shp, empty, dt) for k, (shp, dt, empty) in _ARRAYS.items()}
    d = report.take_report(take)
    assert d["face_frames"] == 0 and d["jitter"]["still_frames"] == 0
    json.dumps(d, allow_nan=False)


def test_jitter_is_measured_on_still_stretches_only():
    d = report.take_report(_still_take())
    j = d["jitter"]
    assert 25 <= j["still_frames"] <= 30 and len(j["stretches"]) == 1
    assert j["stretches"][0][0] >= 30 / 30.0 and j["stretches"][0][1] == pytest.approx(59 / 30.0)
    assert j["rotation_deg_rms"] == pytest.approx(0.1, rel=1e-3)     # +-0.05 deg: 0.1 deg per frame
    assert j["blendshapes_rms"] == pytest.approx(0.02, rel=1e-3)
    assert j["landmarks_px_rms"] == pytest.approx(1.0, rel=1e-3)
    assert j["translation_cm_rms"] == pytest.approx(0.0, abs=1e-9)
    # a still part shorter than 0.5 s is not a still stretch
    short = report.take_report(_still_take(n_move=30, n_still=12))["jitter"]
    assert short["still_frames"] == 0 and short["rotation_deg_rms"] is None
    # a slow turn (10 deg/s) is motion, not a still stretch
    assert report.take_report(_still_take(drift_deg_s=10.0))["jitter"]["still_frames"] == 0
    # while a large back-and-forth wobble with no net motion is jitter, and measured as such
    big = report.take_report(_still_take(wobble_deg=1.5))["jitter"]
    assert big["still_frames"] >= 25 and big["rotation_deg_rms"] == pytest.approx(3.0, rel=1e-3)


def test_jitter_on_a_still_clip_is_small(tmp_path):
    write_clip(tmp_path / "still.mp4", np.zeros((45, 3)))
    take = track_take(VideoFileSource(tmp_path / "still.mp4"), WorkerSettings())
    d = report.take_report(take)
    j = d["jitter"]
    assert d["frames_with_face"] == 45
    assert j["still_frames"] >= 40
    assert j["rotation_deg_rms"] < 0.2
    assert j["blendshapes_rms"] < 0.01
    assert j["landmarks_px_rms"] < 0.5
    for name in ("yaw", "pitch", "roll"):
        s = d["head_pose"][name]
        assert abs(s["min"]) < 3 and abs(s["max"]) < 3 and s["max"] - s["min"] < 1.0


def test_format_report_is_aligned_text(gappy):
    d = report.take_report(gappy)
    text = report.format_report(d)
    lines = text.splitlines()
    assert any(line.split()[:3] == ["with", "a", "face"] and line.split()[3] == "79" for line in lines)
    assert any(line.split()[:2] == ["dropped", "3"] for line in lines)
    rows = {line.split()[0]: line for line in lines if line.startswith("  ") and line.split()[0] in ARKIT_NAMES}
    assert set(rows) == set(ARKIT_NAMES)
    for name, row in rows.items():  # fixed columns: name, then min/max/mean 7 characters each
        assert row[:26].split() == [name] and len(row[26:47].split()) == 3 and row[47:48] in ("", " ")
    jaw = rows["jawOpen"].split()
    s = d["blendshapes"]["jawOpen"]
    assert [float(v) for v in jaw[1:4]] == [round(s[k], 2) for k in ("min", "max", "mean")]
    yaw = next(line for line in lines if line.split()[:1] == ["yaw"] and len(line.split()) == 4).split()
    assert float(yaw[1]) == round(d["head_pose"]["yaw"]["min"], 1)


def test_plot_is_a_small_non_blank_png(gappy, take, tmp_path):
    import matplotlib.image as mpimg

    out = report.plot_report(gappy, tmp_path / "plots" / "report.png")
    assert out.is_file() and out.stat().st_size < 200_000
    img = mpimg.imread(out)
    assert img.shape[:2] == (600, 1000)
    rgb = img[..., :3]
    assert rgb.std() > 0.05
    assert len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50

    def grey(im):  # the "no face" shading: light grey, flat
        px = (im[..., :3] * 255).round()
        return ((np.ptp(px, axis=2) < 2) & (px[..., 0] > 205) & (px[..., 0] < 232)).sum()

    clean = mpimg.imread(report.plot_report(take, tmp_path / "clean.png"))
    assert grey(img) > grey(clean) + 5000          # 11 of 90 frames shaded, in both panels
    with pytest.raises(ValueError, match="tongue"):
        report.plot_report(take, tmp_path / "bad.png", channels=["jawOpen", "tongue"])
