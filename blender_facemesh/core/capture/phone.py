"""iPhone face-capture apps as live sources: Epic's Live Link Face and iFacialMocap over UDP.

The phone does the tracking (ARKit): each packet already holds the 52 ARKit scores and the head
and eye rotations, so these sources skip MediaPipe. This module decodes packets and owns the
socket; ``core/tracking/phone.py`` turns packets into the same samples a webcam gives.

Live Link Face, packet version 6 (Unreal's AppleARKitLiveLinkSource, which the app sends;
every multi-byte field big-endian, strings an int32 byte length then UTF-8):
  uint8 version (6) | str device id | str subject name | int32 frame | float32 sub-frame |
  int32 fps numerator | int32 fps denominator | uint8 count (61) | 61 float32
The 61 values are Unreal's EARFaceBlendShape order (:data:`LIVELINK_ORDER`): 52 scores, head
yaw/pitch/roll, left eye yaw/pitch/roll, right eye yaw/pitch/roll. The app sends a packet that
stops after the frame time while no face is seen. Rotations are taken in radians, as the
app's CSV recordings are read (core/formats/livelink.py says why; some receivers read them as
degrees / 180, which no recording we have supports).

iFacialMocap (text, one frame per datagram; the phone starts streaming to this computer's port
49983 when it receives :data:`IFM_HANDSHAKE` on its own port 49983, or when its "destination IP"
is set to this computer):
  [trackingStatus-1|] name-value|... |=head#rx,ry,rz[,px,py,pz]|rightEye#rx,ry,rz|leftEye#rx,ry,rz|
Names are ARKit's with ``_L``/``_R`` for Left/Right, values integer percent (version 2 of the
format writes ``name&value``); angles in degrees, position in metres. The angles are read as
rotations about the phone camera's axes (ARKit's: x right, y up, z toward the performer); that
reading is not checked against a phone here.
"""

from __future__ import annotations

import errno
import math
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from ..camera import PHONE_DISTANCE_CM
from ..channels import ARKIT_INDEX, ARKIT_NAMES
from ..errors import FacemeshError
from ..rotations import euler_to_matrix, livelink_rotation

