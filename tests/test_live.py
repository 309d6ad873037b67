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
