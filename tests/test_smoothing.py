"""Smoothing: the One Euro building block, the offline (no-lag) smoother, the live filter and
the settings, on signals with a known truth and on a real MediaPipe take of the sample clip."""

import numpy as np
import pytest

from blender_facemesh.core.errors import SettingsError
from blender_facemesh.core.rotations import euler_to_matrix, rotation_angle_deg, rotation_log
from blender_facemesh.core.solve.filters import OneEuroFilter, OneEuroSettings
from blender_facemesh.core.solve.smoothing import (LiveSmoother, Smoothing, lpa_ici, raw_take, smooth_poses,
                                                   smooth_scores, smooth_take)

FPS = 30.0


def _run(filter_, xs, fps=FPS):
    return np.array([filter_(x, i / fps) for i, x in enumerate(xs)])


def _poses(eulers, rng=None, noise_deg=0.0):
    out = np.tile(np.eye(4), (len(eulers), 1, 1))
    for i, e in enumerate(eulers):
        r = euler_to_matrix(*e)
        if rng is not None and noise_deg:
            w = np.radians(noise_deg) * rng.normal(size=3)
            from blender_facemesh.core.rotations import rodrigues

            r = rodrigues(w) @ r
        out[i, :3, :3] = 0.9 * r  # MediaPipe's matrices carry a scale
        out[i, :3, 3] = [0, 0, -50]
    return out


def _delay(out, raw, most=5):
    a, b = np.diff(out, axis=0), np.diff(raw, axis=0)
    n = len(a)
    lags = np.arange(-most, most + 1)
    cc = [(a[max(0, k):n + min(0, k)] * b[max(0, -k):n - max(0, k)]).sum() for k in lags]
    i = int(np.argmax(cc))
    den = cc[i - 1] - 2 * cc[i] + cc[i + 1]
    return lags[i] + 0.5 * (cc[i - 1] - cc[i + 1]) / den


# --- One Euro -----------------------------------------------------------------------------------


def test_one_euro_removes_jitter_on_a_still_signal(rng):
    xs = 0.5 + rng.normal(0, 0.01, size=(300, 4))
    ys = _run(OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0)), xs)
    assert ys[60:].std(axis=0).max() < 0.4 * xs[60:].std(axis=0).min()


def test_one_euro_keeps_up_with_fast_motion():
    t = np.arange(90) / FPS
    xs = np.where(t > 1.0, 1.0, 0.0)[:, None]
    slow = _run(OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0)), xs)
    fast = _run(OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=5.0)), xs)
    assert fast[34, 0] > 0.9 and slow[34, 0] < 0.6


@pytest.mark.parametrize("bad", [dict(min_cutoff=0.0), dict(beta=-1.0), dict(min_cutoff=float("nan")),
                                 dict(beta=float("inf"))])
def test_one_euro_refuses_settings_that_would_write_nan(bad):
    with pytest.raises(SettingsError):
        OneEuroSettings(**bad).validate()


# --- settings -----------------------------------------------------------------------------------


def test_presets_set_every_region_and_a_region_makes_it_custom():
    assert not Smoothing.off().enabled and Smoothing.from_preset("raw").preset == "RAW"
    smooth = Smoothing.from_preset("smooth")
    assert {smooth.level(r) for r in ("eyes", "brows", "mouth", "head_rotation", "head_position")} == {"SMOOTH"}
    custom = smooth.with_regions(eyes="responsive")
    assert custom.preset == "CUSTOM" and custom.eyes == "RESPONSIVE" and custom.brows == "SMOOTH"
    assert "eyes responsive" in custom.describe()
    assert Smoothing.from_dict(custom.as_dict()) == custom
    with pytest.raises(SettingsError, match="eyes"):
        Smoothing(eyes="medium")
    with pytest.raises(SettingsError, match="preset"):
        Smoothing.from_preset("silky")


# --- offline ------------------------------------------------------------------------------------


def test_a_constant_stays_constant():
    x = np.full((120, 3), 0.37)
    np.testing.assert_allclose(lpa_ici(x, np.full(3, 0.03), 15, 2.0), x, atol=1e-12)
    mats = _poses(np.tile([[10.0, -5.0, 3.0]], (90, 1)))
    out = smooth_poses(mats, np.arange(90) / FPS, np.ones(90, bool), Smoothing())
    np.testing.assert_allclose(out, mats, atol=1e-9)


def test_a_step_stays_a_step(rng):
    """A jaw that snaps open: the smoother must not turn it into a ramp or ring around it."""
    n = 120
    x = np.where(np.arange(n) >= 60, 0.8, 0.05)[:, None] + rng.normal(0, 0.005, (n, 1))
    y = smooth_scores(np.tile(x, (1, 52)), np.arange(n) / FPS, np.ones(n, bool), Smoothing())[:, 17]  # jawOpen
    assert np.abs(y[:57] - 0.05).max() < 0.03 and np.abs(y[63:] - 0.8).max() < 0.03
    rising = np.flatnonzero((y > 0.1) & (y < 0.75))
    assert len(rising) <= 3  # the step is at most 3 frames wide (raw: 1)
    assert y.max() < 0.85 and y.min() > 0.0  # ringing within the noise the preset accepts (0.03 x 2)


