"""Tracking benchmarks, run by hand: python bench/tracking.py [VIDEO] [--repeat N]

Prints, measured in this one run on the same frames:
  1. end-to-end throughput of our capture worker (decode + landmarker + geometry + live smoothing)
     against a plain "decode a frame, call detect_for_video" loop, and their ratio;
  2. geometry time per frame (screen -> metric landmarks, Procrustes pose, pose-free mesh);
  3. worker stop latency, on a live source and on a source whose read hangs.
Default clip: the built-in sample clip (scikit-image astronaut, re-posed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def plain_loop(path: str, model_path: str) -> tuple[float, int]:
    """What a user would write with MediaPipe alone: one thread, decode then detect."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=model_path, delegate=BaseOptions.Delegate.CPU),
        running_mode=vision.RunningMode.VIDEO, num_faces=1,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        cap = cv2.VideoCapture(path)
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        t0 = time.perf_counter()
        n = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            lm.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), int(n * 1000 / fps))
            n += 1
        elapsed = time.perf_counter() - t0
        cap.release()
    return elapsed, n


def ours(path: str, collect: list | None = None) -> tuple[float, int]:
    from blender_facemesh.core.capture.landmarker import LandmarkerSettings
    from blender_facemesh.core.capture.sources import VideoFileSource
    from blender_facemesh.core.tracking.worker import CaptureWorker, WorkerSettings

    worker = CaptureWorker(VideoFileSource(path), WorkerSettings(landmarker=LandmarkerSettings(delegate="CPU")))
    worker.start()
    worker.ready.wait()  # model loading is outside the timing, as in plain_loop
    t0 = time.perf_counter()
    n = 0
    for s in worker:
        n += 1
        if collect is not None and s.faces:
            collect.append(s.faces[0].landmarks)
    return time.perf_counter() - t0, n


def geometry_time(landmarks: list[np.ndarray], size: tuple[int, int]) -> float:
    from blender_facemesh.core.solve.geometry import FaceGeometry
    from blender_facemesh.core.capture.model import load_model

    m = load_model()
    geo = FaceGeometry(m.canonical_vertices, m.procrustes_weights, *size)
    reps = max(1, 2000 // max(1, len(landmarks)))
    t0 = time.perf_counter()
    for _ in range(reps):
        for lm in landmarks:
            geo.solve(lm)
    return (time.perf_counter() - t0) / (reps * len(landmarks))


class HungSource:
    """A source whose read never returns after the first frames, like a hung camera driver."""

    def __new__(cls, path):
        from blender_facemesh.core.capture.sources import FrameSource, SourceInfo, VideoFileSource

        class _Hung(FrameSource):
            def __init__(self):
                super().__init__()
                self.video = VideoFileSource(path)
                i = self.video.info
                self.info = SourceInfo("camera", "hung-camera", i.width, i.height, i.fps, None, live=True)
                self.n = 5
                self.hung = threading.Event()

            def _read(self):
                if self.n == 0:
                    self.hung.set()
                    threading.Event().wait()
                self.n -= 1
                return self.video.read()

        return _Hung()


def stop_latency(path: str, repeat: int = 5) -> tuple[list[float], list[float]]:
    from blender_facemesh.core.capture.sources import SimulatedLiveSource
    from blender_facemesh.core.tracking.worker import CaptureWorker, WorkerSettings

    live, hung = [], []
    for _ in range(repeat):
        w = CaptureWorker(SimulatedLiveSource(path)).start()
        w.ready.wait()
        time.sleep(0.5)
        t0 = time.perf_counter()
        assert w.stop(1.0)
        live.append(time.perf_counter() - t0)
        src = HungSource(path)
        w = CaptureWorker(src, WorkerSettings(stall_timeout=60)).start()
        src.hung.wait(30)
        t0 = time.perf_counter()
        assert w.stop(1.0)
        hung.append(time.perf_counter() - t0)
    return live, hung


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", help="clip to track (default: built-in sample clip)")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of each loop")
    args = ap.parse_args()
    from blender_facemesh.core.capture.model import load_model
    from blender_facemesh.core.testing.synthetic import sample_clip_path

    path = args.video or str(sample_clip_path())
    model_path = str(load_model().path)
    cap = cv2.VideoCapture(path)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    print(f"clip: {path} ({size[0]}x{size[1]}), cores: {os.cpu_count()}")

    ours(path)  # warm caches (model file, decoder) before timing
    plain_fps, our_fps = [], []
    landmarks: list = []
    for i in range(args.repeat):
        e, n = plain_loop(path, model_path)
        plain_fps.append(n / e)
        e, n = ours(path, landmarks if i == 0 else None)
        our_fps.append(n / e)
    p, o = statistics.median(plain_fps), statistics.median(our_fps)
    print(f"1. throughput, median of {args.repeat}: plain loop {p:.1f} fps, ours {o:.1f} fps, "
          f"ratio ours/plain {o / p:.2f}x")
    g = geometry_time(landmarks, size)
    print(f"2. geometry per frame: {g * 1000:.3f} ms ({len(landmarks)} frames)")
    live, hung = stop_latency(path)
    print(f"3. stop latency: live source median {statistics.median(live) * 1000:.0f} ms "
          f"(max {max(live) * 1000:.0f}); hung source median {statistics.median(hung) * 1000:.0f} ms "
          f"(max {max(hung) * 1000:.0f})")


if __name__ == "__main__":
    main()
