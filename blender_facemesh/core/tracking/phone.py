"""A phone app's stream (Live Link Face, iFacialMocap) as a capture worker: the same samples,
queue and consumer interface as the webcam's ``CaptureWorker``, so the live session, the
journal, takes, baking and the command line take either.

One thread receives, decodes and queues; nothing blocks the consumer. Each phone (a subject
name in Live Link, a sender address in iFacialMocap) is a performer with its own face id, in the
order they first appear. Times: Live Link packets carry the phone's frame time, which a take
keeps (relative to the phone's first packet, started at the moment that phone was first heard);
packets older than one already taken are late and dropped. iFacialMocap has no times, so the
arrival time is used.
"""

from __future__ import annotations

import time

import numpy as np

from ..capture.phone import DECODERS, IFM_PORT, IFM_HANDSHAKE, PROTOCOLS, PacketCounts, PacketError, \
    PhoneFrame, PhoneSettings, PhoneSocket
from ..capture.sources.base import SourceInfo
from .worker import _POLL, CaptureWorker, FaceSample, FaceSmoothers, Sample, WorkerSettings, _End, _Failure

HANDSHAKE_INTERVAL = 2.0  # seconds between iFacialMocap's "stream to me" requests


class PhoneStream:
    """What a worker's ``source`` is for a phone: its description and counts (no frames)."""
    live = True

    def __init__(self, settings: PhoneSettings, fps: float = 60.0):
        self.settings = settings
        self.counts = PacketCounts()
        self.info = SourceInfo(settings.protocol, f"udp://{settings.host}:{settings.listen_port}", 0, 0, fps, None,
                               live=True)

    @property
    def dropped(self) -> int:
        return self.counts.total_dropped + self.counts.missing

    def close(self) -> None:
        pass


class PhoneWorker(CaptureWorker):
    """Receives a phone app's UDP stream on its own thread. ``start()`` binds the socket (a port
    in use raises PhoneError there); ``stop()`` closes it."""

    def __init__(self, phone: PhoneSettings, settings: WorkerSettings | None = None,
                 clock=time.monotonic):
        super().__init__(PhoneStream(phone), settings)
        self.source = self._source_arg  # not a FrameSource: set here, not by the webcam's start-up
        self.phone = phone
        self.clock = clock
        self.performers: dict[str, int] = {}   # subject -> face id
        self._socket: PhoneSocket | None = None
        self._anchor: dict[str, tuple[float, float]] = {}  # subject -> (first packet's t, its session time)
        self._last_t: dict[str, float] = {}
        self._last_frame: dict[str, int] = {}
        self._last_data: dict[str, bytes] = {}
        self._smoothers = FaceSmoothers(self.settings.smoothing)
        self._t0: float | None = None
        self._emitted_t = -np.inf
        self._index = 0

    @property
    def counts(self) -> PacketCounts:
        return self.source.counts

    @property
    def address(self) -> tuple[str, int] | None:
        return self._socket.address if self._socket is not None else None

    def start(self) -> "PhoneWorker":
        self._socket = PhoneSocket(self.phone)  # raises PhoneError on this thread
        return super().start()

    def _work_loop(self) -> None:
        sock = self._socket
        self.live = True
        self.delegate = f"iPhone ({PROTOCOLS[self.phone.protocol].name})"
        self.delegate_reason = "the phone tracks the face (ARKit); MediaPipe is not used"
        self.ready.set()
        next_ask = 0.0
        try:
            while not self._stop.is_set():
                if self.phone.protocol == "ifacialmocap" and self.phone.phone and self.clock() >= next_ask:
                    sock.send(IFM_HANDSHAKE, (self.phone.phone, IFM_PORT))
                    next_ask = self.clock() + HANDSHAKE_INTERVAL
                try:
                    got = sock.receive(_POLL)
                except PacketError as exc:
                    self.counts.received += 1
                    self.counts.drop(exc.kind)
                    continue
                if got is None:
                    continue
                self.counts.received += 1
                sample = self._decode(*got)
                if sample is not None:
                    self.frames_read += 1
                    self.frames_processed += 1
                    self._emit(sample)
            self._emit(_End("stopped"), force=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer like the webcam's errors
            self._emit(_Failure(exc), force=True)
        finally:
            sock.close()

    def _decode(self, data: bytes, sender: str, arrived: float) -> Sample | None:
        try:
            frame = DECODERS[self.phone.protocol](data, sender)
        except PacketError as exc:
            self.counts.drop(exc.kind)
            return None
        if frame.t is None and self._last_data.get(frame.subject) == data:
            frame.scores = None  # iFacialMocap repeats its last packet while it has lost the face
        self._last_data[frame.subject] = data
        t = self._time(frame, arrived)
        if t is None:
            self.counts.drop("late")
            return None
        self.counts.frames += 1
        fid = self.performers.setdefault(frame.subject, len(self.performers))
        faces = [] if frame.scores is None else [self._face(fid, frame, t)]
        if frame.scores is None:
            self._smoothers.forget(fid)  # a face that comes back starts fresh
        t = max(t, self._emitted_t + 1e-6)  # several phones: one take's times still increase
        self._emitted_t = t
        self._index += 1
        return Sample(self._index - 1, t, faces, arrived, self.clock())

    def _time(self, frame: PhoneFrame, arrived: float) -> float | None:
        """Session seconds of this packet, or None when it is older than one already taken."""
        if self._t0 is None:
            self._t0 = arrived
            if frame.fps:
                self.source.info.fps = frame.fps
        if frame.t is None:
            return arrived - self._t0
        first = self._anchor.setdefault(frame.subject, (frame.t, arrived - self._t0))
        t = first[1] + (frame.t - first[0])
        last = self._last_frame.get(frame.subject)
        if t <= self._last_t.get(frame.subject, -np.inf):
            if last is not None and frame.frame_number < last:
                self.counts.missing = max(0, self.counts.missing - 1)  # it arrived after all, too late
            return None
        self._last_t[frame.subject] = t
        if last is not None and frame.frame_number > last + 1:
            self.counts.missing += frame.frame_number - last - 1
        self._last_frame[frame.subject] = frame.frame_number
        return t

    def _face(self, fid: int, frame: PhoneFrame, t: float) -> FaceSample:
        pose = frame.head_matrix()
        shown = self._smoothers(fid, pose, frame.scores, t)
        return FaceSample(id=fid, landmarks=None, head_matrix=pose, mesh=None, blendshapes=frame.scores,
                          mp_matrix=None, shown_head_matrix=shown[0],
                          shown_blendshapes=shown[1],
                          eye_angles=frame.eyes)

    @property
    def performer_names(self) -> dict[int, str]:
        return {fid: name for name, fid in self.performers.items()}
