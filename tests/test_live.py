"""The main thread's side of a live capture, without Blender: polling, recording, collecting a
neutral stretch, the preview picture."""

import threading

import numpy as np

from blender_facemesh.core.capture.sources import SimulatedLiveSource
from blender_facemesh.core.tracking.live import LiveSession
from blender_facemesh.core.tracking.worker import WorkerSettings
from blender_facemesh.core.visual.preview import to_blender_pixels


def _poll_until(session, cond, limit=30.0):
    waited = threading.Event()
    t = 0.0
    while not cond() and t < limit:
        session.poll()
        waited.wait(0.01)
        t += 0.01
    return cond()


def test_recording_collecting_and_stop_keep_every_recorded_frame(sample_clip):
    session = LiveSession(SimulatedLiveSource(sample_clip), WorkerSettings(preview_width=64)).start()
    try:
        assert _poll_until(session, lambda: session.frames_seen >= 5)
        assert session.latest.frame.shape[1] == 64 and session.face_found
        session.collect(0.3)
        assert _poll_until(session, lambda: not session.collecting)
        stretch = session.collected()
        assert stretch[-1].t - stretch[0].t >= 0.3 and session.collected() is None
        session.start_recording()
        assert _poll_until(session, lambda: session.take is not None and len(session.take) >= 10)
        before = session.frames_seen
    finally:
        take = session.stop()
    # every sample polled while recording is in the take, none after the stop
    assert take is not None and len(take) >= 10 and len(take) <= session.frames_seen - before + 10
    assert take.width == 512 and take.face_present.all()
    assert np.all(np.diff(take.t) > 0)
    assert 0 < session.fps < 200 and session.takes == [take]
    assert not session.worker.running


def test_preview_pixels_are_in_blenders_order():
    frame = np.full((40, 60, 3), 100, np.uint8)
    frame[10, 30] = (255, 0, 0)
    px = to_blender_pixels(frame).reshape(40, 60, 4)
    np.testing.assert_allclose(px[39 - 10, 30, :3], [1, 0, 0], atol=1e-6)  # bottom row first
    assert (px[..., 3] == 1).all() and px.dtype == np.float32


def test_the_live_rig_channels_are_the_bakes_numbers():
    """The timer's one-frame rig maths (plain floats, for speed) gives what baking gives."""
    from blender_facemesh.core.animation.bake import live_rig_channels, pose_to_blender, rig_channels
    from blender_facemesh.core.rotations import euler_to_matrix, rotation_part

    rng = np.random.default_rng(0)

    def pose():
        m = np.eye(4)
        m[:3, :3] = euler_to_matrix(*rng.uniform(-60, 60, 3))
        m[:3, 3] = rng.uniform(-10, 10, 3) + (0, 0, -50)
        return m

    for trial in range(200):
        head, rest = pose(), pose()
        if trial % 7 == 0:
            rest = head.copy()  # no turn at all: the axis is undefined
        scores = rng.uniform(-0.2, 1.2, 52)  # outside 0..1 too: both clip
        share, moves, neck, reach = rng.uniform(0, 1), bool(trial % 2), bool(trial % 3), rng.uniform(5, 40)
        quats, loc = pose_to_blender(head[None], rest)
        want = rig_channels(quats, loc, scores[None], share, moves, neck, reach)
        got = live_rig_channels(head, rotation_part(rest), rest, scores, share, moves, neck, reach)
        assert want.keys() == got.keys()
        for role in want:
            a, b = want[role][0], got[role][0]
            assert min(np.abs(a - b).max(), np.abs(a + b).max()) < 1e-12, role
            assert (want[role][1] is None) == (got[role][1] is None)
            if want[role][1] is not None:
                assert np.abs(want[role][1] - got[role][1]).max() < 1e-12
