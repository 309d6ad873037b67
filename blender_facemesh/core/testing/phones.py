"""A stand-in for an iPhone app: replay a take as Live Link Face or iFacialMocap packets on UDP,
at the app's pace, with loss, reordering and garbage mixed in by a seeded plan, so tests and
bench/live.py know exactly what a receiver should keep and what it should count as dropped.
(The phone itself cannot exist here; the packets, the socket and the receiver are real.)
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..capture.phone import PROTOCOLS, encode_ifacialmocap, encode_livelink, livelink_values
from ..rotations import livelink_angles, matrix_to_euler, rotation_part


def livelink_packets(take, subject: str = "iPhone", face_id: int | None = None, fps: int = 60) -> list[bytes]:
    """One packet per frame of one face of ``take`` (a header-only packet where it is absent)."""
    tr = take.face_track(face_id)
    eyes = tr["eye_angles"] if take.has("eye_angles") else np.zeros((len(take.t), 2, 3))
    out = []
    for i, t in enumerate(take.t - take.t[0]):
        if not tr["present"][i]:
            out.append(encode_livelink(subject, float(t), None, (fps, 1)))
            continue
        head = livelink_angles(rotation_part(tr["head_matrix"][i]))
        out.append(encode_livelink(subject, float(t), livelink_values(tr["blendshapes"][i], head,
                                                                      np.nan_to_num(eyes[i])), (fps, 1)))
    return out


def ifacialmocap_packets(take, face_id: int | None = None) -> list[bytes]:
    tr = take.face_track(face_id)
    out = []
    for i in range(len(take.t)):
        m = tr["head_matrix"][i]
        if not tr["present"][i]:
            out.append(encode_ifacialmocap(np.zeros(52), (0, 0, 0), tracking=False))
            continue
        yaw, pitch, roll = matrix_to_euler(rotation_part(m))
        out.append(encode_ifacialmocap(tr["blendshapes"][i], (pitch, yaw, roll), m[:3, 3] / 100.0))
    return out


@dataclass
class Plan:
    """What is sent, in order, and what a receiver must make of it."""
    packets: list[bytes]                 # in sending order
    kept: list[int]                      # indices into the replayed frames a receiver must record, in order
    dropped: dict = field(default_factory=dict)  # reason -> count a receiver must report
    lost: int = 0                        # frames never sent


def mix(frames: list[bytes], protocol: str = "livelink", loss: float = 0.0, reorder: float = 0.0,
        garbage: float = 0.0, seed: int = 0) -> Plan:
    """Lose, swap (a frame sent after the next one: it arrives late) and add garbage between frames:
    random bytes, a frame cut short, an oversized datagram, a wrong version (Live Link)."""
    rng = np.random.default_rng(seed)
    plan = Plan([], [])
    max_packet = PROTOCOLS[protocol].max_packet
    i = 0
    n = len(frames)

    def junk():
        kinds = ["malformed", "truncated", "oversized"] if protocol == "livelink" else ["malformed", "oversized"]
        kind = kinds[rng.integers(len(kinds))]
        if kind == "oversized":
            plan.packets.append(bytes(rng.integers(0, 256, max_packet + 1 + int(rng.integers(0, 500)), np.uint8)))
        elif kind == "truncated":
            f = frames[int(rng.integers(n))]
            plan.packets.append(f[: int(rng.integers(1, 40))])
        elif protocol == "livelink":
            plan.packets.append(bytes([int(rng.choice([0, 5, 7, 255]))]) + bytes(rng.integers(0, 256, 80, np.uint8)))
        else:
            plan.packets.append(b"hello|" + bytes(rng.integers(97, 122, 40, np.uint8)))
        plan.dropped[kind] = plan.dropped.get(kind, 0) + 1

    while i < n:
        if rng.random() < garbage:
            junk()
        if 0 < i < n - 1 and rng.random() < loss:
            plan.lost += 1
            i += 1
            continue
        if 0 < i < n - 2 and rng.random() < reorder:
            plan.packets += [frames[i + 1], frames[i]]  # frame i arrives after i+1: late
            plan.kept.append(i + 1)
            plan.dropped["late"] = plan.dropped.get("late", 0) + 1
            i += 2
            continue
        plan.packets.append(frames[i])
        plan.kept.append(i)
        i += 1
    return plan


class Sender:
    """Sends packets to ``address`` from its own thread at ``rate`` per second (garbage goes out
    between frames without waiting). ``join()`` waits for the last one."""

    def __init__(self, packets: list[bytes], address: tuple[str, int], rate: float = 60.0,
                 source_port: int = 0):
        self.packets, self.address, self.rate = packets, address, rate
        self.sent = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", source_port))
        self._thread = threading.Thread(target=self._run, name="facemesh-test-phone", daemon=True)

    def start(self) -> "Sender":
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.perf_counter()
        k = 0
        for data in self.packets:
            if len(data) > 60 and not _garbage(data):  # a real frame: paced like the app
                due = start + k / self.rate
                while (wait := due - time.perf_counter()) > 0:
                    time.sleep(min(wait, 0.005))
                k += 1
            try:
                self._sock.sendto(data, self.address)
            except OSError:
                pass
            self.sent += 1
        self._sock.close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def _garbage(data: bytes) -> bool:
    """Pacing only: whether a packet is one of :func:`mix`'s junk ones (they go out unpaced)."""
    if data[:1] == b"\x06":
        return len(data) > PROTOCOLS["livelink"].max_packet
    if data.startswith(b"trackingStatus"):
        return len(data) > PROTOCOLS["ifacialmocap"].max_packet
    return True