def test_offline_smoothing_has_no_lag_on_a_fast_turn(rng):
    """Head turns at up to 90 deg/s with 0.3 degrees of jitter: the smoothed rotation is not
    late, and it is closer to the truth than the jittery input."""
    from blender_facemesh.core.testing.synthetic import fast_turn_sequence

    eulers = fast_turn_sequence()
    truth = _poses(eulers)
    noisy = _poses(eulers, rng, noise_deg=0.3)
    out = smooth_poses(noisy, np.arange(len(eulers)) / FPS, np.ones(len(eulers), bool), Smoothing())
    ref = truth[0, :3, :3] / 0.9
    yaw = lambda m: np.degrees(rotation_log(np.einsum("ji,njk->nik", ref, m[:, :3, :3] / 0.9)))  # noqa: E731
    assert abs(_delay(yaw(out), yaw(noisy))) < 0.1
    err = lambda m: np.mean([rotation_angle_deg(a[:3, :3] / 0.9, b[:3, :3] / 0.9) for a, b in zip(m, truth)])  # noqa: E731
    assert err(out) < 0.7 * err(noisy)
    np.testing.assert_allclose([np.linalg.det(m[:3, :3]) for m in out], 0.9 ** 3, rtol=1e-9)  # still rotations


def test_blink_peaks_survive_offline_smoothing(rng):
    n = 150
    x = np.full(n, 0.05)
    for c in (40, 90):  # two blinks of a quarter second, as MediaPipe scores them
        x[c - 4:c + 4] = [0.15, 0.35, 0.55, 0.7, 0.7, 0.55, 0.35, 0.15]
    x = x + rng.normal(0, 0.005, n)
    y = smooth_scores(np.tile(x[:, None], (1, 52)), np.arange(n) / FPS, np.ones(n, bool), Smoothing())[:, 0]
    for c in (40, 90):  # (the real clips keep 96% of theirs: bench/quality.py; a clean synthetic one, 92%)
        assert y[c - 4:c + 4].max() >= 0.9 * x[c - 4:c + 4].max()
        assert abs(int(np.argmax(y[c - 4:c + 4])) - 3.5) <= 1  # and the peak stays where it was


def test_smooth_take_keeps_the_raw_take_and_its_gaps(sample_take):
    sample_take = sample_take[0]
    raw_scores = sample_take.blendshapes.copy()
    out = smooth_take(sample_take, Smoothing.from_preset("smooth"))
    np.testing.assert_array_equal(sample_take.blendshapes, raw_scores)  # the take is untouched
    assert out.meta["smoothing"]["preset"] == "SMOOTH" and raw_take(sample_take)
    assert not np.allclose(out.blendshapes[:, 0], raw_scores[:, 0], atol=1e-4)
    np.testing.assert_array_equal(np.isnan(out.head_matrix), np.isnan(sample_take.head_matrix))
    off = smooth_take(sample_take, Smoothing.off())
    np.testing.assert_array_equal(off.blendshapes, raw_scores)


def test_real_take_offline_smoothing_is_not_late(sample_take, sample_clip):
    """The sample clip tracked by the real MediaPipe (raw): smoothing adds no delay and no error."""
    sample_take = sample_take[0]
    from blender_facemesh.core.rotations import rotation_part
    from blender_facemesh.core.testing.synthetic import sample_clip_truth

    truth = sample_clip_truth(sample_clip.parent).rotations
    out = smooth_take(sample_take, Smoothing())
    ok = sample_take.face_ids[:, 0] >= 0
    rot = lambda take: np.array([rotation_part(m) for m in take.head_matrix[ok, 0]])  # noqa: E731
    r_raw, r_out = rot(sample_take), rot(out)
    vec = lambda r: np.degrees(rotation_log(np.einsum("ji,njk->nik", r[0], r)))  # noqa: E731
    assert abs(_delay(vec(r_out), vec(r_raw))) < 0.25
    err = lambda r: np.mean([rotation_angle_deg(a, b) for a, b in zip(r, truth[ok])])  # noqa: E731
    assert err(r_out) <= err(r_raw) + 0.05


def test_old_filtered_takes_still_load_and_are_not_smoothed_twice(sample_take, tmp_path):
    from blender_facemesh.core.take import Take

    take = sample_take[0]
    old = Take(take.fps, take.width, take.height, take.source,
               {"fov_deg": 63.0, "filters": {"pose": {"enabled": True, "min_cutoff": 1.0, "beta": 0.3}}})
    old.t, old.frame_index, old.face_ids, old.arrays = take.t, take.frame_index, take.face_ids, take.arrays
    back = Take.load(old.save(tmp_path / "old.npz"))
    assert not raw_take(back) and raw_take(take)
    out = smooth_take(back, Smoothing())
    np.testing.assert_array_equal(out.blendshapes, back.blendshapes)
    assert "older" in out.meta["smoothing"]


# --- live ---------------------------------------------------------------------------------------


def test_live_filter_adds_under_a_degree_at_90_degrees_per_second():
    from blender_facemesh.core.testing.synthetic import fast_turn_sequence

    eulers = fast_turn_sequence()
    truth = _poses(eulers)
    f = LiveSmoother(Smoothing())
    out = [f(m, np.zeros(52), i / FPS)[0] for i, m in enumerate(truth)]
    err = np.array([rotation_angle_deg(a[:3, :3] / 0.9, b[:3, :3] / 0.9) for a, b in zip(out, truth)])
    speed = np.r_[0, [rotation_angle_deg(a[:3, :3], b[:3, :3]) / 0.9 * FPS for a, b in zip(truth, truth[1:])]]
    assert speed.max() > 85 and err[speed > 75].max() < 1.0


def test_live_filter_keeps_blink_peaks():
    x = np.full(60, 0.05)
    x[30:36] = [0.2, 0.5, 0.7, 0.7, 0.45, 0.15]
    f = LiveSmoother(Smoothing())
    y = np.array([f(np.eye(4), np.full(52, v), i / FPS)[1][0] for i, v in enumerate(x)])
    assert y[30:40].max() >= 0.9 * 0.7
    g = LiveSmoother(Smoothing.off())
    assert np.allclose([g(np.eye(4), np.full(52, v), i / FPS)[1][0] for i, v in enumerate(x)], x)