LIVELINK_VERSION = 6
LIVELINK_COUNT = 61
LIVELINK_ORDER = (  # Unreal's EARFaceBlendShape: the order of the packet's first 52 values
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
_LL_TO_ARKIT = np.array([ARKIT_INDEX[n] for n in LIVELINK_ORDER])
assert sorted(_LL_TO_ARKIT) == list(range(len(ARKIT_NAMES)))
_MAX_NAME = 256  # bytes; a device id is a 36-character UUID, a subject a name typed on the phone

IFM_HANDSHAKE = b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719"
IFM_PORT = 49983


@dataclass(frozen=True)
class Protocol:
    name: str        # what the user sees
    port: int        # default port this computer listens on
    max_packet: int  # bytes; anything longer is refused as oversized


PROTOCOLS = {
    "livelink": Protocol("Live Link Face", 11111, 1024),
    "ifacialmocap": Protocol("iFacialMocap", IFM_PORT, 4096),
}


class PhoneError(FacemeshError):
    """A phone source that cannot start (port in use, bad address); says what to do."""


class PacketError(ValueError):
    """A packet that is dropped; ``kind`` is how it is counted."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class PhoneFrame:
    """One decoded packet: one performer (``subject``) in one frame."""
    subject: str
    scores: np.ndarray | None         # (52,) float32, ARKit order; None: the phone sees no face
    rotation: np.ndarray | None = None    # (3, 3) head rotation in camera axes
    position_cm: np.ndarray | None = None  # (3,) head position in camera space, when the app sends it
    eyes: np.ndarray | None = None     # (2, 3) float32 [left, right] x [yaw, pitch, roll] radians (take's eye_angles)
    t: float | None = None             # seconds on the phone's clock (Live Link); None: use arrival time
    frame_number: int | None = None
    fps: float | None = None
    device: str = ""

    def head_matrix(self) -> np.ndarray:
        """(4, 4) canonical -> camera, cm, like a webcam take's poses (placed in front of the
        camera when the app sends angles only)."""
        m = np.eye(4)
        m[:3, :3] = self.rotation if self.rotation is not None else np.eye(3)
        m[:3, 3] = self.position_cm if self.position_cm is not None else (0.0, 0.0, -PHONE_DISTANCE_CM)
        return m


# --- Live Link Face ----------------------------------------------------------------------------

def _string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    if pos + 4 > len(data):
        raise PacketError("truncated", f"packet ends inside the {what}")
    (n,) = struct.unpack_from(">i", data, pos)
    if not 0 <= n <= _MAX_NAME:
        raise PacketError("malformed", f"{what} length {n} is not 0..{_MAX_NAME}")
    pos += 4
    if pos + n > len(data):
        raise PacketError("truncated", f"packet ends inside the {what}")
    try:
        return data[pos:pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise PacketError("malformed", f"{what} is not UTF-8") from None


def decode_livelink(data: bytes) -> PhoneFrame:
    """A Live Link Face packet -> PhoneFrame; raises PacketError (truncated / malformed)."""
    if not data:
        raise PacketError("truncated", "empty packet")
    if data[0] != LIVELINK_VERSION:
        raise PacketError("malformed", f"packet version {data[0]}, not {LIVELINK_VERSION} (update the app?)")
    device, pos = _string(data, 1, "device id")
    subject, pos = _string(data, pos, "subject name")
    if pos + 16 > len(data):
        raise PacketError("truncated", "packet ends inside the frame time")
    frame, sub, num, den = struct.unpack_from(">ifii", data, pos)
    pos += 16
    if num <= 0 or den <= 0 or not (math.isfinite(sub) and 0.0 <= sub < 1.0) or frame < 0:
        raise PacketError("malformed", f"frame time {frame}+{sub} at {num}/{den} fps is not valid")
    fps = num / den
    t = (frame + sub) / fps
    out = PhoneFrame(subject or device, None, t=t, frame_number=frame, fps=fps, device=device)
    if pos == len(data):
        return out  # no face in view: the app sends the header alone
    if data[pos] != LIVELINK_COUNT:
        raise PacketError("malformed", f"{data[pos]} values, not {LIVELINK_COUNT}")
    pos += 1
    if len(data) - pos < 4 * LIVELINK_COUNT:
        raise PacketError("truncated", "packet ends inside the values")
    if len(data) - pos > 4 * LIVELINK_COUNT:
        raise PacketError("malformed", f"{len(data) - pos - 4 * LIVELINK_COUNT} bytes after the values")
    v = np.frombuffer(data, ">f4", LIVELINK_COUNT, pos).astype(np.float64)
    if not np.isfinite(v).all() or (np.abs(v[52:]) > 2 * math.pi).any():
        raise PacketError("malformed", "values that are not finite, or angles past a full turn")
    out.scores = np.zeros(len(ARKIT_NAMES), np.float32)
    out.scores[_LL_TO_ARKIT] = np.clip(v[:52], 0.0, 1.0)
    out.rotation = livelink_rotation(*v[52:55])
    out.eyes = (-v[55:61]).reshape(2, 3).astype(np.float32)  # the CSV reader's signs
    return out


def _pack_string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack(">i", len(b)) + b


def encode_livelink(subject: str, t: float, values: np.ndarray | None, fps: tuple[int, int] = (60, 1),
                    device: str = "00000000-0000-4000-8000-000000000000") -> bytes:
    """The app's packet for ``values`` (61 floats in packet order; None: no face) at ``t`` seconds
    (what tests and bench/live.py send to the receiver; a replay tool could use it too)."""
    frames = t * fps[0] / fps[1]
    frame = int(math.floor(frames + 1e-6))  # 3/60 s is frame 3, not frame 2.99999...
    head = (bytes([LIVELINK_VERSION]) + _pack_string(device) + _pack_string(subject)
            + struct.pack(">ifii", frame, min(max(frames - frame, 0.0), 0.99999994), *fps))
    if values is None:
        return head
    return head + bytes([LIVELINK_COUNT]) + np.asarray(values, ">f4").tobytes()


def livelink_values(scores: np.ndarray, head_angles, eyes) -> np.ndarray:
    """(61,) packet values from ARKit-order scores, Live Link head [yaw, pitch, roll] and a take's
    eye_angles (2, 3), in the packet's order and signs."""
    out = np.zeros(LIVELINK_COUNT)
    out[:52] = np.asarray(scores, np.float64)[_LL_TO_ARKIT]
    out[52:55] = head_angles
    out[55:61] = -np.asarray(eyes, np.float64).reshape(6)
    return out


# --- iFacialMocap ------------------------------------------------------------------------------

_IFM_PLAIN = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")  # ARKit names the app keeps whole


