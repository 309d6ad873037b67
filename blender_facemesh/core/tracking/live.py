"""A live capture as Blender's main thread sees it: poll, show the newest face, record.

No bpy here. Blender's timer calls ``poll()`` a few dozen times a second; it must return in
well under a millisecond, so everything heavy (inference, geometry, filters) already happened
on the worker's threads and this class only moves finished samples around and keeps the
numbers the panel shows (fps, latency, face found, dropped frames).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np

from ..take import Take
from .worker import CaptureWorker, Sample, SourceLike, WorkerSettings


class LiveSession:
    """Owns one CaptureWorker. ``recording`` decides whether drained samples go into the take;
    the newest sample always drives the live preview. ``collect(seconds)`` gathers a stretch
    (for neutral calibration) without recording."""

    def __init__(self, source: SourceLike, settings: WorkerSettings | None = None,
                 clock: Callable[[], float] = time.monotonic, meta: dict | None = None,
                 take_path: Callable[[], object] | None = None):
        # a worker already made (a phone's PhoneWorker) or a frame source for the webcam's
        self.worker = source if isinstance(source, CaptureWorker) else CaptureWorker(source, settings)
        # where a new recording's take will be saved: its journal streams beside it meanwhile
        self.take_path = take_path
        self.journal_note = ""  # why the current recording has no journal, if it has none
        self.clock = clock
        self.meta = dict(meta or {})
        self.recording = False
        self.take: Take | None = None
        self.takes: list[Take] = []        # finished recordings, oldest first
        self.latest: Sample | None = None
        self.face_found = False
        self.error = ""
        self._arrivals: deque = deque(maxlen=60)   # source timestamps of recent samples
        self._latency: deque = deque(maxlen=120)   # seconds, frame read -> applied on the rig
        self._collect_until: float | None = None
        self._collected: list[Sample] = []
        self.frames_seen = 0
        self.fresh_faces: dict = {}  # face id -> its newest face from the last poll

    # --- control -------------------------------------------------------------------------------

    def start(self) -> "LiveSession":
        self.worker.start()
        return self

    def stop(self, timeout: float = 1.0) -> Take | None:
        """Stop the capture; a recording in progress is finished and returned, never lost."""
        take = self.stop_recording() if self.recording else None
        self.worker.stop(timeout)
        return take

    @property
    def running(self) -> bool:
        return self.worker.running and not self.worker.finished

    def start_recording(self) -> None:
        self.take = None  # created on the first sample, when the source's size is known
        self.recording = True

    def stop_recording(self) -> Take | None:
        """End the recording; returns the take (None if no frame arrived while recording).
        Its journal is complete and closed; whoever saves the take discards it."""
        self.recording = False
        take, self.take = self.take, None
        if take is not None and take.journal is not None:
            take.journal.close()
        names = getattr(self.worker, "performer_names", None)
        if take is not None and names:
            take.meta["performers"] = {str(fid): name for fid, name in names.items()}
        if take is not None and len(take):
            self.takes.append(take)
            return take
        return None

    def collect(self, seconds: float) -> None:
        """Gather the next ``seconds`` of samples (by source time) for calibration."""
        self._collected = []
        self._collect_until = float(seconds)

    @property
    def collecting(self) -> bool:
        return self._collect_until is not None

    def collected(self) -> list[Sample] | None:
        """The gathered stretch once complete, else None."""
        if self._collect_until is None and self._collected:
            out, self._collected = self._collected, []
            return out
        return None

    # --- the timer's work ----------------------------------------------------------------------

    def poll(self, max_items: int = 256) -> Sample | None:
        """Drain the queue. Returns the newest sample when there is one, else None. Raises
        the worker's error (WorkerError) once; the session is then over."""
        samples = self.worker.drain(max_items)
        self.fresh_faces = {}
        if not samples:
            return None
        for s in samples:
            for f in s.faces:  # each face's newest: phones send one performer per sample
                self.fresh_faces[f.id] = f
            self._arrivals.append(s.t)
            if self.recording:
                if self.take is None:
                    self.take = self._new_take()
                self.take.append(s)
                if self.take.journal is not None:
                    self.take.journal.append(s)
            if self._collect_until is not None:
                self._collected.append(s)
                if s.t - self._collected[0].t >= self._collect_until:
                    self._collect_until = None
        self.frames_seen += len(samples)
        self.latest = samples[-1]
        self.face_found = bool(self.latest.faces)
        return self.latest

    def applied(self, sample: Sample) -> None:
        """Call once the sample is on the rig: latency is measured up to here."""
        self._latency.append(self.clock() - sample.read_at)

    def _new_take(self) -> Take:
        from ..journal import open_journal

        info = self.worker.source.info if self.worker.source is not None else None
        if info is None:
            take = Take(30.0, 0, 0, meta=self.meta)
        else:
            take = Take(info.fps, info.width, info.height, source=info.as_dict(), meta=self.meta)
        self.journal_note = ""
        if self.take_path is not None:
            take.journal, self.journal_note = open_journal(self.take_path(), take)
        return take

    # --- numbers for the panel -----------------------------------------------------------------

    @property
    def fps(self) -> float:
        """Samples per second of source time over the last ~2 s."""
        a = self._arrivals
        if len(a) < 2 or a[-1] <= a[0]:
            return 0.0
        return (len(a) - 1) / (a[-1] - a[0])

    @property
    def latency_ms(self) -> float:
        return float(np.median(self._latency)) * 1000.0 if self._latency else 0.0

    def latencies_ms(self) -> np.ndarray:
        return np.asarray(self._latency, np.float64) * 1000.0

    @property
    def frames_dropped(self) -> int:
        return self.worker.frames_dropped

    @property
    def delegate(self) -> str:
        return self.worker.delegate

    @property
    def delegate_reason(self) -> str:
        return self.worker.delegate_reason


class BackgroundJob:
    """A slow, bpy-free computation (a calibration solve) on its own thread, so Blender's main
    thread only polls ``done`` from a timer and picks up ``result`` or ``error``."""

    def __init__(self, fn, *args, name: str = "facemesh-job", **kwargs):
        import threading

        self.result = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            self.result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

