"""Take -> keyframe arrays, without Blender: resampling and frames without a face."""

import numpy as np
import pytest

from blender_facemesh.core.bake import resample


def _gap_take():
    t = np.arange(10) / 30.0
    v = np.arange(10, dtype=float)[:, None]
    present = np.ones(10, bool)
    present[4:7] = False
    return t, v, present


def test_hold_blend_and_empty_in_a_gap():
    t, v, present = _gap_take()
    _, hold, _ = resample(t, v, present, 30.0, 1, "HOLD")
    _, blend, _ = resample(t, v, present, 30.0, 1, "BLEND")
    frames, empty, near = resample(t, v, present, 30.0, 1, "EMPTY")
    assert hold[4:7, 0].tolist() == [3, 3, 3]
    np.testing.assert_allclose(blend[4:7, 0], [4, 5, 6])
    assert np.isnan(empty[4:7, 0]).all() and not np.isnan(empty[[3, 7], 0]).any()
    assert frames.tolist() == list(range(1, 11)) and near.tolist() == present.tolist()


@pytest.mark.parametrize("source_fps, scene_fps", [(25.0, 30.0), (60.0, 30.0), (30.0, 24.0)])
def test_frames_land_by_timestamp_at_the_scene_rate(source_fps, scene_fps):
    t = np.arange(int(2 * source_fps)) / source_fps  # 2 s of a ramp: value = seconds
    frames, vals, _ = resample(t, t[:, None], np.ones(len(t), bool), scene_fps, 1)
    np.testing.assert_allclose(vals[:, 0], (frames - 1) / scene_fps, atol=1e-9)
    assert frames[-1] == 1 + np.floor(t[-1] * scene_fps + 1e-6)


def test_no_face_at_all_is_an_error():
    with pytest.raises(ValueError, match="no frame with a face"):
        resample(np.arange(3.0), np.zeros((3, 1)), np.zeros(3, bool), 30.0)