def _ifm_name(name: str) -> str:
    if name.endswith("_L"):
        return name[:-2] + "Left"
    if name.endswith("_R"):
        return name[:-2] + "Right"
    return name


def _floats(text: str, what: str, counts: tuple[int, ...]) -> np.ndarray:
    try:
        v = np.array([float(x) for x in text.split(",")], np.float64)
    except ValueError:
        raise PacketError("malformed", f"{what} is not numbers") from None
    if len(v) not in counts or not np.isfinite(v).all():
        raise PacketError("malformed", f"{what} has {len(v)} values, not {' or '.join(map(str, counts))}")
    return v


def decode_ifacialmocap(data: bytes, sender: str = "") -> PhoneFrame:
    """An iFacialMocap datagram -> PhoneFrame (subject: the sender's address)."""
    try:
        text = data.decode("ascii").replace(" ", "").strip()
    except UnicodeDecodeError:
        raise PacketError("malformed", "not iFacialMocap text") from None
    text = text.removesuffix("___iFacialMocap")
    scores_part, eq, pose_part = text.partition("=")
    if not eq:
        raise PacketError("malformed", "no '=' between the scores and the head")
    scores = np.zeros(len(ARKIT_NAMES), np.float32)
    known, tracking = 0, True
    for token in filter(None, scores_part.split("|")):
        sep = "&" if "&" in token else "-"
        name, _, value = token.partition(sep)
        try:
            number = float(value)
        except ValueError:
            raise PacketError("malformed", f"{token[:40]!r} is not name{sep}value") from None
        if name == "trackingStatus":
            tracking = number >= 1
            continue
        i = ARKIT_INDEX.get(_ifm_name(name))
        if i is not None and math.isfinite(number):
            scores[i] = min(max(number / 100.0, 0.0), 1.0)
            known += 1
    parts = {}
    for token in filter(None, pose_part.split("|")):
        key, _, values = token.partition("#")
        parts[key] = values
    if "head" not in parts:
        raise PacketError("malformed", "no head#... entry")
    head = _floats(parts["head"], "head", (3, 6))
    if known < len(ARKIT_NAMES) // 2:
        raise PacketError("malformed", f"{known} of the 52 ARKit scores")
    out = PhoneFrame(f"iFacialMocap {sender}".strip(), scores if tracking else None, device=sender)
    if not tracking:
        return out
    out.rotation = euler_to_matrix(head[1], head[0], head[2])
    if len(head) == 6:
        out.position_cm = head[3:] * 100.0
    eyes = np.zeros((2, 3), np.float32)
    for row, key in enumerate(("leftEye", "rightEye")):
        if key in parts:
            rx, ry, rz = np.radians(_floats(parts[key], key, (3,)))
            eyes[row] = (ry, -rx, rz)  # toward image right (the performer's left) and up are positive
    out.eyes = eyes
    return out


def encode_ifacialmocap(scores: np.ndarray, head_deg, position_m=None, eyes_deg=None, tracking: bool = True) -> bytes:
    """An iFacialMocap datagram (version 1 text) for ARKit-order scores and head [rx, ry, rz]
    degrees (what tests and the bench send)."""
    def name(n: str) -> str:
        if n in _IFM_PLAIN:
            return n
        return n[:-4] + "_L" if n.endswith("Left") else n[:-5] + "_R" if n.endswith("Right") else n

    items = [f"{name(n)}-{int(round(float(v) * 100))}" for n, v in zip(ARKIT_NAMES, scores)]
    head = list(head_deg) + (list(position_m) if position_m is not None else [])
    eyes = eyes_deg if eyes_deg is not None else np.zeros((2, 3))
    text = (f"trackingStatus-{int(tracking)}|" + "|".join(items) + "|=head#" + ",".join(f"{x:.6f}" for x in head)
            + "|rightEye#" + ",".join(f"{x:.6f}" for x in eyes[1]) + "|leftEye#"
            + ",".join(f"{x:.6f}" for x in eyes[0]) + "|")
    return text.encode("ascii")


DECODERS = {"livelink": lambda data, sender: decode_livelink(data), "ifacialmocap": decode_ifacialmocap}


# --- the socket --------------------------------------------------------------------------------

