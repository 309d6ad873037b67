"""Per-performer calibration on real MediaPipe output: relaxed face -> 0, closed eyes -> >= 0.9.

Frame numbers were read off the clips by eye: studio_jaw_blink_smile.mp4 starts relaxed
(frames 0-14, a faint smile fading out), opens the jaw from frame 62, holds the eyes shut in
frames 94-97; webcam_glasses_pout_wink.mp4 is relaxed in frames 20-34 and has the eyes shut in
frames 12, 42, 384, 450, 522 and 558.
"""

import json

import numpy as np
import pytest

from blender_facemesh.core.solve.calibration import (DEFAULT_HIGH, CalibrationError, PerformerProfile,
                                               calibrate_neutral, calibrate_range,
                                               neutral_from_take)
from blender_facemesh.core.channels import ARKIT_INDEX, ARKIT_NAMES
from blender_facemesh.core.rotations import euler_to_matrix
from blender_facemesh.core.rotations import rotation_angle_deg
from blender_facemesh.core.solve.geometry import FaceGeometry
from blender_facemesh.core.take import Take
from blender_facemesh.core.tracking.worker import FaceSample, Sample

from conftest import track_clip

EYES = [ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]]


def clip_take(footage, face_model, name) -> Take:
    """A Take of a clip with raw (unsmoothed) scores and our own head pose per frame."""
    (w, h), dets = track_clip(footage / name, face_model)
    geo = FaceGeometry(face_model.canonical_vertices, face_model.procrustes_weights, w, h)
    take = Take(30.0, w, h, source={"kind": "video", "name": name})
    for i, d in enumerate(dets):
        faces = []
        for f in d.faces:
            pose, _, mesh = geo.solve(f.landmarks)
            faces.append(FaceSample(f.id, f.landmarks, pose, mesh.astype(np.float32), f.blendshapes, f.mp_matrix))
        take.append(Sample(i, d.t, faces, 0.0, 0.0))
    return take


@pytest.fixture(scope="module")
def studio(footage, face_model):
    return clip_take(footage, face_model, "studio_jaw_blink_smile.mp4")


def test_defaults_alone_bring_shut_eyes_to_one_and_relaxed_face_to_zero(studio):
    tr = studio.face_track()
    raw = tr["blendshapes"]
    prof = neutral_from_take(studio, 0.0, 0.5, name="studio")
    assert prof.frames == 15 and prof.high == list(DEFAULT_HIGH)
    assert np.asarray(prof.head_rest).shape == (4, 4) and prof.head_rest[2][3] < -10  # in front of the camera
    cal = prof.apply(raw)
    shut = slice(94, 98)
    assert (raw[shut][:, EYES] < 0.75).all()  # MediaPipe's shut eyes: 0.49-0.71
    assert (cal[shut][:, EYES] >= 0.9).all(), cal[shut][:, EYES]
    assert cal[:15].mean() < 0.05
    assert cal[80, ARKIT_INDEX["jawOpen"]] > 0.95  # jaw held wide open


def test_range_take_sets_the_performers_own_high(studio):
    tr = studio.face_track()
    raw = tr["blendshapes"]
    neutral = neutral_from_take(studio, 0.0, 0.5)
    prof = calibrate_range(raw, tr["present"], neutral)
    assert prof is not neutral and neutral.high == list(DEFAULT_HIGH)  # input untouched
    cal = prof.apply(raw)
    assert (raw[95:97][:, EYES] < 0.75).all()
    assert (cal[95:97][:, EYES] >= 0.9).all() and (cal[94:98][:, EYES] >= 0.85).all(), cal[94:98][:, EYES]
    assert cal[:15].mean() < 0.05
    smile = ARKIT_INDEX["mouthSmileLeft"]
    assert prof.high[smile] < 0.95 and cal[120, smile] >= 0.95  # the big smile now reaches 1
    # channels the take never moved keep their high: no noise stretched into motion
    for n in ("cheekPuff", "noseSneerLeft", "eyeWideLeft", "browInnerUp", "mouthRight", "eyeLookUpLeft"):
        assert prof.high[ARKIT_INDEX[n]] == DEFAULT_HIGH[ARKIT_INDEX[n]], n


def test_defaults_alone_work_on_a_second_performer(footage, face_model):
    take = clip_take(footage, face_model, "webcam_glasses_pout_wink.mp4")
    raw = take.face_track()["blendshapes"]
    cal = neutral_from_take(take, 20 / 30, 0.5).apply(raw)
    shut = [12, 42, 384, 450, 522, 558]
    assert (raw[shut][:, EYES] < 0.9).all()
    assert (cal[shut][:, EYES] >= 0.9).all(), cal[shut][:, EYES]
    assert cal[20:35].mean() < 0.05


