"""Fitting the performer's shape keys from a take: real MediaPipe on real pixels, plus a
synthetic take with a known answer and the refusals."""

import time
from types import SimpleNamespace

import numpy as np
import pytest

from blender_facemesh.core.channels import ARKIT_INDEX
from blender_facemesh.core.solve.smoothing import Smoothing
from blender_facemesh.core.solve.shapefit import (ShapeFitError, fit_from_take, fit_shape_keys, replay,
                                            replay_error_mm)
from blender_facemesh.core.capture.sources import VideoFileSource
from blender_facemesh.core.take import Take
from blender_facemesh.core.tracking.worker import CaptureWorker, WorkerSettings

JAW, PUFF, SMILE_L = ARKIT_INDEX["jawOpen"], ARKIT_INDEX["cheekPuff"], ARKIT_INDEX["mouthSmileLeft"]
CHIN = 152


def _record(path, w, h) -> Take:
    take = Take(30.0, w, h, source={"kind": "video", "name": str(path)})
    for s in CaptureWorker(VideoFileSource(path), WorkerSettings(smoothing=Smoothing.off())).start():
        take.append(s)
    return take


@pytest.fixture(scope="module")
def sample_take(sample_clip):
    return _record(sample_clip, 512, 512)


@pytest.fixture(scope="module")
def studio_track(footage):
    take = _record(footage / "studio_jaw_blink_smile.mp4", 480, 480)
    tr = take.face_track()
    assert tr["present"].mean() > 0.95
    return take, tr


def _max_disp_cm(delta) -> float:
    return float(np.linalg.norm(delta, axis=-1).max())


# --- real footage ------------------------------------------------------------------------------

def test_studio_fit_replays_the_performer(studio_track):
    take, tr = studio_track
    t0 = time.perf_counter()
    fit = fit_from_take(take)
    dt = time.perf_counter() - t0
    print(f"\nstudio: {fit.frames_used} frames, lam {fit.lam:.3f}, rms {fit.rms_mm:.2f} mm vs "
          f"base-only {fit.rms_base_mm:.2f} mm, {fit.exercised.sum()} channels exercised, {dt*1e3:.0f} ms")
    assert fit.frames_used == len(take)
    assert fit.rms_mm < 0.15 * fit.rms_base_mm
    assert fit.rms_mm < 1.0
    # replay_error_mm measures the same thing on the same frames
    assert replay_error_mm(fit, tr["mesh"], tr["blendshapes"], tr["present"]) == pytest.approx(fit.rms_mm, rel=1e-3)
    assert fit.base.dtype == np.float32 and fit.deltas.shape == (52, 468, 3)


