import numpy as np

from blender_facemesh.core.rotations import continuous_quaternions
from blender_facemesh.core.rotations import quaternion_to_matrix, rotation_angle_deg
from blender_facemesh.core.solve.filters import FilterSettings, OneEuroFilter, OneEuroSettings, PoseFilter


def _run(filter_, xs, fps=30.0):
    return np.array([filter_(x, i / fps) for i, x in enumerate(xs)])


def test_one_euro_removes_jitter_on_a_still_signal(rng):
    xs = 0.5 + rng.normal(0, 0.01, size=(300, 4))
    ys = _run(OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0)), xs)
    assert ys[60:].std(axis=0).max() < 0.4 * xs[60:].std(axis=0).min()


def test_one_euro_keeps_up_with_fast_motion():
    t = np.arange(90) / 30.0
    xs = np.where(t > 1.0, 1.0, 0.0)[:, None]  # a step: a fast head turn
    slow = _run(OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0)), xs)
    fast = _run(OneEuroFilter(OneEuroSettings(min_cutoff=1.0, beta=5.0)), xs)
    k = 31 + 3  # 100 ms after the step
    assert fast[k, 0] > 0.9 and slow[k, 0] < 0.6


def test_disabled_filter_is_identity(rng):
    xs = rng.normal(size=(20, 3))
    np.testing.assert_array_equal(_run(OneEuroFilter(OneEuroSettings(enabled=False)), xs), xs)
    off = FilterSettings.off()
    assert not (off.landmarks.enabled or off.blendshapes.enabled or off.pose.enabled)
    assert FilterSettings.from_dict(FilterSettings().as_dict()).as_dict() == FilterSettings().as_dict()


def test_quaternion_continuity_flips_signs():
    q = np.array([[1, 0, 0, 0], [-0.99, -0.1, 0, 0], [0.98, 0.2, 0, 0]], float)
    c = continuous_quaternions(q)
    assert (np.einsum("ij,ij->i", c[1:], c[:-1]) > 0).all()


def test_pose_filter_smooths_rotation_without_flipping(rng):
    f = PoseFilter(OneEuroSettings(min_cutoff=1.0, beta=0.0))
    truth = quaternion_to_matrix([np.cos(0.3), 0, np.sin(0.3), 0])
    errs_in, errs_out = [], []
    for i in range(120):
        axis = rng.normal(size=3)
        ang = np.radians(1.0)
        n = axis / np.linalg.norm(axis)
        noise = quaternion_to_matrix([np.cos(ang / 2), *(np.sin(ang / 2) * n)])
        pose = np.eye(4)
        pose[:3, :3] = noise @ truth
        pose[:3, 3] = [0, 0, -50]
        out = f(pose, i / 30)
        if i > 30:
            errs_in.append(rotation_angle_deg(pose[:3, :3], truth))
            errs_out.append(rotation_angle_deg(out[:3, :3], truth))
        assert abs(np.linalg.det(out[:3, :3]) - 1) < 1e-6
    assert np.mean(errs_out) < 0.5 * np.mean(errs_in)
