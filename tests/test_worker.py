"""The capture thread on real pixels: ordering, dropping, stopping and errors."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from blender_facemesh.core.capture.landmarker import LandmarkerSettings
from blender_facemesh.core.capture.model import ModelError
from blender_facemesh.core.solve.smoothing import Smoothing
from blender_facemesh.core.capture.sources import (FrameSource, SimulatedLiveSource, SourceInfo,
                                           VideoFileSource)
from blender_facemesh.core.tracking.worker import CaptureWorker, WorkerError, WorkerSettings


class FakeStallingCamera(FrameSource):
    """Stands in for a physical camera (none here): delivers ``n`` real frames, then its read
    blocks forever, as a camera that is unplugged or hangs does."""

    def __init__(self, clip, n):
        super().__init__()
        self._video = VideoFileSource(clip)
        self.info = SourceInfo("camera", "fake-camera:0", self._video.info.width,
                               self._video.info.height, 30.0, None, live=True)
        self.n = n
        self.blocked = threading.Event()
        self._never = threading.Event()

    def _read(self):
        if self.n == 0:
            self.blocked.set()
            self._never.wait()  # hangs like a dead camera driver
            return None
        self.n -= 1
        t, rgb = self._video.read()
        return time.monotonic(), rgb


class FakeBrokenCamera(FakeStallingCamera):
    """Stands in for a camera whose driver raises after a few frames."""

    def _read(self):
        if self.n == 0:
            raise OSError("device disconnected")
        return super()._read()


def test_file_source_keeps_every_frame_in_order(sample_clip):
    src = VideoFileSource(sample_clip)
    n = src.info.frame_count
    # a tiny queue and a slow consumer: a file source must wait, never drop
    worker = CaptureWorker(src, WorkerSettings(queue_size=2)).start()
    samples = []
    for s in worker:
        samples.append(s)
        if len(samples) < 10:
            time.sleep(0.05)
    assert worker.end_reason == "end of input"
    assert [s.index for s in samples] == list(range(n))
    assert np.all(np.diff([s.t for s in samples]) > 0)
    assert worker.frames_dropped == 0
    assert sum(1 for s in samples if s.faces) >= 0.95 * n
    face = samples[n // 2].faces[0]
    assert face.landmarks.shape == (478, 3) and face.mesh.shape == (468, 3)
    assert face.blendshapes.shape == (52,) and face.head_matrix.shape == (4, 4)
    assert worker.delegate == "CPU" and worker.delegate_reason


def test_live_source_drops_oldest_when_the_consumer_lags(sample_clip):
    src = SimulatedLiveSource(sample_clip)
    worker = CaptureWorker(src, WorkerSettings(queue_size=3)).start()
    got = []
    time.sleep(1.0)  # the consumer is busy: the live worker must not build a backlog
    deadline = time.monotonic() + 15
    while not worker.finished and time.monotonic() < deadline:
        got.extend(worker.drain())
        time.sleep(0.01)
    assert worker.finished and worker.end_reason == "end of input"
    assert worker.frames_dropped > 0
    assert len(got) + worker.frames_dropped >= 0.9 * VideoFileSource(sample_clip).info.frame_count
    assert np.all(np.diff([s.t for s in got]) > 0)
    # latency: what we got after the stall is fresh, not a backlog
    lat = np.array([s.done_at - s.read_at for s in got])
    assert np.median(lat) < 0.2


def test_stop_joins_within_a_second_while_the_source_blocks(sample_clip):
    cam = FakeStallingCamera(sample_clip, n=3)
    worker = CaptureWorker(cam, WorkerSettings(stall_timeout=60)).start()
    assert cam.blocked.wait(30)
    t0 = time.monotonic()
    assert worker.stop(timeout=1.0)
    assert time.monotonic() - t0 < 1.0
    assert not worker.running


def test_a_camera_that_stops_delivering_ends_the_take_cleanly(sample_clip):
    cam = FakeStallingCamera(sample_clip, n=5)
    worker = CaptureWorker(cam, WorkerSettings(stall_timeout=0.5)).start()
    samples = list(worker)
    assert len(samples) == 5
    assert "stopped delivering" in worker.end_reason and "kept" in worker.end_reason
    worker.stop()


def test_errors_in_the_thread_reach_the_consumer(sample_clip):
    worker = CaptureWorker(FakeBrokenCamera(sample_clip, n=4)).start()
    got = []
    with pytest.raises(WorkerError, match="device disconnected"):
        for s in worker:
            got.append(s)
    assert len(got) == 4  # what came before the error is not lost
    worker.stop()

    bad = CaptureWorker(VideoFileSource(sample_clip),
                        WorkerSettings(landmarker=LandmarkerSettings(model_path="/nonexistent.task"))).start()
    with pytest.raises(WorkerError) as err:
        list(bad)
    assert isinstance(err.value.__cause__, ModelError)


def test_samples_carry_raw_values_and_the_live_smoothing_beside_them(sample_clip):
    """Takes record raw values (smoothing comes at bake time); the live rig shows the smoothed."""
    samples = [s for s in CaptureWorker(VideoFileSource(sample_clip), WorkerSettings(smoothing=Smoothing())).start()
               if s.faces]
    raw = np.array([s.faces[0].blendshapes for s in samples])
    shown = np.array([s.faces[0].shown[1] for s in samples])
    assert raw.shape == shown.shape and not np.allclose(raw, shown)
    assert np.abs(np.diff(shown, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean()
    off = next(s for s in CaptureWorker(VideoFileSource(sample_clip), WorkerSettings(smoothing=Smoothing.off())).start()
               if s.faces)
    assert off.faces[0].shown[1] is off.faces[0].blendshapes  # nothing to smooth: the raw values themselves


def test_core_never_imports_bpy():
    core = Path(__file__).resolve().parent.parent / "blender_facemesh" / "core"
    files = list(core.rglob("*.py"))
    assert len(files) > 20 and any(f.parent != core for f in files)  # the stage folders too
    for py in files:
        assert "import bpy" not in py.read_text(), py.relative_to(core)
    code = ("import sys, importlib, pkgutil, blender_facemesh.core as c\n"
            "mods = [m.name for m in pkgutil.walk_packages(c.__path__, 'blender_facemesh.core.')]\n"
            "assert 'blender_facemesh.core.capture.sources.video' in mods, mods\n"
            "for m in mods: importlib.import_module(m)\n"
            "import blender_facemesh.cli\n"
            "assert 'bpy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