def test_studio_held_out_frames(studio_track):
    _take, tr = studio_track
    mesh, s = tr["mesh"], tr["blendshapes"]
    n = len(s)
    ev, od = np.arange(0, n, 2), np.arange(1, n, 2)
    fit = fit_shape_keys(mesh[ev], s[ev])
    held = replay_error_mm(fit, mesh[od], s[od])
    base_only = np.sqrt((np.sum((mesh[od] - mesh[ev].mean(0)) ** 2, -1)).mean()) * 10
    # harder: fit on the first half, replay the second half (different expressions, other order)
    h1, h2 = np.arange(n // 2), np.arange(n // 2, n)
    fit_h = fit_shape_keys(mesh[h1], s[h1])
    held_h = replay_error_mm(fit_h, mesh[h2], s[h2])
    base_h = np.sqrt((np.sum((mesh[h2] - mesh[h1].mean(0)) ** 2, -1)).mean()) * 10
    print(f"\nstudio held out: odd frames {held:.2f} mm vs base-only {base_only:.2f} mm; "
          f"second half {held_h:.2f} mm vs base-only {base_h:.2f} mm")
    assert held < 0.2 * base_only
    assert held < 1.5 * fit.rms_mm + 0.1
    assert held_h < 0.75 * base_h


def test_unexercised_channels_stay_zero_and_jaw_moves_the_chin(studio_track):
    _take, tr = studio_track
    mesh, s = tr["mesh"], tr["blendshapes"].copy()
    s[:, SMILE_L] = 0.0                      # a channel forced constant: nothing to learn
    fit = fit_shape_keys(mesh, s, tr["present"])
    assert not fit.exercised[SMILE_L] and not fit.exercised[PUFF]   # MediaPipe never moves cheekPuff
    assert _max_disp_cm(fit.deltas[SMILE_L]) == 0.0
    assert _max_disp_cm(fit.deltas[PUFF]) < 0.05
    assert fit.exercised[JAW]
    dx, dy, dz = fit.deltas[JAW, CHIN]
    print(f"\njawOpen at 1 moves the chin by ({dx:.2f}, {dy:.2f}, {dz:.2f}) cm")
    assert -3.0 < dy < -0.5 and abs(dx) < 0.5          # down, not sideways
    # the ridge alone (no range cut-off) also keeps the barely-moving cheekPuff near zero
    ridge_only = fit_shape_keys(mesh, tr["blendshapes"], tr["present"], min_range=0)
    assert ridge_only.exercised[PUFF] and not ridge_only.exercised[ARKIT_INDEX["tongueOut"]]  # never emitted
    assert _max_disp_cm(ridge_only.deltas[PUFF]) < 0.05
    assert -3.0 < ridge_only.deltas[JAW, CHIN, 1] < -0.5


# --- the built-in sample clip (always available) -----------------------------------------------

def test_sample_clip_fit_profile_and_json_refusal(sample_take, tmp_path):
    fit = fit_from_take(sample_take)
    print(f"\nsample clip: rms {fit.rms_mm:.2f} mm vs base-only {fit.rms_base_mm:.2f} mm")
    assert fit.frames_used == len(sample_take) and fit.rms_mm < fit.rms_base_mm
    assert not fit.exercised[PUFF] and not fit.deltas[PUFF].any()
    tr = sample_take.face_track()
    np.testing.assert_allclose(replay(fit, tr["blendshapes"][:1])[0],
                               fit.base + np.tensordot(tr["blendshapes"][0], fit.deltas, 1), atol=1e-4)
    # a calibration that only offsets the scores changes the base, never the keys
    offset = np.linspace(0.0, 0.2, 52).astype(np.float32)
    shifted = fit_from_take(sample_take, profile=SimpleNamespace(apply=lambda s: s + offset))
    np.testing.assert_allclose(shifted.deltas, fit.deltas, atol=1e-4)
    np.testing.assert_allclose(shifted.base, fit.base - np.tensordot(offset, fit.deltas, 1), atol=1e-3)
    assert shifted.rms_mm == pytest.approx(fit.rms_mm, rel=1e-3)
    # the same take through JSON has scores but no mesh
    js = Take.load(sample_take.save(tmp_path / "sample.json"))
    with pytest.raises(ShapeFitError, match="no face mesh.*npz"):
        fit_from_take(js)


# --- known answer, refusals --------------------------------------------------------------------

def test_synthetic_take_recovers_known_deltas_fast(face_model, rng):
    n = 600
    base = face_model.canonical_vertices.astype(np.float64)
    true = rng.normal(0, 0.3, (52, 468, 3))
    s = rng.uniform(0, 1, (n, 52)) ** 2             # skewed toward 0, like real scores
    s[:, :6] = 0.0                                   # never exercised
    s[:, 6] = 0.3                                    # constant offset: belongs in the base
    true[:7] = 0.0
    mesh = base + np.tensordot(s, true, 1) + rng.normal(0, 0.01, (n, 468, 3))  # 0.1 mm noise
    t0 = time.perf_counter()
    fit = fit_shape_keys(mesh.astype(np.float32), s.astype(np.float32))
    dt = time.perf_counter() - t0
    print(f"\nsynthetic fit of {n} frames: {dt*1e3:.1f} ms, rms {fit.rms_mm:.3f} mm")
    assert dt < 1.0
    assert not fit.exercised[:7].any() and fit.exercised[7:].all()
    assert not fit.deltas[:7].any()
    rel = np.linalg.norm(fit.deltas[7:] - true[7:]) / np.linalg.norm(true[7:])
    assert rel < 0.03, rel
    assert np.abs(fit.base - base).max() < 0.05
    assert fit.rms_mm == pytest.approx(0.1 * np.sqrt(3), rel=0.1)   # just the noise is left
    assert replay_error_mm(fit, mesh, s) < 0.2


def test_refusals(face_model, rng):
    mesh = np.repeat(face_model.canonical_vertices[None], 30, 0).astype(np.float32)
    s = rng.uniform(0, 1, (30, 52)).astype(np.float32)
    with pytest.raises(ShapeFitError, match="only 5 frame.*at least 10"):
        fit_shape_keys(mesh[:5], s[:5])
    present = np.zeros(30, bool)
    present[:3] = True
    with pytest.raises(ShapeFitError, match="only 3 frame"):
        fit_shape_keys(mesh, s, present)
    with pytest.raises(ShapeFitError, match="no face mesh"):
        fit_shape_keys(np.full_like(mesh, np.nan), s)
    with pytest.raises(ShapeFitError, match="30 meshes but 29"):
        fit_shape_keys(mesh, s[:29])
    assert isinstance(ShapeFitError("x"), ValueError)
    fit = fit_shape_keys(mesh, s)                     # a still face: keys stay ~zero
    assert np.abs(fit.deltas).max() < 1e-4 and fit.rms_mm < 1e-3
