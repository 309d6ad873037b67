"""Take -> keyframe arrays, without Blender: resampling and frames without a face."""

import numpy as np
import pytest

from blender_facemesh.core.animation.bake import resample


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


def _quat(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    h = np.radians(deg) / 2
    return np.array([np.cos(h), *(np.sin(h) * axis)])


def _qmul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_neck_and_head_share_the_rotation_and_compose_back(share):
    from blender_facemesh.core.animation.bake import split_rotation

    qs = np.array([_quat((0.2, 1, 0.3), 40), _quat((1, 0, 0), -25), -_quat((0, 0, 1), 170), [1, 0, 0, 0]])
    neck, head = split_rotation(qs, share)
    for q, n, h in zip(qs, neck, head):
        total = _qmul(n, h)
        assert abs(abs(np.dot(total, q)) - 1) < 1e-9  # neck then head gives the tracked rotation
        angle = 2 * np.degrees(np.arccos(min(1, abs(q[0]))))
        assert 2 * np.degrees(np.arccos(min(1, n[0]))) == pytest.approx(share * angle, abs=1e-6)


def test_pose_is_relative_to_the_rest_in_blender_axes():
    """A head turning to the performer's left (camera +Y axis, yaw) turns about Blender's +Z;
    moving toward the camera (+Z in camera space) moves toward -Y in Blender."""
    from blender_facemesh.core.animation.bake import pose_to_blender
    from blender_facemesh.core.rotations import quaternion_to_matrix

    rest = np.eye(4)
    rest[:3, 3] = (0, 0, -50)
    turned = np.eye(4)
    turned[:3, :3] = quaternion_to_matrix(_quat((0, 1, 0), 20))
    turned[:3, 3] = (0, 0, -40)
    q, loc = pose_to_blender(np.stack([rest, turned]), rest)
    np.testing.assert_allclose(q[0], [1, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(q[1], _quat((0, 0, 1), 20), atol=1e-9)
    np.testing.assert_allclose(loc[1], [0, -0.10, 0], atol=1e-9)


def test_eyes_follow_the_look_scores():
    from blender_facemesh.core.animation.bake import eye_quaternions
    from blender_facemesh.core.channels import ARKIT_INDEX
    from blender_facemesh.core.rotations import quaternion_to_matrix

    s = np.zeros((3, 52))
    s[1, [ARKIT_INDEX["eyeLookOutLeft"], ARKIT_INDEX["eyeLookInRight"]]] = 1.0  # look to the performer's left
    s[2, [ARKIT_INDEX["eyeLookUpLeft"], ARKIT_INDEX["eyeLookUpRight"]]] = 1.0
    q = eye_quaternions(s)
    np.testing.assert_allclose(q[0], [[1, 0, 0, 0]] * 2, atol=1e-12)
    forward = np.array([0, -1.0, 0])  # the character looks along -Y
    left = quaternion_to_matrix(q[1, 0]) @ forward
    up = quaternion_to_matrix(q[2, 1]) @ forward
    assert left[0] > 0.4 and up[2] > 0.3  # toward +X (its left) and up (+Z)
    s[0, 0] = np.nan
    assert np.isnan(eye_quaternions(s)[0]).all()
