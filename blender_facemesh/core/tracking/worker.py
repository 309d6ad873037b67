"""The capture thread: source -> landmarker -> geometry -> live smoothing -> a queue of plain samples.

THIS MODULE MUST NEVER IMPORT OR TOUCH bpy. It runs off Blender's main thread; Blender's
side only drains the queue (``drain()``) from a timer. MediaPipe is created, used and closed
on the worker's own thread, so the main thread never runs inference.

Three threads per capture, a pipeline: a reader that decodes frames, the worker that runs
the landmarker, and a finisher (face ids, geometry, live smoothing), so that decoding and the numpy
work overlap with MediaPipe's inference. Live sources keep only the newest frame and drop the
oldest sample when the consumer lags; file sources block instead and never drop a frame.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

import numpy as np

from ..errors import FacemeshError
from ..solve.smoothing import LiveSmoother, Smoothing
from ..camera import DEFAULT_FOV_DEG
from ..solve.geometry import FaceGeometry
from ..capture.landmarker import Landmarker, LandmarkerSettings
from ..visual.preview import to_blender_pixels
from ..capture.sources import FrameSource

_POLL = 0.05  # seconds; how often blocked waits look at the stop flag
_started_workers: "weakref.WeakSet[CaptureWorker]" = weakref.WeakSet()


def _stop_all_workers() -> None:
    """At exit, stop and join every capture still running: a daemon thread inside MediaPipe while
    the interpreter finalises aborts the process on Python 3.13 ("terminate called without an
    active exception") and prints thread tracebacks on 3.11."""
    for worker in list(_started_workers):
        worker.stop(timeout=2.0)


# Before concurrent.futures shuts its executors down (MediaPipe closes its graph through one):
# threading's exit hooks run newest first, and before plain atexit handlers.
_register = getattr(threading, "_register_atexit", None)
(_register or atexit.register)(_stop_all_workers)


class WorkerError(FacemeshError):
    """An error raised inside the capture thread, handed to the consumer (the original is its
    ``__cause__``); a bad input behind it keeps that input's exit code."""

    @property
    def exit_code(self) -> int:
        cause = self.__cause__
        return cause.exit_code if isinstance(cause, FacemeshError) else 1


@dataclass
class FaceSample:
    id: int
    landmarks: np.ndarray    # (478, 3) float32, normalized image coordinates
    head_matrix: np.ndarray  # (4, 4) float64, canonical -> camera, cm
    mesh: np.ndarray         # (468, 3) float32, pose-free face in canonical space, cm
    blendshapes: np.ndarray  # (52,) float32, ARKit order
    mp_matrix: np.ndarray    # (4, 4) float32, MediaPipe's own pose (for checks)
    # what the live rig shows: the above after the live (causal) smoothing; takes record the
    # raw values above, and baking smooths them again without lag
    shown_head_matrix: np.ndarray | None = None
    shown_blendshapes: np.ndarray | None = None
    eye_angles: np.ndarray | None = None  # (2, 3) radians, where the source measures the eyes (phones)

    @property
    def shown(self) -> tuple[np.ndarray, np.ndarray]:
        """(head matrix, scores) for driving a rig live."""
        if self.shown_head_matrix is None:
            return self.head_matrix, self.blendshapes
        return self.shown_head_matrix, self.shown_blendshapes


@dataclass
class Sample:
    index: int               # frame number as read from the source
    t: float                 # source timestamp, seconds
    faces: list[FaceSample]
    read_at: float           # time.monotonic() when the frame left the source
    done_at: float           # time.monotonic() when the sample was queued
    frame: np.ndarray | None = None  # downscaled RGB frame for previews, when asked for
    preview: np.ndarray | None = None  # that frame with the landmarks drawn, as Blender image pixels


@dataclass
class WorkerSettings:
    landmarker: LandmarkerSettings = field(default_factory=LandmarkerSettings)
    smoothing: Smoothing = field(default_factory=Smoothing)  # live only: takes keep raw values
    fov_deg: float = DEFAULT_FOV_DEG
    queue_size: int = 64          # samples waiting for the consumer
    stall_timeout: float = 3.0    # live: no frame this long means the camera stopped
    preview_width: int = 0        # >0: attach a frame scaled to this width to each sample
    preview_rate: float = 0.0     # >0: also a ready-to-show preview picture this often (per second)
    face_shape: object = None     # a performer's FaceShapeCalibration (core.faceshape): head pose on their own face


class FaceSmoothers:
    """The live (causal) smoothing, one filter per face id, for what the live rig shows; takes
    keep the raw values. A face that leaves starts fresh when it comes back (``forget``)."""

    def __init__(self, smoothing: Smoothing):
        self.smoothing = smoothing
        self._filters: dict[int, LiveSmoother] = {}

    def __call__(self, fid: int, pose: np.ndarray, scores: np.ndarray, t: float):
        """(shown head matrix, shown float32 scores), or (None, None) with smoothing off."""
        flt = self._filters.get(fid)
        if flt is None:
            if not self.smoothing.enabled:
                return None, None
            flt = self._filters[fid] = LiveSmoother(self.smoothing)
        pose, scores = flt(pose, scores, t)
        return pose, scores.astype(np.float32)

    def forget(self, fid: int) -> None:
        self._filters.pop(fid, None)

    def keep_only(self, present: set) -> list[int]:
        """Forget every face not in ``present``; returns the ids forgotten."""
        gone = [fid for fid in self._filters if fid not in present]
        for fid in gone:
            del self._filters[fid]
        return gone


@dataclass
class _End:
    reason: str


@dataclass
class _Failure:
    error: BaseException


SourceLike = Union[FrameSource, Callable[[], FrameSource]]


class CaptureWorker:
    """Runs a capture in the background. Consume with ``drain()`` (non-blocking, for timers) or
    by iterating (blocking, for the command line). ``stop()`` returns within about 1 s."""

    def __init__(self, source: SourceLike, settings: WorkerSettings | None = None):
        self.settings = settings or WorkerSettings()
        self._source_arg = source
        self.source: FrameSource | None = source if isinstance(source, FrameSource) else None
        self._stop = threading.Event()
        self._frames: queue.Queue = queue.Queue(maxsize=4)
        self._results: queue.Queue = queue.Queue(maxsize=4)
        self._finisher: threading.Thread | None = None
        self._out: queue.Queue = queue.Queue(maxsize=max(1, self.settings.queue_size))
        self._reader = threading.Thread(target=self._read_loop, name="facemesh-reader", daemon=True)
        self._worker = threading.Thread(target=self._work_loop, name="facemesh-worker", daemon=True)
        self._started = False
        self.live: bool | None = None
        self.finished = False
        self.end_reason = ""
        self.delegate = ""
        self.delegate_reason = ""
        self.ready = threading.Event()     # set once the landmarker is up (or failed)
        self._failure: WorkerError | None = None  # raised by the next drain()
        self.frames_read = 0
        self.frames_processed = 0
        self.samples_dropped = 0           # dropped from the output queue (live only)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> "CaptureWorker":
        if self._started:
            raise RuntimeError("worker already started")
        self._started = True
        _started_workers.add(self)
        self._worker.start()
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask both threads to end and join them; True when they did within ``timeout``.
        A reader stuck inside a blocking camera read is a daemon and is left to finish alone."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for th in (self._worker, self._finisher):
            if th is not None and th.is_alive():
                th.join(max(0.0, deadline - time.monotonic()))
        if self._reader.is_alive():  # a decode ends in milliseconds; a hung driver never does
            self._reader.join(min(0.2, max(0.0, deadline - time.monotonic())))
        return not self.running

    @property
    def running(self) -> bool:
        return self._worker.is_alive() or (self._finisher is not None and self._finisher.is_alive())

    @property
    def frames_dropped(self) -> int:
        """Frames the live source skipped plus samples the queue dropped."""
        src = getattr(self.source, "dropped", 0) if self.source is not None else 0
        return int(src) + self.samples_dropped

    def __enter__(self):
        return self.start() if not self._started else self

    def __exit__(self, *exc):
        self.stop()

    # --- consuming -----------------------------------------------------------------------------

    def _take(self, item) -> Sample | None:
        if isinstance(item, _Failure):
            self.finished = True
            self.end_reason = f"error: {item.error}"
            raise WorkerError(str(item.error)) from item.error
        if isinstance(item, _End):
            self.finished = True
            self.end_reason = item.reason
            return None
        return item

    def drain(self, max_items: int | None = None) -> list[Sample]:
        """Everything queued now, without waiting; raises WorkerError if the thread failed
        (after handing over, on the call before, the samples that came ahead of the failure)."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        out = []
        while max_items is None or len(out) < max_items:
            try:
                item = self._out.get_nowait()
            except queue.Empty:
                break
            try:
                sample = self._take(item)
            except WorkerError as exc:
                if not out:
                    raise
                self._failure = exc
                break
            if sample is None:
                break
            out.append(sample)
        return out

    def get(self, timeout: float | None = None) -> Sample | None:
        """Next sample, or None at the end of the stream; raises queue.Empty on timeout."""
        if self.finished:
            return None
        return self._take(self._out.get(timeout=timeout))

    def __iter__(self) -> Iterator[Sample]:
        try:
            while not self.finished:
                try:
                    sample = self.get(timeout=_POLL)
                except queue.Empty:
                    if not self.running and self._out.empty():
                        self.finished = True
                        self.end_reason = self.end_reason or "stopped"
                    continue
                if sample is not None:
                    yield sample
        finally:  # ended, failed or abandoned: the threads close MediaPipe and the source first
            self.stop()

    # --- threads -------------------------------------------------------------------------------

    def _emit(self, item, force: bool = False) -> bool:
        """Queue an item. Live: drop the oldest sample when full. Files: wait, never drop; only
        an end/error marker (``force``) may push out a sample, and only once stop was asked."""
        while True:
            try:
                self._out.put(item, timeout=0 if self.live else _POLL)
                return True
            except queue.Full:
                if self.live or (force and self._stop.is_set()):
                    try:
                        old = self._out.get_nowait()
                    except queue.Empty:
                        continue
                    if isinstance(old, Sample):
                        self.samples_dropped += 1
                        continue
                    self._out.put_nowait(old)  # never lose an end/error marker
                    return False
                if self._stop.is_set():
                    return False

    def _put_frame(self, item) -> bool:
        if self.live:
            # keep only the newest frame: a live consumer wants now, not a backlog
            while True:
                try:
                    self._frames.put_nowait(item)
                    return True
                except queue.Full:
                    try:
                        self._frames.get_nowait()
                        if hasattr(self.source, "dropped"):
                            self.source.dropped += 1
                    except queue.Empty:
                        pass
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _read_loop(self) -> None:
        src = self.source
        index = 0
        try:
            while not self._stop.is_set():
                got = src.read()
                if got is None:
                    self._put_frame(_End("end of input"))
                    return
                t, frame = got
                if not self._put_frame((index, t, frame, time.monotonic())):
                    return
                index += 1
        except BaseException as exc:
            self._put_frame(_Failure(exc))
        finally:
            try:
                src.close()
            except Exception:
                pass

    def _work_loop(self) -> None:
        """Inference stage: frames in, raw MediaPipe results out to the finishing stage."""
        lm = None
        try:
            if self.source is None:
                self.source = self._source_arg()
            self.live = bool(self.source.live)
            lm = Landmarker(self.settings.landmarker, live=self.live)
            self.delegate, self.delegate_reason = lm.delegate, lm.delegate_reason
            self._finisher = threading.Thread(target=self._finish_loop, args=(lm,),
                                              name="facemesh-finish", daemon=True)
            self._finisher.start()
            self.ready.set()
            self._reader.start()
            self._infer(lm)
        except BaseException as exc:
            self._hand_on(_Failure(exc))
        finally:
            self.ready.set()
            if self._finisher is not None:
                self._finisher.join()  # it may still read the landmarker's face ids and model
            if lm is not None:
                try:
                    lm.close()
                except Exception:  # noqa: BLE001 - closing must not print a thread traceback
                    pass

    def _hand_on(self, item) -> None:
        if self._finisher is None:
            self._emit(item, force=True)
            return
        while True:
            try:
                self._results.put(item, timeout=_POLL)
                return
            except queue.Full:
                if not self._finisher.is_alive():
                    return

    def _infer(self, lm: Landmarker) -> None:
        stall = self.settings.stall_timeout
        last_frame_at = time.monotonic()
        while True:
            if self._stop.is_set():
                self._hand_on(_End("stopped"))
                return
            try:
                item = self._frames.get(timeout=_POLL)
            except queue.Empty:
                if self.live and time.monotonic() - last_frame_at > stall:
                    self._hand_on(_End(f"the camera stopped delivering frames (none for "
                                       f"{stall:.0f} s); everything recorded so far is kept"))
                    return
                continue
            if isinstance(item, (_End, _Failure)):
                self._hand_on(item)
                return
            last_frame_at = time.monotonic()
            self.frames_read += 1
            index, t, frame, read_at = item
            self._hand_on((index, t, frame, read_at, lm.detect_raw(frame, t)))

    def _finish_loop(self, lm: Landmarker) -> None:
        """Finishing stage: face ids, geometry, live smoothing, queue for the consumer."""
        try:
            self._finish(lm)
        except BaseException as exc:
            self._stop.set()  # the other stages end too
            self._emit(_Failure(exc), force=True)

    def _finish(self, lm: Landmarker) -> None:
        s = self.settings
        model = lm.model
        geometries: dict[tuple[int, int], FaceGeometry] = {}
        smoothers = FaceSmoothers(s.smoothing)
        next_picture = 0.0
        while True:
            try:
                item = self._results.get(timeout=_POLL)
            except queue.Empty:
                continue
            if isinstance(item, (_End, _Failure)):
                self._emit(item, force=True)
                return
            index, t, frame, read_at, raw = item
            h, w = frame.shape[:2]
            det = lm.convert(raw, t)
            faces = []
            for f in det.faces:
                landmarks = np.asarray(f.landmarks, np.float64)
                # the performer's own face: a perspective PnP per face (it warm-starts from the
                # face's last pose); else MediaPipe's pipeline on the canonical face
                key = (w, h, f.id) if s.face_shape is not None else (w, h)
                geo = geometries.get(key)
                if geo is None:
                    if s.face_shape is not None:
                        from ..faceshape import head_pose_solver

                        geo = head_pose_solver(s.face_shape, w, h, s.fov_deg)
                    else:
                        geo = FaceGeometry(model.canonical_vertices, model.procrustes_weights, w, h, s.fov_deg)
                    geometries[key] = geo
                pose, _metric, mesh = geo.solve(landmarks)
                scores = np.clip(f.blendshapes, 0.0, 1.0).astype(np.float32)
                shown = smoothers(f.id, pose, scores, t)
                faces.append(FaceSample(
                    id=f.id,
                    landmarks=landmarks.astype(np.float32),
                    head_matrix=pose,
                    mesh=mesh.astype(np.float32),
                    blendshapes=scores,
                    mp_matrix=f.mp_matrix,
                    shown_head_matrix=shown[0],
                    shown_blendshapes=shown[1],
                ))
            present = {f.id for f in det.faces}
            # a face that comes back starts fresh, not smoothed from the past
            for fid in smoothers.keep_only(present):
                geometries.pop((w, h, fid), None)
            small = _downscale(frame, s.preview_width) if s.preview_width > 0 else None
            picture = None
            if small is not None and s.preview_rate > 0 and time.monotonic() >= next_picture:
                # drawn here, off the main thread, which then only copies it into an image
                next_picture = time.monotonic() + 1.0 / s.preview_rate
                picture = to_blender_pixels(_preview_picture(small, faces, s.fov_deg))
            self.frames_processed += 1
            self._emit(Sample(index, t, faces, read_at, time.monotonic(), small, picture))


def _preview_picture(small: np.ndarray, faces: list, fov_deg: float) -> np.ndarray:
    """The same drawing as the overlay video (mesh, head axes, strongest scores)."""
    from ..visual.overlay import draw_overlay

    if not faces:
        return draw_overlay(small, fov_deg=fov_deg)
    first, rest = faces[0], faces[1:]
    return draw_overlay(small, first.landmarks, first.head_matrix, first.blendshapes, fov_deg,
                        other_faces=[(f.landmarks, f.head_matrix) for f in rest])


def _downscale(frame: np.ndarray, width: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    if w <= width:
        return frame.copy()
    return cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def new_take(info, settings: WorkerSettings, source_extra: dict | None = None, **meta):
    """An empty Take for a source's frames, noting how they are tracked (fov; values raw)."""
    from ..take import Take

    return Take(info.fps, info.width, info.height, source={**info.as_dict(), **(source_extra or {})},
                meta={"fov_deg": settings.fov_deg, "values": "raw", **meta})


def track_take(source, settings: WorkerSettings | None = None, on_progress=None,
               meta: dict | None = None):
    """A whole (file) source into a Take, blocking; ``on_progress(done, total)`` every 10 frames."""
    settings = settings or WorkerSettings()
    info = source.info
    take = new_take(info, settings, **(meta or {}))
    with CaptureWorker(source, settings) as worker:  # stopped and joined before any error goes up
        for i, s in enumerate(worker, 1):
            take.append(s)
            if on_progress is not None and i % 10 == 0:
                on_progress(i, info.frame_count)
    return take