@dataclass
class PhoneSettings:
    protocol: str = "livelink"     # a key of PROTOCOLS
    host: str = "0.0.0.0"          # interface to listen on (default all: the phone is on the LAN)
    port: int | None = None        # None: the app's default
    allow: tuple[str, ...] = ()    # sender addresses accepted (empty: any)
    phone: str = ""                # iFacialMocap: the phone's address, to ask it to stream here

    @property
    def listen_port(self) -> int:
        return self.port if self.port is not None else PROTOCOLS[self.protocol].port

    def describe(self) -> str:
        where = "all interfaces" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"{PROTOCOLS[self.protocol].name} on UDP port {self.listen_port} ({where})"


def parse_phone_input(text: str) -> PhoneSettings | None:
    """``livelink[:[HOST:]PORT]`` or ``ifacialmocap[:PHONE_ADDRESS]`` -> settings; None for
    anything else (a file, a camera). Raises PhoneError for a bad port."""
    name, _, rest = str(text).partition(":")
    name = name.lower()
    if name not in PROTOCOLS:
        return None
    if name == "ifacialmocap":
        return PhoneSettings("ifacialmocap", phone=rest.strip())
    host, _, port = rest.rpartition(":")
    if not port:
        return PhoneSettings("livelink", host=host or "0.0.0.0")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise PhoneError(f"{text}: the port must be a number from 1 to 65535 (livelink:11111)")
    return PhoneSettings("livelink", host=host or "0.0.0.0", port=int(port))


class PhoneSocket:
    """The UDP socket a phone stream arrives on: bound by the constructor (so a port in use is
    an error at once, on the caller's thread), closed by ``close()``."""

    def __init__(self, settings: PhoneSettings):
        if settings.protocol not in PROTOCOLS:
            raise PhoneError(f"unknown phone app {settings.protocol!r}: use one of {', '.join(PROTOCOLS)}")
        self.settings = settings
        self.protocol = PROTOCOLS[settings.protocol]
        port = settings.listen_port
        if not 0 <= port < 65536:  # 0: any free port (tests)
            raise PhoneError(f"port {port} is not 1..65535")
        try:
            family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise PhoneError(f"cannot open a network socket ({exc.strerror or exc})") from exc
        try:
            self._sock.bind((settings.host, port))
        except OSError as exc:
            self._sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise PhoneError(f"UDP port {port} is in use: another program (Unreal, Faceit, Rokoko, a second "
                                 "capture) is listening there; close it or pick another port") from exc
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL) or isinstance(exc, socket.gaierror):
                raise PhoneError(f"{settings.host} is not an address of this computer: pick one of its "
                                 "network interfaces, or 0.0.0.0 for all") from exc
            if exc.errno == errno.EACCES:
                raise PhoneError(f"not allowed to listen on port {port}: use a port above 1023") from exc
            raise PhoneError(f"cannot listen on {settings.host}:{port} ({exc.strerror or exc})") from exc
        self.address = self._sock.getsockname()[:2]
        self._allow = set(settings.allow)

    def receive(self, timeout: float):
        """(data, sender address, arrival time) or None after ``timeout`` seconds; raises
        PacketError("oversized" / "refused") for a datagram that is dropped unread."""
        self._sock.settimeout(timeout)
        try:
            data, addr = self._sock.recvfrom(self.protocol.max_packet + 1)
        except (socket.timeout, BlockingIOError, InterruptedError):
            return None
        arrived = time.monotonic()
        if self._allow and addr[0] not in self._allow:
            raise PacketError("refused", f"a packet from {addr[0]}, which is not on the allow-list")
        if len(data) > self.protocol.max_packet:
            raise PacketError("oversized", f"a packet over {self.protocol.max_packet} bytes")
        return data, addr[0], arrived

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self._sock.sendto(data, address)
        except OSError:
            pass  # the phone is not reachable yet: asked again in a moment

    def close(self) -> None:
        self._sock.close()


@dataclass
class PacketCounts:
    """What arrived and what was dropped, by reason (shown in the panel, tested exactly)."""
    received: int = 0
    frames: int = 0          # decoded into a sample (with or without a face)
    dropped: dict = field(default_factory=dict)  # reason -> count
    missing: int = 0         # Live Link frame numbers never recorded (lost on the way, or late)

    def drop(self, kind: str) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + 1

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def describe(self) -> str:
        if not self.dropped:
            return f"{self.frames} packets, none dropped"
        why = ", ".join(f"{n} {k}" for k, n in sorted(self.dropped.items()))
        return f"{self.frames} packets, {self.total_dropped} dropped ({why})"