def test_refuses_a_moving_face_and_too_few_frames(studio):
    tr = studio.face_track()
    with pytest.raises(CalibrationError, match="moved.*hold still"):  # the jaw opening
        calibrate_neutral(tr["blendshapes"][60:76], tr["head_matrix"][60:76], tr["present"][60:76])
    with pytest.raises(CalibrationError, match="moved"):
        neutral_from_take(studio, 0.0, 1.0)  # the relaxed stretch is only ~0.5 s; then a pout
    with pytest.raises(CalibrationError, match="only 6 frames with a face"):
        neutral_from_take(studio, 0.0, 0.2)
    present = tr["present"][:30].copy()
    present[8:] = False
    with pytest.raises(CalibrationError, match="only 8 frames"):
        calibrate_neutral(tr["blendshapes"][:30], None, present)


# --- without footage --------------------------------------------------------------------------

def test_apply_maps_neutral_to_0_and_high_to_1_and_keeps_nan():
    prof = PerformerProfile(neutral=[0.2] * 52, high=[0.6] * 51 + [0.2])  # last: no range
    s = np.full((3, 52), 0.4, np.float32)
    s[1] = np.nan
    s[2] = 0.9
    out = prof.apply(s)
    assert out.shape == s.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :51], 0.5, atol=1e-6)
    assert np.isnan(out[1]).all() and (out[2, :51] == 1.0).all()
    assert out[0, 51] == pytest.approx(0.4) and out[2, 51] == pytest.approx(0.9)  # passed through
    assert prof.apply(np.full(52, 0.1))[:51].max() == 0.0  # below neutral clips to 0
    with pytest.raises(ValueError):
        prof.apply(np.zeros(51))


def test_neutral_is_robust_to_a_blink_and_head_rest_is_the_mean_pose(rng):
    n = 30
    s = np.clip(0.1 + rng.normal(0, 0.01, (n, 52)), 0, 1)
    s[10:16, EYES] = 0.7  # a blink in the stretch
    yaws = np.linspace(-1.5, 1.5, n)
    hm = np.stack([np.eye(4) for _ in range(n)])
    for i, y in enumerate(yaws):
        hm[i, :3, :3] = euler_to_matrix(10 + y, 5, 0)
        hm[i, :3, 3] = (1, 2, -50 + 0.1 * np.sin(i))
    prof = calibrate_neutral(s, hm, name="x", base=PerformerProfile(high=[0.8] * 52, extra={"k": 1}))
    assert max(prof.neutral[i] for i in EYES) < 0.13
    assert prof.high == [0.8] * 52 and prof.extra == {"k": 1} and prof.frames == n and prof.name == "x"
    assert calibrate_neutral(s, base=PerformerProfile(name="ana")).name == "ana"
    assert calibrate_neutral(s).name == "performer" and calibrate_neutral(s).head_rest is None
    rest = np.asarray(prof.head_rest)
    assert rotation_angle_deg(rest[:3, :3], euler_to_matrix(10, 5, 0)) < 0.1
    np.testing.assert_allclose(rest[:3, 3], (1, 2, -50), atol=0.1)
    turning = hm.copy()
    turning[:, :3, :3] = [euler_to_matrix(y * 10, 0, 0) for y in yaws]  # a 30 degree head turn
    with pytest.raises(CalibrationError, match="head moved"):
        calibrate_neutral(s, turning)


def test_save_load_round_trip_and_bad_files(tmp_path):
    prof = PerformerProfile(name="ana", neutral=np.linspace(0, 0.5, 52), head_rest=np.eye(4).tolist(),
                            frames=30, extra={"note": "glasses"})
    path = prof.save(tmp_path / "sub" / "ana.json")
    assert not (tmp_path / "sub" / "ana.json.part").exists()
    back = PerformerProfile.load(path)
    assert back == PerformerProfile.from_dict(json.loads(path.read_text()))
    np.testing.assert_allclose(back.neutral, prof.neutral, atol=1e-6)
    assert (back.high, back.head_rest, back.name, back.frames, back.extra, back.created) == \
        (prof.high, prof.head_rest, "ana", 30, {"note": "glasses"}, prof.created)
    # an older file listing channels in another order is read by name
    d = prof.to_dict()
    d["channels"], d["neutral"] = d["channels"][::-1], d["neutral"][::-1]
    assert PerformerProfile.from_dict(d).neutral == back.neutral
    cases = {"missing.json": None, "junk.json": "{not json", "other.json": json.dumps({"format": "x"}),
             "short.json": json.dumps(dict(prof.to_dict(), neutral=[0.1] * 5)),
             "nan.json": json.dumps(dict(prof.to_dict(), high=[float("nan")] * 52)),
             "future.json": json.dumps(dict(prof.to_dict(), version=99))}
    for fname, text in cases.items():
        if text is not None:
            (tmp_path / fname).write_text(text)
        with pytest.raises(CalibrationError) as err:
            PerformerProfile.load(tmp_path / fname)
        assert fname in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert len(ARKIT_NAMES) == len(DEFAULT_HIGH) == 52
