"""Epic's Live Link Face (iPhone app) CSV: read a recording into a Take, write any take in its format.

The format, from the app's own recordings (github.com/alexdjulin/LiveLinkFace-CSV-Retarget-For-
Motionbuilder anim/*.csv; the same header is hard-coded in nmfisher/blender_livelinkface):
  * header ``Timecode,BlendShapeCount,`` + the 52 ARKit names capitalised (JawRight before JawLeft,
    MouthRight before MouthLeft: not Apple's order, so columns are matched by name) + HeadYaw,
    HeadPitch, HeadRoll, LeftEyeYaw..RightEyeRoll; BlendShapeCount 61; values with 10 decimals;
  * Timecode ``HH:MM:SS:FF.sss``, ``.sss`` a fraction of a frame: rows read ``13:13:04:31.652``,
    ``:33.651``, ``:35.651`` (frames up to 59: a 60 fps timecode, a row every other frame, a
    slowly drifting phase). Drop-frame timecodes have ``;`` before FF.

Angles are radians: in those recordings eye pitch is ~0.2 where EyeLookUp/Down is ~0.4 (11 degrees;
as degrees it would be a 0.2 degree glance); Diffeomorphic's import_daz Live Link importer uses the
columns unscaled as Blender radians (FaceCap's degrees it converts), JimWest/MeFaMo sends radians.
Signs: in the recordings eye yaw is negative when both eyes look to the performer's left
(EyeLookOutLeft + EyeLookInRight) and pitch negative looking up, which is Unreal's FRotator of the
ARKit rotation moved into Unreal axes (X = -Z, Y = X, Z = Y), as Epic's code converts ARKit data.
MeFaMo, which drives MetaHumans through Unreal's Live Link Face receiver, computes the head the same
way from MediaPipe's pose matrix (our head_matrix): HeadPitch = +rotation about camera X, HeadYaw and
HeadRoll = -rotation about Y and Z. No Epic document states this; we adopt it for head and eyes:
  HeadYaw > 0: the performer turns to their right (nose to image left); HeadPitch > 0: nose down;
  HeadRoll > 0: top of the head to the performer's left shoulder (image right);
  i.e. R = Ry(-yaw) @ Rx(pitch) @ Rz(-roll) about camera axes = rotations.euler_to_matrix(-yaw,
  pitch, -roll) in degrees. Eyes: yaw > 0 toward the performer's right, pitch > 0 down (the
  opposite signs of solve.eyes.eye_rotations). Head angles are taken as relative to the phone's
  camera held upright (nmfisher notes that yaw and pitch flip in landscape).

Reading: one face (id 0); head placed HEAD_DISTANCE_CM in front of the camera, scale 1; t from the
timecode relative to the first row (a time-of-day timecode passing midnight is unwrapped; rows that
do not advance are nudged 1 microsecond forward, a step back of over a frame is an error). fps: the
argument, else ``;`` -> 29.97 (59.94 if a frame number reaches 30), else the smallest of 24/25/30/
48/50/60/120 above the largest frame number once the file crosses a second, else DEFAULT_FPS (60,
what the app's recordings use). Eye angles go to the take's eye_angles array, (frames, 1, [left, right], [yaw,
pitch, roll]) radians in solve.eyes.eye_rotations' signs (yaw > 0 to the performer's left, pitch > 0
up, roll negated too): the file's values negated.
Writing: frames without the face are skipped, NaN is written as 0, eye angles come from a Live Link
take's eye_angles (or its meta["eye_angles"], where takes saved before kept them), else from solve.eyes.eye_rotations of the scores with roll 0.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np

from ..errors import FacemeshError
from ..channels import ARKIT_INDEX, ARKIT_NAMES
from ..files import safe_stem, write_text_atomic
from ..camera import PHONE_DISTANCE_CM
from ..rotations import livelink_angles, livelink_rotation, rotation_part
from ..solve.eyes import eye_rotations
from ..take import Take, TakeError, validate

BLENDSHAPE_COLUMNS = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
    "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
    "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
    "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)
HEAD_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll")
EYE_COLUMNS = ("LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount") + BLENDSHAPE_COLUMNS + HEAD_COLUMNS + EYE_COLUMNS
BLENDSHAPE_COUNT = 61
DEFAULT_FPS = 60.0
HEAD_DISTANCE_CM = PHONE_DISTANCE_CM
_ARKIT_OF = [ARKIT_INDEX[c[0].lower() + c[1:]] for c in BLENDSHAPE_COLUMNS]
assert sorted(_ARKIT_OF) == list(range(len(ARKIT_NAMES)))
_STANDARD_RATES = (24, 25, 30, 48, 50, 60, 120)
_TC = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})([:;])(\d{1,3})(?:\.(\d+))?")
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")


class LiveLinkError(FacemeshError, ValueError):
    """A Live Link Face CSV or timecode that cannot be used; the message says what and where."""


# --- timecode ----------------------------------------------------------------------------------

def _rate(fps) -> tuple[int, float]:
    """(frames per second counted in labels, real frames per second); NTSC rates made exact."""
    f = float(fps)
    if not math.isfinite(f) or not 0 < f <= 1000:
        raise LiveLinkError(f"frame rate must be a number over 0 and at most 1000, got {fps!r}")
    nominal = round(f)
    if abs(f - nominal) > 1e-3 and abs(f - nominal * 1000 / 1001) < 5e-3:
        return nominal, nominal * 1000 / 1001
    return (nominal, float(nominal)) if abs(f - nominal) <= 1e-3 else (math.ceil(f), f)


def _dropped(nominal: int, real: float) -> int:
    if nominal not in (30, 60) or real == nominal:
        raise LiveLinkError(f"drop-frame timecode (with ';') exists only at 29.97 and 59.94 fps, not {real:g}")
    return nominal // 15  # 2 frame numbers a minute at 29.97, 4 at 59.94


def parse_timecode(text, fps) -> float:
    """``HH:MM:SS:FF(.sub)``, drop-frame ``HH:MM:SS;FF(.sub)`` or plain seconds -> real seconds."""
    s = str(text).strip()
    if _SECONDS.fullmatch(s):
        return float(s)
    m = _TC.fullmatch(s)
    if m is None:
        raise LiveLinkError(f"timecode {text!r} is not HH:MM:SS:FF(.sub), HH:MM:SS;FF (drop-frame) or seconds")
    nominal, real = _rate(fps)
    h, mi, se, ff = (int(m.group(i)) for i in (1, 2, 3, 5))
    if mi > 59 or se > 59 or ff >= nominal:
        raise LiveLinkError(f"timecode {text!r} is out of range at {real:g} fps "
                            f"(minutes and seconds below 60, frames below {nominal})")
    count = (h * 3600 + mi * 60 + se) * nominal + ff
    if m.group(4) == ";":
        d = _dropped(nominal, real)
        if se == 0 and ff < d and mi % 10:
            raise LiveLinkError(f"drop-frame timecode {text!r} does not exist: frames 0-{d - 1} are "
                                "skipped at each minute except every tenth")
        minutes = h * 60 + mi
        count -= d * (minutes - minutes // 10)
    return (count + (float("0." + m.group(6)) if m.group(6) else 0.0)) / real


def format_timecode(seconds, fps, drop_frame: bool = False) -> str:
    """Real seconds -> ``HH:MM:SS:FF.sss`` (``;`` for drop-frame), sub-frame in thousandths."""
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        raise LiveLinkError(f"cannot write {seconds!r} seconds as a timecode")
    nominal, real = _rate(fps)
    count, sub = divmod(int(round(s * real * 1000)), 1000)
    sep = ":"
    if drop_frame:
        d, sep = _dropped(nominal, real), ";"
        tens, rest = divmod(count, nominal * 600 - 9 * d)
        count += 9 * d * tens + (d * ((rest - d) // (nominal * 60 - d)) if rest >= d else 0)
    ff, total = count % nominal, count // nominal
    return f"{total // 3600 % 24:02d}:{total // 60 % 60:02d}:{total % 60:02d}{sep}{ff:02d}.{sub:03d}"


def _infer_fps(codes: list[str]) -> float:
    ms = [_TC.fullmatch(c.strip()) for c in codes]
    if any(m is None for m in ms):
        return DEFAULT_FPS  # plain seconds (or a bad timecode, reported when it is parsed)
    top = max(int(m.group(5)) for m in ms)
    if any(m.group(4) == ";" for m in ms):
        return 30000 / 1001 if top < 30 else 60000 / 1001
    rates = [r for r in _STANDARD_RATES if r > top]
    if not rates:
        return float(top + 1)
    crossed = len({m.group(1, 2, 3) for m in ms}) > 1
    return float(rates[0]) if crossed or DEFAULT_FPS not in rates else DEFAULT_FPS


# --- angles ------------------------------------------------------------------------------------

# --- reading -----------------------------------------------------------------------------------

_CHUNK_ROWS = 32768  # rows parsed into arrays at a time: reading costs memory per frame, not per file


def _rows(path: Path):
    """(header, iterator of (line number, fields) for the frames): read as a stream, so a file
    of any length costs only the arrays it becomes."""
    try:
        f = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise LiveLinkError(f"{path} does not exist") from None
    except OSError as exc:
        raise LiveLinkError(f"{path.name} cannot be read ({exc})") from None

    def lines():
        with f:
            try:
                for i, r in enumerate(csv.reader(f), 1):
                    if any(c.strip() for c in r):
                        yield i, r
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise LiveLinkError(f"{path.name} cannot be read as a text CSV ({exc})") from None

    it = lines()
    first = next(it, None)
    if first is None:
        raise LiveLinkError(f"{path.name} is empty: export the take again from Live Link Face "
                            "(a header line, then one line per frame)")
    return [c.strip() for c in first[1]], it


def _frames(path: Path, header: list[str], rows, col: dict[str, int]):
    """Yields (timecodes, [(line, fields)...]) a chunk at a time, checked for length."""
    chunk = []
    for line, fields in rows:
        if len(fields) < len(header):
            raise LiveLinkError(f"{path.name} line {line} has {len(fields)} fields but the header has "
                                f"{len(header)}: the file is cut short or damaged")
        chunk.append((line, fields))
        if len(chunk) == _CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    where = {name.lower(): i for i, name in reversed(list(enumerate(header)))}
    missing = [c for c in ("Timecode",) + BLENDSHAPE_COLUMNS if c.lower() not in where]
    for group in (HEAD_COLUMNS, EYE_COLUMNS):  # optional, but all or none
        absent = [c for c in group if c.lower() not in where]
        missing += absent if len(absent) < len(group) else []
    if missing:
        names = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise LiveLinkError(f"{path.name} lacks column(s) {names}: a Live Link Face CSV starts with "
                            f"{','.join(HEADER[:4])},... ({len(HEADER)} columns)")
    return {c: where[c.lower()] for c in HEADER if c.lower() in where}


def _numbers(path: Path, rows, col: dict[str, int], names) -> np.ndarray:
    idx = [col[n] for n in names]
    try:
        out = np.array([[f[i] for i in idx] for _, f in rows], dtype=np.float64)  # numpy parses the text
        if np.isfinite(out).all():
            return out
    except ValueError:
        pass
    for line, fields in rows:  # find the culprit for the message
        for name, i in zip(names, idx):
            try:
                ok = math.isfinite(float(fields[i]))
            except ValueError:
                ok = False
            if not ok:
                raise LiveLinkError(f"{path.name} line {line}, column {name}: {fields[i].strip()!r} "
                                    "is not a number; correct or delete that line")
    raise AssertionError("unreachable")


def read_csv(path, fps=None, progress=None) -> Take:
    """A Live Link Face CSV -> Take (one face, id 0; conventions in the module docstring).
    ``progress(fraction)`` is called after each chunk of rows (an estimate from the file's size);
    an exception it raises ends the reading (how a user cancels an import)."""
    path = Path(path)
    header, rows = _rows(path)
    col = _columns(path, header)
    has_head, has_eyes = "HeadYaw" in col, "LeftEyeYaw" in col
    codes, lines, scores, head, eyes = [], [], [], [], []
    size, per_row = max(1, path.stat().st_size), None
    for chunk in _frames(path, header, rows, col):
        if progress is not None:
            if per_row is None:  # bytes per row, from the first rows
                sample = chunk[:256]
                per_row = sum(len(",".join(f)) + 1 for _, f in sample) / len(sample)
            progress(min(0.99, (len(codes) + len(chunk)) * per_row / size))
        codes += [f[col["Timecode"]].strip() for _, f in chunk]
        lines.append(np.array([line for line, _ in chunk], np.int64))
        scores.append(_numbers(path, chunk, col, BLENDSHAPE_COLUMNS).astype(np.float32))
        if has_head:
            head.append(_numbers(path, chunk, col, HEAD_COLUMNS))
        if has_eyes:
            eyes.append(_numbers(path, chunk, col, EYE_COLUMNS).astype(np.float32))
    if not codes:
        raise LiveLinkError(f"{path.name} has a header but no frames: the recording is empty; "
                            "record and export the take again")
    lines = np.concatenate(lines)
    fps = _infer_fps(codes) if fps is None else _rate(fps)[1]
    n = len(codes)
    times = np.empty(n)
    for i, code in enumerate(codes):
        try:
            times[i] = parse_timecode(code, fps)
        except LiveLinkError as exc:
            raise LiveLinkError(f"{path.name} line {lines[i]}: {exc}") from None
    times += 86400.0 * np.cumsum(np.r_[0, np.diff(times) < -43200.0])  # past midnight
    t = times - times[0]
    back = np.flatnonzero(np.diff(t) < -1.0 / fps)
    if back.size:
        a, b = lines[back[0]], lines[back[0] + 1]
        raise LiveLinkError(f"{path.name}: the timecode goes back from line {a} ({codes[back[0]]}) to line {b} "
                            f"({codes[back[0] + 1]}); is it two takes in one file? Split it")
    t = _nudged(t)
    take = Take(fps, 0, 0, source={"kind": "livelink_csv", "name": str(path), "width": 0, "height": 0,
                                   "fps": fps, "frame_count": n, "rotation": 0, "live": False},
                meta={"timecode_start": codes[0], "timecode_fps": fps, "drop_frame": ";" in codes[0],
                      "head_distance_cm": HEAD_DISTANCE_CM})
    del codes, lines
    take.t, take.frame_index = t, np.arange(n, dtype=np.int64)
    take.face_ids = np.zeros((n, 1), np.int32)
    # no landmarks, mesh or MediaPipe pose: those stay absent and cost nothing
    take.arrays = {"blendshapes": np.empty((n, 1, len(ARKIT_NAMES)), np.float32)}
    take.arrays["blendshapes"][:, 0, _ARKIT_OF] = np.concatenate(scores)
    del scores
    mats = np.zeros((n, 1, 4, 4))
    mats[:, 0, :3, :3] = livelink_rotation(*np.concatenate(head).T) if has_head else np.eye(3)
    del head
    mats[:, 0, :3, 3], mats[:, 0, 3, 3] = (0.0, 0.0, -HEAD_DISTANCE_CM), 1.0
    take.arrays["head_matrix"] = mats
    if has_eyes:
        take.arrays["eye_angles"] = -np.concatenate(eyes).reshape(n, 1, 2, 3)
    try:
        return validate(take, path.name)
    except TakeError as exc:
        raise LiveLinkError(str(exc)) from None


def _nudged(t: np.ndarray) -> np.ndarray:
    """Times that do not advance moved 1 microsecond past the one before (vectorised: a running
    maximum of t - i*eps, plus i*eps back)."""
    eps = 1e-6 * np.arange(len(t))
    return np.maximum.accumulate(t - eps) + eps


# --- writing -----------------------------------------------------------------------------------

def write_csv(take: Take, path, face_id=None, fps=None, drop_frame: bool = False,
              start_timecode=None) -> Path:
    """Any take -> a Live Link Face CSV; the first written row gets ``start_timecode`` (default:
    a Live Link take's own start, else 00:00:00:00) and later rows keep their spacing in t."""
    path = Path(path)
    track = take.face_track(face_id)
    rows = np.flatnonzero(track["present"])
    if rows.size == 0:
        which = "a face" if face_id is None else f"face {face_id}"
        raise LiveLinkError(f"the take has no frames with {which}: nothing to write")
    own = take.meta if take.source.get("kind") == "livelink_csv" else {}
    fps = fps if fps is not None else (own.get("timecode_fps") or take.fps)
    start = parse_timecode(start_timecode if start_timecode is not None
                           else own.get("timecode_start", "00:00:00:00"), fps)
    seconds = start + (take.t[rows] - take.t[rows[0]])
    scores = np.nan_to_num(track["blendshapes"][rows].astype(np.float64))
    rot = np.array([rotation_part(m) if np.isfinite(m).all() else np.eye(3) for m in track["head_matrix"][rows]])
    head = livelink_angles(rot)
    eyes = own.get("eye_angles")  # takes read before eye angles became an array kept them here
    if take.has("eye_angles") and np.isfinite(track["eye_angles"][rows]).all():
        eyes = -track["eye_angles"][rows].astype(np.float64).reshape(-1, 6)
    elif eyes is not None and len(eyes) == len(take.t):
        eyes = -np.asarray(eyes, np.float64)[rows].reshape(-1, 6)
    else:
        er = eye_rotations(scores)  # [eye][yaw, pitch], the opposite signs of the app's
        eyes = np.concatenate([-er, np.zeros((len(rows), 2, 1))], axis=2).reshape(-1, 6)
    values = np.nan_to_num(np.concatenate([scores[:, _ARKIT_OF], head, eyes], axis=1)) + 0.0  # no -0
    lines = [",".join(HEADER)]
    for s, v in zip(seconds, values):
        lines.append(f"{format_timecode(s, fps, drop_frame)},{BLENDSHAPE_COUNT},"
                     + ",".join(f"{x:.10f}" for x in v))
    return write_text_atomic(path, "\n".join(lines) + "\n")


def write_csv_per_face(take: Take, path, **kwargs) -> list[Path]:
    """A CSV per performer, as the app records one per phone: a take with one face writes
    ``path``; with several, ``<stem>_<performer>.csv`` each (the performer's name from the take,
    else ``face<id>``). ``kwargs`` as :func:`write_csv`."""
    path = Path(path)
    ids = sorted(take.face_counts())
    if len(ids) <= 1:
        return [write_csv(take, path, **kwargs)]
    names = take.meta.get("performers") or {}
    out, used = [], set()
    for fid in ids:
        label = safe_stem(names.get(str(fid), ""), f"face{fid}")
        if label in used:
            label = f"{label}_{fid}"
        used.add(label)
        out.append(write_csv(take, path.with_name(f"{path.stem}_{label}{path.suffix}"), face_id=fid, **kwargs))
    return out
