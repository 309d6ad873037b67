"""End to end on generated clips with known head rotation: our pose against the truth,
several faces keeping their ids, and the command line."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from blender_facemesh.core.capture.landmarker import FaceIdTracker, LandmarkerSettings
from blender_facemesh.core.capture.sources import VideoFileSource
from blender_facemesh.core.rotations import euler_to_matrix
from blender_facemesh.core.rotations import rotation_angle_deg, rotation_part
from blender_facemesh.core.solve.smoothing import Smoothing
from blender_facemesh.core.take import Take
from blender_facemesh.core.testing.synthetic import render_face, sample_clip_truth
from blender_facemesh.core.tracking.worker import CaptureWorker, WorkerSettings


def test_recovered_head_rotation_matches_the_known_rotation(sample_clip):
    truth = sample_clip_truth(sample_clip.parent)
    worker = CaptureWorker(VideoFileSource(sample_clip), WorkerSettings(smoothing=Smoothing.off())).start()
    errors = []
    for s in worker:
        assert s.faces, f"face lost at frame {s.index}"
        errors.append(rotation_angle_deg(rotation_part(s.faces[0].head_matrix), truth.rotations[s.index]))
    errors = np.array(errors)
    assert len(errors) == len(truth.rotations)
    # the clip turns the head up to 25 deg yaw, 15 pitch, 10 roll
    assert errors.mean() < 2.0 and errors.max() < 4.0, (errors.mean(), errors.max())


def test_face_ids_stay_with_their_faces(tmp_path):
    """Two faces side by side, moving: each id stays on its own side for the whole clip."""
    path = tmp_path / "two.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1024, 512))
    for i in range(20):
        a = render_face(euler_to_matrix(-15 + i, 0, 0), size=(512, 512))
        b = render_face(euler_to_matrix(10, 8 - i * 0.5, 5), size=(512, 512))
        vw.write(cv2.cvtColor(np.hstack([a, b]), cv2.COLOR_RGB2BGR))
    vw.release()
    settings = WorkerSettings(landmarker=LandmarkerSettings(num_faces=2))
    side_of = {}
    n_two = 0
    for s in CaptureWorker(VideoFileSource(path), settings).start():
        n_two += len(s.faces) == 2
        for f in s.faces:
            side = bool(f.landmarks[:468, 0].mean() > 0.5)
            assert side_of.setdefault(f.id, side) == side, "a face id jumped to the other face"
    assert n_two >= 15 and len(side_of) == 2  # MediaPipe misses the second face on a few frames


def test_face_id_tracker_survives_reordering():
    tr = FaceIdTracker()
    a, b = np.array([0.2, 0.5]), np.array([0.8, 0.5])
    assert tr.assign([a, b]) == [0, 1]
    assert tr.assign([b + 0.01, a - 0.01]) == [1, 0]  # MediaPipe listed them the other way round
    assert tr.assign([a]) == [0]
    assert tr.assign([a, b]) == [0, 1]  # missed for one frame, b keeps its id
    assert tr.assign([a, np.array([0.5, 0.1])]) == [0, 2]  # a newcomer gets a new id
    for _ in range(60):  # b away for 2 s (at 30 fps, no times given) and back where it was
        tr.assign([a])
    assert tr.assign([a, b]) == [0, 1]
    for _ in range(100):  # away for over 3 s: a new performer, a new id
        tr.assign([a])
    assert tr.assign([a, b]) == [0, 3]
    timed = FaceIdTracker()
    assert timed.assign([a, b], 0.0) == [0, 1] and timed.assign([a], 2.9) == [0]
    assert timed.assign([a, b], 2.95) == [0, 1] and timed.assign([a], 5.0) == [0] and timed.assign([a], 6.5) == [0]
    assert timed.assign([a, b], 7.0) == [0, 2]


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "blender_facemesh", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_cli_tracks_a_video_into_a_take(sample_clip, tmp_path):
    out = tmp_path / "take.json"
    r = run_cli("track", str(sample_clip), "--output", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    n = VideoFileSource(sample_clip).info.frame_count
    assert d["fps"] == 30 and d["width"] == 512 and d["height"] == 512 and len(d["frames"]) == n
    assert d["source"]["kind"] == "video"
    assert sum(1 for f in d["frames"] if f["faces"]) >= 0.95 * n
    npz = tmp_path / "take.npz"
    assert run_cli("track", str(sample_clip), "-o", str(npz), "--quiet").returncode == 0
    take = Take.load(npz)
    assert len(take) == n and take.landmarks.shape[1:] == (1, 478, 3)
    assert take.meta["values"] == "raw"  # smoothing is applied when it is baked or exported


@pytest.mark.parametrize("args, message", [
    (["track", "does_not_exist.mp4", "-o", "x.json"], "not found"),
    (["track", "camera:9", "-o", "x.json"], "camera"),
    (["track", "camera:99999999999999999999", "-o", "x.json"], "camera number"),
    (["track", "SAMPLE_CLIP", "-o", "x.txt"], ".json or .npz"),
    (["track", "SAMPLE_CLIP", "-o", "x.json", "--model", "/nonexistent/face_landmarker.task"], "does not exist"),
    (["track", "SAMPLE_CLIP", "-o", "x.json", "--fov", "0"], "fov"),
])
def test_cli_bad_input_is_one_line_and_nonzero(args, message, sample_clip, tmp_path):
    args = [str(sample_clip) if a == "SAMPLE_CLIP" else a for a in args]
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    r = run_cli(*args)
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.json").exists()


def test_cli_corrupt_video(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(20000))
    r = run_cli("track", str(bad), "-o", str(tmp_path / "t.json"))
    assert r.returncode == 2 and "broken.mp4" in r.stderr and "Traceback" not in r.stderr


def test_cli_convert_take_to_live_link_csv_and_back(sample_clip, tmp_path):
    from blender_facemesh.cli import main
    from blender_facemesh.core.take import Take

    take_path = tmp_path / "t.npz"
    assert main(["track", str(sample_clip), "--output", str(take_path), "--quiet"]) == 0
    assert main(["convert", str(take_path), "--output", str(tmp_path / "t.csv"), "--smoothing", "raw"]) == 0
    assert main(["convert", str(tmp_path / "t.csv"), "--output", str(tmp_path / "back.json")]) == 0
    a, b = Take.load(take_path), Take.load(tmp_path / "back.json")
    np.testing.assert_allclose(b.blendshapes[:, 0], a.blendshapes[:, 0], atol=1e-5)
    np.testing.assert_allclose(b.t - b.t[0], a.t - a.t[0], atol=1e-3)
    # by default the export carries the smoothed curves (other tools get the finished animation)
    from blender_facemesh.core.formats.livelink import read_csv
    from blender_facemesh.core.solve.smoothing import Smoothing, smooth_take

    assert main(["convert", str(take_path), "--output", str(tmp_path / "s.csv"), "--smooth-mouth", "smooth"]) == 0
    s = read_csv(tmp_path / "s.csv").blendshapes[:, 0]
    want = smooth_take(a, Smoothing().with_regions(mouth="smooth")).blendshapes[:, 0]
    np.testing.assert_allclose(s, want, atol=1e-5)
    assert np.abs(s - a.blendshapes[:, 0]).max() > 1e-3
    (tmp_path / "empty.csv").write_text("")
    assert main(["convert", str(tmp_path / "empty.csv"), "--output", str(tmp_path / "x.npz")]) == 2


@pytest.mark.parametrize("where", ["folder", "under a file", "proc"])
def test_an_output_that_cannot_be_written_is_refused_before_tracking(sample_clip, tmp_path, capsys, where):
    from blender_facemesh.cli import main

    (tmp_path / "a_file").write_text("x")
    out = {"folder": tmp_path, "under a file": tmp_path / "a_file" / "t.npz", "proc": "/proc/facemesh/t.npz"}[where]
    for cmd in (["track", str(sample_clip), "-o", str(out) if where != "folder" else str(tmp_path / "d.npz")],
                ["convert", str(sample_clip), "-o", str(out)]):
        if where == "folder":
            (tmp_path / "d.npz").mkdir(exist_ok=True)
        assert main(cmd + ["--quiet"] if cmd[0] == "track" else cmd) in (1, 2), (where, cmd)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_a_take_that_cannot_be_saved_after_tracking_is_kept(sample_clip, face_model, tmp_path, capsys, monkeypatch):
    """A disk that fills up while tracking: the frames go to the user cache and the message says where."""
    from blender_facemesh.cli import main
    from blender_facemesh.core.take import Take

    monkeypatch.setenv("BLENDER_FACEMESH_CACHE", str(tmp_path / "cache"))
    real_save = Take.save
    target = tmp_path / "full" / "take.npz"

    def full_disk(self, path):
        if Path(path) == target:
            raise OSError(28, "No space left on device")
        return real_save(self, path)

    monkeypatch.setattr(Take, "save", full_disk)
    assert main(["track", str(sample_clip), "-o", str(target), "--model", str(face_model.path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left" in err and "kept in" in err
    kept = Path(err.split("kept in ")[1])
    assert len(Take.load(kept)) == 90


def test_ctrl_c_twice_during_track_keeps_the_frames(tmp_path):
    """Ctrl+C, then Ctrl+C again while the take is being saved: the save finishes, no traceback."""
    import signal
    import time

    from blender_facemesh.core.testing.synthetic import write_clip

    clip = write_clip(tmp_path / "long.mp4", np.zeros((300, 3)), size=(256, 256)).path  # 10 s played live
    out = tmp_path / "t.npz"
    proc = subprocess.Popen([sys.executable, "-m", "blender_facemesh", "track", str(clip), "-o", str(out),
                             "--simulate-live"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # model loaded, about a second of frames tracked
    proc.send_signal(signal.SIGINT)
    for _ in range(5):
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "interrupted: saving" in err
    from blender_facemesh.core.take import Take

    assert len(Take.load(out)) > 5