def phone_take(n: int = 120, fps: float = 60.0, seed: int = 0, gap: tuple[int, int] | None = (40, 46)):
    """A take as a phone would record it: smooth scores, head turns, eye angles, and no face in
    the frames of ``gap`` (what a replay test sends and compares with what was received)."""
    from ..camera import PHONE_DISTANCE_CM
    from ..rotations import livelink_rotation
    from ..take import Take, absent

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    phase = rng.uniform(0, 2 * np.pi, 52)
    scores = (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t[:, None] + phase)).astype(np.float32)
    head = np.stack([0.4 * np.sin(2 * np.pi * 0.3 * t), 0.2 * np.sin(2 * np.pi * 0.5 * t),
                     0.1 * np.sin(2 * np.pi * 0.4 * t)], 1)
    mats = np.zeros((n, 1, 4, 4))
    mats[:, 0, :3, :3] = livelink_rotation(*head.T)
    mats[:, 0, :3, 3], mats[:, 0, 3, 3] = (0.0, 0.0, -PHONE_DISTANCE_CM), 1.0
    eyes = np.zeros((n, 1, 2, 3), np.float32)
    eyes[..., 0] = 0.3 * np.sin(2 * np.pi * 0.9 * t)[:, None, None]
    eyes[..., 1] = 0.2 * np.cos(2 * np.pi * 0.6 * t)[:, None, None]
    take = Take(fps, 0, 0, source={"kind": "livelink", "name": "test phone", "width": 0, "height": 0, "fps": fps,
                                   "frame_count": n, "rotation": 0, "live": True})
    take.t, take.frame_index = t, np.arange(n)
    take.face_ids = np.zeros((n, 1), np.int32)
    take.arrays = {"head_matrix": mats, "blendshapes": scores[:, None], "eye_angles": eyes,
                   **{k: absent(k, n, 1) for k in ("landmarks", "mesh", "mp_matrix")}}
    if gap is not None:
        a, b = gap
        take.face_ids[a:b] = -1
        for k in ("head_matrix", "blendshapes", "eye_angles"):
            take.arrays[k][a:b] = np.nan
    return take


def write_packets(packets: list[bytes], path) -> None:
    """Packets into a file for :func:`main` (length-prefixed)."""
    import struct

    with open(path, "wb") as f:
        for p in packets:
            f.write(struct.pack(">I", len(p)) + p)


def main(argv=None) -> None:
    """``python -m blender_facemesh.core.testing.phones PACKETS HOST PORT [RATE]``: the stand-in
    phone in a process of its own, as a real phone is (bench/live.py: it does not share Blender's
    interpreter lock)."""
    import struct
    import sys

    path, host, port, *rest = argv if argv is not None else sys.argv[1:]
    data = open(path, "rb").read()
    packets, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        packets.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    Sender(packets, (host, int(port)), float(rest[0]) if rest else 60.0).start().join()


if __name__ == "__main__":
    main()
