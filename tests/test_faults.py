"""The fault suite: bad inputs made here, on the fly, from the real sample take and clip, and every
command (and the operators that read files) run on them. Each must end with one ``error:`` line
and a non-zero exit (2 for bad input, 1 for a failed write, 130 for Ctrl+C), print no traceback
(not even one from a background thread), write nothing half-done (no ``.part`` files), and where
frames were tracked, keep them.

(a) takes as read: damaged .npz and .json takes over every command that reads takes;
(b) outputs that cannot be written, checked before the long work; writes failing afterwards;
(c) videos, image folders and cameras that cannot be read; (d) Ctrl+C (SIGINT) in a child
process (test_journal.py covers SIGTERM and SIGKILL, test_tracking.py Ctrl+C twice during
``track --simulate-live``); (e) numeric options out of range; (f) takes without a face, a bad
model; (g) broken Live Link Face CSVs; and the Blender operators that read files.

Commands run in this process through ``cli.main`` where they can (fast); a child process only
for signals, memory and file-size limits and thread tracebacks. Where a bad input might be
taken for a good one, the long work (tracking, baking) is replaced by a tripwire, so that a
case fails at once instead of tracking or baking first."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from blender_facemesh.cli import main
from blender_facemesh.core.take import Take, is_absent

REPO = Path(__file__).resolve().parents[1]
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- running commands and judging what they printed ------------------------------------------------

@dataclass
class Ran:
    args: list
    code: int
    out: str
    err: str

    def tail(self, n: int = 1200) -> str:
        return f"{self.args} -> exit {self.code}\nstdout: {self.out[-n:]!r}\nstderr: {self.err[-n:]!r}"


class LongWork(Exception):
    """The tripwire: long work (tracking, baking) started where the command should have stopped."""


def run(capsys, *args) -> Ran:
    """``python -m blender_facemesh ARGS`` in this process; an exception escaping ``main`` is a
    failure naming where it came from (it would be a traceback on the command line)."""
    args = [str(a) for a in args]
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    except LongWork as exc:
        pytest.fail(f"{args}: {exc}")
    except BaseException as exc:  # noqa: BLE001 - that is the point
        out, err = capsys.readouterr()
        where = traceback.extract_tb(exc.__traceback__)[-1]
        pytest.fail(f"{args}: a traceback instead of one line: {type(exc).__name__}: {exc} "
                    f"(raised at {Path(where.filename).name}:{where.lineno} in {where.name})\nstderr: {err[-800:]}")
    out, err = capsys.readouterr()
    return Ran(args, code, out, err)


def env_for_child(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GLOG_minloglevel": "2"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_child(*args, timeout=180, preexec_fn=None, **env) -> Ran:
    args = [str(a) for a in args]
    p = subprocess.run([sys.executable, "-m", "blender_facemesh", *args], capture_output=True, text=True,
                       timeout=timeout, env=env_for_child(**env), cwd=REPO, preexec_fn=preexec_fn)
    return Ran(args, p.returncode, p.stdout, p.stderr)


# lines that are not the error: notes, what track says it kept, native libraries' logging, progress
_NOISE = re.compile(r"^(note: |partial take of |interrupted: saving|saving the take|WARNING: Logging before "
                    r"InitGoogle|WARNING: All log messages before absl|INFO: Created TensorFlow Lite|"
                    r"[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]|\[ WARN:\d+@[\d.]+\] global |libpng (?:error|warning): |"
                    r"\[[\w,]+ @ 0x[0-9a-f]+\] |.*\[[# ]*\] \d+/\d+ )")
_ERROR = re.compile(r"^(?:python -m blender_facemesh(?: [\w-]+)?: )?error: ")


def error_line(r: Ran, code: int | tuple | None = None, mentions=()) -> str:
    """Assert ``r`` failed the way the README says: non-zero exit (``code``), no traceback, and
    one ``error:`` line on stderr (argparse's usage block before it is allowed); returns it."""
    text = r.out + r.err
    assert "Traceback" not in text and "Exception in thread" not in text, "traceback printed:\n" + r.tail(3000)
    assert r.code != 0, "exit 0:\n" + r.tail()
    lines, usage = [], False
    for ln in r.err.replace("\r", "\n").splitlines():
        if not ln.strip() or _NOISE.match(ln):
            continue
        if ln.startswith("usage: "):
            usage = True
            continue
        if usage and ln.startswith(" "):
            continue
        usage = False
        lines.append(ln)
    errors = [ln for ln in lines if _ERROR.match(ln)]
    assert len(errors) == 1 and lines == errors, f"not one error line: {lines}\n" + r.tail()
    if code is not None:
        assert r.code in (code if isinstance(code, tuple) else (code,)), f"exit {r.code}, wanted {code}:\n" + r.tail()
    for m in mentions:
        assert m in errors[0], f"the error does not name {m!r}: {errors[0]}"
    return errors[0]


def leftovers(*folders) -> list[Path]:
    """Half-written files (``.part``) and journals left behind."""
    found = []
    for d in folders:
        d = Path(d)
        if d.is_dir():
            found += [p for p in d.rglob("*") if ".part" in p.name or p.name.endswith(".recording")]
    return found


def strict_json(text: str):
    """JSON as the standard has it: NaN and Infinity are not JSON."""
    def constant(c):
        raise AssertionError(f"{c} printed in JSON output")

    return json.loads(text, parse_constant=constant)


# --- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch, face_model):
    """Every test has a user cache of its own (journals, fallback copies of takes), the model found
    where it is; the long work is not tripped unless a test asks for the tripwire."""
    d = tmp_path / "cache"
    monkeypatch.setenv("BLENDER_FACEMESH_CACHE", str(d))
    monkeypatch.setenv("BLENDER_FACEMESH_MODEL", str(face_model.path))
    return d


@pytest.fixture
def tripwire(monkeypatch):
    """Tracking, baking and the face-shape solve raise LongWork: a command that gets that far has
    accepted its input (and checked its output)."""
    from blender_facemesh.cli import blend as cli_blend
    from blender_facemesh.cli import track as cli_track
    from blender_facemesh.core.tracking import worker

    def tracking(self, *a, **k):
        raise LongWork("tracking started: the bad input or option was accepted, or the output was not checked first")

    def baking(*a, **k):
        raise LongWork("baking started: the bad input or option was accepted, or the output was not checked first")

    def solving(*a, **k):
        raise LongWork("the face-shape solve started: the bad input was accepted, or the output was not checked first")

    from blender_facemesh.core import faceshape

    monkeypatch.setattr(worker.CaptureWorker, "start", tracking)
    monkeypatch.setattr(faceshape, "from_take", solving)
    monkeypatch.setattr(cli_blend, "write_blend_file", baking)
    monkeypatch.setattr(cli_track, "write_blend_file", baking)


@pytest.fixture(scope="module")
def good(sample_take):
    return sample_take[0]


@pytest.fixture(scope="module")
def good_npz(sample_take):
    return sample_take[1]


@pytest.fixture(scope="module")
def media(sample_clip, tmp_path_factory):
    """Short and broken videos and image folders, made from the sample clip's first frames."""
    d = tmp_path_factory.mktemp("media")
    cap = cv2.VideoCapture(str(sample_clip))
    frames = []
    while len(frames) < 6:
        ok, f = cap.read()
        assert ok
        frames.append(f)
    cap.release()
    h, w = frames[0].shape[:2]
    short = d / "short.mp4"
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    m = {"short": short}
    for name, bad in (("images", None), ("corrupt_images", 2)):
        folder = d / name
        folder.mkdir()
        for i, f in enumerate(frames[:5]):
            p = folder / f"frame_{i:03d}.png"
            ok, png = cv2.imencode(".png", f)
            data = png.tobytes()
            p.write_bytes(data[: len(data) // 2] if i == bad else data)  # the bad one: a copy cut off halfway
    m["images"], m["corrupt_images"] = d / "images", d / "corrupt_images"
    (d / "empty.mp4").write_bytes(b"")
    data = short.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "garbage.mp4").write_bytes(np.random.default_rng(7).bytes(50_000))
    (d / "no_images").mkdir()
    (d / "no_images" / "readme.txt").write_text("no frames here")
    m.update(empty=d / "empty.mp4", truncated=d / "truncated.mp4", garbage=d / "garbage.mp4",
             no_images=d / "no_images", missing=d / "missing.mp4")
    return m


def save_npz(take: Take, path: Path, header: dict | None = None, drop=(), **arrays) -> Path:
    """``take`` as .npz with header fields and arrays replaced (``drop``: members left out)."""
    h = take.header()
    h.update(header or {})
    members = dict(header=np.array(json.dumps(h)), t=take.t, frame_index=take.frame_index, face_ids=take.face_ids,
                   **{k: a for k, a in take.arrays.items() if not is_absent(a)})
    members.update(arrays)
    for k in drop:
        members.pop(k, None)
    with open(path, "wb") as f:
        np.savez(f, **members)
    return path


def save_npz_huge(take: Take, path: Path, shape) -> Path:
    """A take whose head_matrix member declares ``shape`` but holds one matrix of data."""
    save_npz(take, path, drop=("head_matrix",))
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": tuple(shape)})
    buf.write(np.eye(4).tobytes())
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("head_matrix.npy", buf.getvalue())
    return path


# --- (a) takes trusted as read --------------------------------------------------------------------------

def _npz_case(case: str, take: Take, path: Path) -> Path:
    n, k = take.face_ids.shape
    t = take.t
    if case == "not a zip":
        path.write_bytes(np.random.default_rng(3).bytes(4000))
        return path
    if case == "empty file":
        path.write_bytes(b"")
        return path
    if case == "huge declared shape":
        return save_npz_huge(take, path, (2 ** 40, k, 4, 4))
    if case == "huge declared shape (fits the address space)":
        return save_npz_huge(take, path, (10 ** 9, k, 4, 4))
    header = {"fps 0": {"fps": 0}, "fps negative": {"fps": -30}, "fps NaN": {"fps": float("nan")},
              "fps inf": {"fps": float("inf")}, "fps text": {"fps": "thirty"}, "width inf": {"width": float("inf")},
              "height NaN": {"height": float("nan")}, "width negative": {"width": -512},
              "version inf": {"version": float("inf")}, "not our format": {"format": "something.else"}}.get(case)
    if case == "header is a list":
        return _npz_header_list(take, path)
    if header is not None:
        return save_npz(take, path, header=header)
    back = t.copy()
    back[40:] -= 5.0
    arrays = {
        "head matrix 3x3": dict(head_matrix=take.head_matrix[:, :, :3, :3]),
        "scores 10 columns": dict(blendshapes=take.blendshapes[:, :, :10]),
        "frames missing": dict(head_matrix=take.head_matrix[:-3]),
        "ids 1-D": dict(face_ids=take.face_ids[:, 0]),
        "ids float": dict(face_ids=take.face_ids.astype(np.float64) + 0.5),
        "id too large": dict(face_ids=np.full((n, k), 2 ** 40, np.int64)),
        "id below -1": dict(face_ids=np.full((n, k), -7, np.int32)),
        "times 2-D": dict(t=t[:, None]),
        "times backwards": dict(t=back),
        "times NaN": dict(t=np.where(np.arange(n) == 5, np.nan, t)),
        "times text": dict(t=np.array(["0.0"] * n)),
        "frame numbers 2-D": dict(frame_index=take.frame_index[:, None]),
    }.get(case)
    if arrays is not None:
        return save_npz(take, path, **arrays)
    if case == "pickled objects":
        h = take.header()
        with open(path, "wb") as f:
            np.savez(f, header=np.array(json.dumps(h)), t=take.t, frame_index=take.frame_index,
                     face_ids=take.face_ids, head_matrix=np.array([object()] * n, dtype=object),
                     blendshapes=take.blendshapes)
        return path
    if case == "no header":
        return save_npz(take, path, drop=("header",))
    if case == "no head matrix":
        return save_npz(take, path, drop=("head_matrix",))
    raise KeyError(case)


def _npz_header_list(take: Take, path: Path) -> Path:
    with open(path, "wb") as f:
        np.savez(f, header=np.array(json.dumps([1, 2, 3])), t=take.t, frame_index=take.frame_index,
                 face_ids=take.face_ids, head_matrix=take.head_matrix, blendshapes=take.blendshapes)
    return path


NPZ_CASES = ["not a zip", "empty file", "huge declared shape", "huge declared shape (fits the address space)",
             "fps 0", "fps negative", "fps NaN", "fps inf", "fps text", "width inf", "height NaN", "width negative",
             "version inf", "not our format", "header is a list", "head matrix 3x3", "scores 10 columns",
             "frames missing", "ids 1-D", "ids float", "id too large", "id below -1", "times 2-D",
             "times backwards", "times NaN", "times text", "frame numbers 2-D", "pickled objects", "no header",
             "no head matrix"]


def _json_case(case: str, take: Take, path: Path) -> Path:
    deep = "[" * 100_000 + "]" * 100_000
    raw = {"deeply nested": deep, "not JSON": '{"format": "blender_facemesh.take", "fps": 30,',
           "empty file": "", "a list": "[]", "a number": "42"}
    if case in raw:
        path.write_text(raw[case])
        return path
    if case == "binary garbage":
        path.write_bytes(np.random.default_rng(5).bytes(3000))
        return path
    d = take.to_json()
    frames = d["frames"]
    f0 = frames[3]["faces"][0]
    text_subs = {}
    if case == "deeply nested inside":
        d["meta"] = "@DEEP@"
        text_subs['"@DEEP@"'] = deep
    elif case in ("fps 0", "fps negative", "fps NaN", "fps inf", "fps 1e400", "fps text", "width inf",
                  "height 1e400", "width negative", "width text", "version 1e400"):
        key, value = {"fps 0": ("fps", 0), "fps negative": ("fps", -30), "fps NaN": ("fps", float("nan")),
                      "fps inf": ("fps", float("inf")), "fps 1e400": ("fps", "@BIG@"), "fps text": ("fps", "30fps"),
                      "width inf": ("width", float("inf")), "height 1e400": ("height", "@BIG@"),
                      "width negative": ("width", -1), "width text": ("width", "wide"),
                      "version 1e400": ("version", "@BIG@")}[case]
        d[key] = value
    elif case == "times 2-D":
        for f in frames:
            f["t"] = [f["t"]]
    elif case == "times NaN":
        frames[5]["t"] = float("nan")
    elif case == "times null":
        frames[5]["t"] = None
    elif case == "times text":
        frames[5]["t"] = "soon"
    elif case == "times backwards":
        for f in frames[40:]:
            f["t"] -= 5.0
    elif case == "id float":
        f0["id"] = 1.5
    elif case == "id too large":
        f0["id"] = 10 ** 30
    elif case == "id 1e400":
        f0["id"] = "@BIG@"
    elif case == "id text":
        f0["id"] = "first"
    elif case == "id below -1":
        f0["id"] = -7
    elif case == "ids as a list":
        f0["id"] = [0, 1]
    elif case == "head matrix 15 numbers":
        f0["head_matrix"] = f0["head_matrix"][:15]
    elif case == "head matrix text":
        f0["head_matrix"] = ["x"] * 16
    elif case == "head matrix not a list":
        f0["head_matrix"] = 1.0
    elif case == "scores not an object":
        f0["blendshapes"] = [0.1] * 52
    elif case == "score text":
        f0["blendshapes"]["jawOpen"] = "wide"
    elif case == "frames not a list":
        d["frames"] = 42
    elif case == "a frame is not an object":
        frames[2] = [0.0]
    elif case == "faces missing":
        del frames[2]["faces"]
    elif case == "no frames key":
        del d["frames"]
    elif case == "not our format":
        d["format"] = "other"
    else:
        raise KeyError(case)
    text = json.dumps(d)
    text = text.replace('"@BIG@"', "1e400")
    for a, b in text_subs.items():
        text = text.replace(a, b)
    path.write_text(text)
    return path


JSON_CASES = ["deeply nested", "deeply nested inside", "not JSON", "empty file", "a list", "a number",
              "binary garbage", "fps 0", "fps negative", "fps NaN", "fps inf", "fps 1e400", "fps text",
              "width inf", "height 1e400", "width negative", "width text", "version 1e400", "times 2-D",
              "times NaN", "times null", "times text", "times backwards", "id float", "id too large", "id 1e400",
              "id text", "id below -1", "ids as a list", "head matrix 15 numbers", "head matrix text",
              "head matrix not a list", "scores not an object", "score text", "frames not a list",
              "a frame is not an object", "faces missing", "no frames key", "not our format"]

# the commands that read a take, given the take, an output folder and a short video of it
READERS = {
    "report": lambda take, out, clip: ["report", take],
    "report --json": lambda take, out, clip: ["report", take, "--json"],
    "convert": lambda take, out, clip: ["convert", take, "-o", out / "out.csv"],
    "blend": lambda take, out, clip: ["blend", take, "-o", out / "out.blend", "--quiet"],
    "calibrate": lambda take, out, clip: ["calibrate", take, "-o", out / "out.json", "--quiet"],
    "overlay --take": lambda take, out, clip: ["overlay", clip, "-o", out / "out.mp4", "--take", take, "--quiet"],
}


def _damaged(fmt, case, good, folder):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"damaged.{fmt}"
    return (_npz_case if fmt == "npz" else _json_case)(case, good, path)


@pytest.mark.parametrize("command", list(READERS))
@pytest.mark.parametrize("fmt, case", [("npz", c) for c in NPZ_CASES] + [("json", c) for c in JSON_CASES])
@pytest.mark.usefixtures("tripwire")
def test_a_damaged_take_is_one_line_naming_it(good, media, tmp_path, capsys, fmt, case, command):
    path = _damaged(fmt, case, good, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    r = run(capsys, *READERS[command](path, out, media["short"]))
    error_line(r, code=2, mentions=[path.name])
    assert not list(out.iterdir()) and not leftovers(tmp_path / "in", out), list(out.iterdir())
    assert "NaN" not in r.out and "Infinity" not in r.out


def test_a_json_take_declaring_a_million_faces_is_refused_within_a_memory_limit(good, tmp_path):
    """One frame listing 10**6 (empty) faces: the arrays for them would take 30 GB. In a child
    process limited to 3 GB of address space, so that a failure is an error, not a swapping machine."""
    import resource

    d = good.to_json()
    d["frames"][0]["faces"] = [{}] * 1_000_000
    path = tmp_path / "crowd.json"
    path.write_text(json.dumps(d))
    limit = 3 * 2 ** 30

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    for cmd in (["report", path], ["convert", path, "-o", tmp_path / "out.npz"]):
        r = run_child(*cmd, preexec_fn=limited, timeout=120)
        error_line(r, code=2, mentions=[path.name])
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("fmt", ["npz", "json"])
@pytest.mark.parametrize("glitch", ["NaN", "1e400", "1e300"])
def test_a_few_frames_with_a_broken_head_matrix_are_no_face(good, media, tmp_path, capsys, monkeypatch, fmt, glitch):
    """NaN, an overflowing 1e400 (inf once read) or 1e300 in the head matrix of frames 10-12:
    those frames load as "no face" (said in a note), every command goes on."""
    bad = [10, 11, 12]
    if fmt == "npz":
        mats = good.head_matrix.copy()
        mats[bad, 0, 1, 2] = float(glitch)
        path = save_npz(good, tmp_path / "glitch.npz", head_matrix=mats)
    else:
        d = good.to_json()
        for i in bad:
            d["frames"][i]["faces"][0]["head_matrix"][6] = "@X@"
        path = tmp_path / "glitch.json"
        path.write_text(json.dumps(d).replace('"@X@"', {"NaN": "NaN", "1e400": "1e400", "1e300": "1e300"}[glitch]))
    take = Take.load(path)
    assert list(np.flatnonzero(~take.face_present)) == bad and take.warnings
    for cmd in (["report", path, "--json"], ["report", path], ["convert", path, "-o", tmp_path / "o.csv"],
                ["convert", path, "-o", tmp_path / "o.json"], ["convert", path, "-o", tmp_path / "o.npz"],
                ["overlay", media["short"], "-o", tmp_path / "o.mp4", "--take", path, "--quiet"]):
        r = run(capsys, *cmd)
        assert r.code == 0 and "Traceback" not in r.err, r.tail()
        if "--json" in cmd:
            rep = strict_json(r.out)
            assert rep
    assert (~Take.load(tmp_path / "o.npz").face_present).sum() == 3
    # blend takes it too (the bake itself is test_blender's): the take handed on has those frames empty
    got = {}
    from blender_facemesh.cli import blend as cli_blend

    def write_blend_file(take, out, *a, **k):
        got["take"] = take
        return f"wrote {out}"

    monkeypatch.setattr(cli_blend, "write_blend_file", write_blend_file)
    r = run(capsys, "blend", path, "-o", tmp_path / "o.blend")
    assert r.code == 0, r.tail()
    assert list(np.flatnonzero(~got["take"].face_present)) == bad


def _no_face(good, tmp_path, fmt):
    n, k = good.face_ids.shape
    arrays = {name: np.full_like(a, np.nan) for name, a in good.arrays.items() if not is_absent(a)}
    path = save_npz(good, tmp_path / "noface.npz", face_ids=np.full((n, k), -1, np.int32), **arrays)
    if fmt == "json":
        path = Take.load(path).save(tmp_path / "noface.json")
    return path


def _one_frame(good, tmp_path, fmt):
    take = Take.load(save_npz(good, tmp_path / "tmp1.npz"))
    one = save_npz(take, tmp_path / "one.npz", t=take.t[:1], frame_index=take.frame_index[:1],
                   face_ids=take.face_ids[:1], **{k: a[:1] for k, a in take.arrays.items() if not is_absent(a)})
    return one if fmt == "npz" else Take.load(one).save(tmp_path / "one.json")


def _no_frames(good, tmp_path, fmt):
    k = good.face_ids.shape[1]
    arrays = {name: a[:0] for name, a in good.arrays.items() if not is_absent(a)}
    path = save_npz(good, tmp_path / "empty.npz", t=good.t[:0], frame_index=good.frame_index[:0],
                    face_ids=np.zeros((0, k), np.int32), **arrays)
    return path if fmt == "npz" else Take.load(path).save(tmp_path / "empty.json")


TAKES = {"tracked": lambda good, d, fmt: good.save(d / f"good.{fmt}"),
         "no face in any frame": _no_face, "one frame": _one_frame, "no frames": _no_frames}


@pytest.mark.parametrize("fmt", ["npz", "json"])
@pytest.mark.parametrize("which", list(TAKES))
def test_report_json_never_prints_nan_or_infinity(good, tmp_path, capsys, which, fmt):
    path = TAKES[which](good, tmp_path, fmt)
    r = run(capsys, "report", path, "--json")
    if r.code == 0:
        strict_json(r.out)
        assert "Traceback" not in r.err
    else:  # a take with nothing to report may say so instead, in one line
        error_line(r, code=2, mentions=[path.name])


def test_report_json_of_a_live_link_take_is_strict_json(good, tmp_path, capsys):
    from blender_facemesh.core.formats.livelink import write_csv

    csv = write_csv(good, tmp_path / "ll.csv")
    r = run(capsys, "report", csv, "--json")
    assert r.code == 0, r.tail()
    strict_json(r.out)


# --- (b) output places that cannot be written ---------------------------------------------------------

@pytest.fixture
def readonly_dir(tmp_path):
    """A folder this process cannot write into: chmod for users; for root (whom chmod does not
    stop) an immutable folder (chattr +i) where the file system has it, else a place in /sys."""
    d = tmp_path / "readonly"
    d.mkdir()
    if not ROOT:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0:
        try:
            yield d
        finally:
            subprocess.run(["chattr", "-i", str(d)], capture_output=True)
        return
    yield Path("/sys/blender_facemesh_readonly")  # sysfs: not even root makes files there


def _place(kind, tmp_path, readonly, name):
    (tmp_path / "a_file").write_text("not a folder")
    if kind == "read-only folder":
        return readonly / name
    if kind == "parent is a file":
        return tmp_path / "a_file" / name
    if kind == "output is a folder":
        (tmp_path / name).mkdir()
        return tmp_path / name
    if kind == "in /proc":
        return Path("/proc") / f"facemesh-{name}"
    if kind == "under /proc/self":
        return Path("/proc/self/facemesh") / name
    if kind == "output is a file":  # batch writes into a folder
        return tmp_path / "a_file"
    raise KeyError(kind)


WRITERS = {  # command: (output name, args given the input media, the good take and the output)
    "track": ("t.npz", lambda m, take, out: ["track", m["short"], "-o", out, "--quiet"]),
    "track json": ("t.json", lambda m, take, out: ["track", m["images"], "-o", out, "--quiet"]),
    "blend": ("b.blend", lambda m, take, out: ["blend", m["short"], "-o", out, "--quiet"]),
    "blend a take": ("b.blend", lambda m, take, out: ["blend", take, "-o", out, "--quiet"]),
    "batch": ("batch_out", lambda m, take, out: ["batch", m["short"], "-o", out, "--quiet"]),
    "overlay": ("o.mp4", lambda m, take, out: ["overlay", m["short"], "-o", out, "--quiet"]),
    "overlay --take": ("o.mp4", lambda m, take, out: ["overlay", m["short"], "-o", out, "--take", take, "--quiet"]),
    "calibrate": ("p.json", lambda m, take, out: ["calibrate", m["short"], "-o", out, "--quiet"]),
    "calibrate a take": ("p.json", lambda m, take, out: ["calibrate", take, "-o", out, "--quiet"]),
    "convert to json": ("c.json", lambda m, take, out: ["convert", take, "-o", out]),
    "convert to npz": ("c.npz", lambda m, take, out: ["convert", take, "-o", out]),
    "convert to csv": ("c.csv", lambda m, take, out: ["convert", take, "-o", out]),
    "report --plot": ("r.png", lambda m, take, out: ["report", take, "--plot", out]),
}
PLACES = ["read-only folder", "parent is a file", "output is a folder", "in /proc", "under /proc/self"]


@pytest.mark.parametrize("command, place", [  # batch writes into a folder, the others into a file
    (c, p) for c in WRITERS for p in PLACES if not (c == "batch" and p == "output is a folder")]
    + [("batch", "output is a file")], ids=lambda v: v)
@pytest.mark.usefixtures("tripwire")
def test_an_output_that_cannot_be_written_is_one_line_before_the_work(media, good_npz, tmp_path, readonly_dir, capsys,
                                                                       command, place):
    name, args = WRITERS[command]
    out = _place(place, tmp_path, readonly_dir, name)
    r = run(capsys, *args(media, good_npz, out))
    error_line(r, code=(1, 2))
    assert not leftovers(tmp_path, readonly_dir if readonly_dir.exists() else tmp_path), leftovers(tmp_path)
    if place != "output is a folder":
        assert not out.exists() or (out.is_file() and out.read_text() == "not a folder"), f"{out} was written"
    if place == "output is a folder":
        assert not list(out.iterdir()), f"wrote into the folder: {list(out.iterdir())}"


def _full_disk_after(monkeypatch, where: Path):
    """Take.save fails with ENOSPC for files in ``where``: the disk filled up while tracking."""
    real = Take.save

    def save(self, path):
        if Path(path).resolve().parent == where.resolve():
            raise OSError(28, "No space left on device")
        return real(self, path)

    monkeypatch.setattr(Take, "save", save)


def _kept(err_line: str) -> Path:
    m = re.search(r"kept in (\S+?\.(?:npz|json))", err_line)
    assert m, f"the error does not say where the tracked frames are kept: {err_line}"
    return Path(m.group(1))


def test_batch_keeps_the_tracked_take_when_saving_it_fails(media, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    out.mkdir()
    _full_disk_after(monkeypatch, out)
    r = run(capsys, "batch", media["short"], "-o", out, "--quiet")
    err = error_line(r, code=1)
    assert "No space left" in err
    assert len(Take.load(_kept(err))) == 6 and not leftovers(out)


def test_blend_keeps_the_tracked_take_when_writing_fails(media, tmp_path, capsys, monkeypatch):
    """The .blend cannot be written after tracking (a full disk): the take is kept and the message
    says where. (Blender is stood in for by a module that fails to write, as a full disk would.)"""
    import types

    fake = types.ModuleType("blender_facemesh.blender.blendfile")
    fake.new_file = lambda: False

    def write_blend(take, out, *a, **k):
        raise OSError(28, "No space left on device")

    fake.write_blend = write_blend
    monkeypatch.setitem(sys.modules, "blender_facemesh.blender.blendfile", fake)
    import blender_facemesh.blender as blender_pkg

    monkeypatch.setattr(blender_pkg, "blendfile", fake, raising=False)
    out = tmp_path / "full" / "b.blend"
    r = run(capsys, "blend", media["short"], "-o", out, "--quiet")
    err = error_line(r, code=1)
    assert len(Take.load(_kept(err))) == 6


def _file_size_limit(nbytes):
    def limited():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))  # Python ignores SIGXFSZ: writes fail, EFBIG

    return limited


def test_a_full_disk_while_converting_is_one_line_and_leaves_nothing(good_npz, tmp_path):
    for name in ("c.json", "c.csv", "c.npz"):
        r = run_child("convert", good_npz, "-o", tmp_path / name, preexec_fn=_file_size_limit(4096))
        error_line(r, code=1, mentions=[name])
        assert not (tmp_path / name).exists() and not leftovers(tmp_path)


def test_a_full_disk_while_tracking_is_one_line_that_says_what_became_of_the_frames(media, tmp_path):
    """Nothing can be written at all (the take, its journal, the fallback copy): one line that
    says so, exit 1, no thread traceback from the journal writer."""
    out = tmp_path / "t.npz"
    r = run_child("track", media["short"], "-o", out, "--quiet", preexec_fn=_file_size_limit(2048),
                  BLENDER_FACEMESH_CACHE=tmp_path / "cache")
    err = error_line(r, code=1)
    assert "6" in err or "lost" in err or "kept" in err, err
    assert not out.exists() and not list(tmp_path.rglob("*.part"))


# --- (c) videos, image folders and cameras ---------------------------------------------------------

VIDEO_READERS = {
    "track": ("t.npz", lambda src, out: ["track", src, "-o", out, "--quiet"]),
    "blend": ("b.blend", lambda src, out: ["blend", src, "-o", out, "--quiet"]),
    "calibrate": ("p.json", lambda src, out: ["calibrate", src, "-o", out, "--quiet"]),
    "overlay": ("o.mp4", lambda src, out: ["overlay", src, "-o", out, "--quiet"]),
    "batch": ("batch_out", lambda src, out: ["batch", src, "-o", out, "--quiet"]),
}
SOURCES = ["corrupt_images", "empty", "truncated", "garbage", "missing", "no_images", "camera:99999999999999999999",
           "camera:-1", "camera:abc", "camera:1.5", "camera:"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("command", list(VIDEO_READERS))
def test_a_video_or_camera_that_cannot_be_read_is_one_line(media, tmp_path, capsys, command, source):
    name, args = VIDEO_READERS[command]
    src = media.get(source, source)
    out = tmp_path / "out" / name
    r = run(capsys, *args(src, out))
    err = error_line(r, code=(1, 2) if command == "batch" else 2)
    if source == "corrupt_images" and command in ("track", "blend", "calibrate"):
        assert "frame_002.png" in err, err
    if command == "track" and source == "corrupt_images":  # the frames before the bad image are kept
        assert out.is_file(), "the frames tracked before the damaged image were not kept"
        assert len(Take.load(out)) == 2
    elif command == "batch":
        assert not out.exists() or not [p for p in out.iterdir()], list(out.iterdir())
    else:
        assert not out.exists(), f"{out} written for an unreadable input"
    assert not leftovers(tmp_path / "out")


@pytest.mark.parametrize("command", ["report", "convert", "blend", "calibrate", "overlay --take", "recover"])
def test_a_missing_take_is_one_line(media, tmp_path, capsys, command):
    missing = tmp_path / "nowhere" / "take.npz"
    args = {"report": ["report", missing], "convert": ["convert", missing, "-o", tmp_path / "c.json"],
            "blend": ["blend", missing, "-o", tmp_path / "b.blend"],
            "calibrate": ["calibrate", missing, "-o", tmp_path / "p.json"],
            "overlay --take": ["overlay", media["short"], "-o", tmp_path / "o.mp4", "--take", missing],
            "recover": ["recover", tmp_path / "nowhere" / "x.npz.recording"]}[command]
    error_line(run(capsys, *args), code=2)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]


# --- (d) Ctrl+C ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_inputs(sample_clip, good, tmp_path_factory):
    """A 36 s clip (the sample clip twelve times) and a 60000-frame take: minutes of work, cut short."""
    d = tmp_path_factory.mktemp("long")
    cap = cv2.VideoCapture(str(sample_clip))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    h, w = frames[0].shape[:2]
    clip = d / "long.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for _ in range(12):
        for f in frames:
            writer.write(f)
    writer.release()
    n = 60000
    reps = -(-n // len(good))
    take = Take(good.fps, good.width, good.height, good.source, good.meta)
    take.t, take.frame_index = np.arange(n) / good.fps, np.arange(n)
    take.face_ids = np.tile(good.face_ids, (reps, 1))[:n]
    take.arrays = {"head_matrix": np.tile(good.head_matrix, (reps, 1, 1, 1))[:n],
                   "blendshapes": np.tile(good.blendshapes, (reps, 1, 1))[:n]}
    return {"clip": clip, "take": take.save(d / "long.npz")}


def _interrupted(args, after_s, cache_dir):
    proc = subprocess.Popen([sys.executable, "-m", "blender_facemesh", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=env_for_child(BLENDER_FACEMESH_CACHE=cache_dir))
    try:
        deadline = time.monotonic() + after_s
        while time.monotonic() < deadline and proc.poll() is None:
            threading.Event().wait(0.05)
        assert proc.poll() is None, "finished before it could be interrupted: " + proc.stderr.read()[-1000:]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Ran([str(a) for a in args], proc.returncode, out, err)


INTERRUPTED = {  # command: (seconds to let it work, args given the long inputs and an output folder)
    "blend (baking)": (5.0, lambda li, out: ["blend", li["take"], "-o", out / "b.blend", "--quiet"]),
    "batch": (4.0, lambda li, out: ["batch", li["clip"], "-o", out, "--quiet"]),
    "overlay": (4.0, lambda li, out: ["overlay", li["clip"], "-o", out / "o.mp4", "--quiet"]),
    "calibrate": (4.0, lambda li, out: ["calibrate", li["clip"], "-o", out / "p.json", "--quiet"]),
    "convert": (2.5, lambda li, out: ["convert", li["take"], "-o", out / "c.csv"]),
}


@pytest.mark.parametrize("command", list(INTERRUPTED))
def test_ctrl_c_is_one_line_and_exit_130(long_inputs, tmp_path, command):
    after, args = INTERRUPTED[command]
    out = tmp_path / "out"
    out.mkdir()
    r = _interrupted(args(long_inputs, out), after, tmp_path / "cache")
    error_line(r, code=130)
    assert not leftovers(out), leftovers(out)
    assert not [p for p in out.iterdir() if p.suffix in (".blend", ".mp4", ".csv", ".json")], list(out.iterdir())


def test_ctrl_c_during_track_of_a_video_keeps_the_frames_as_json(long_inputs, tmp_path):
    """Not simulated live (test_tracking does that): the file is read as fast as it tracks."""
    out = tmp_path / "t.json"
    r = _interrupted(["track", long_inputs["clip"], "-o", out, "--quiet"], 4.0, tmp_path / "cache")
    assert "Traceback" not in r.err and "Exception in thread" not in r.err, r.tail(3000)
    assert r.code in (0, 130), r.tail()
    assert len(Take.load(out)) > 10 and not leftovers(tmp_path)


# --- (e) numeric options --------------------------------------------------------------------------

HUGE = "99999999999999999999"
NUMERIC = [  # command, option, bad values; inputs are chosen so that the option matters
    ("track", "--fov", ["nan", "inf", "-1", "1e308"]),
    ("track", "--fps", ["nan", "inf", "-1", "0", "1e308"]),
    ("track", "--duration", ["nan", "-1"]),
    ("track", "--num-faces", ["-1", "0", HUGE]),
    ("track", "--width", ["-1", "0", HUGE]),
    ("track", "--height", ["-1", HUGE]),
    ("track", "--camera-fps", ["nan", "inf", "-1"]),
    ("blend", "--fov", ["nan", "-1"]),
    ("blend", "--fps", ["nan", "-1"]),
    ("blend", "--num-faces", ["-1", HUGE]),
    ("blend", "--duration", ["nan"]),
    ("blend", "--check", ["-1", HUGE]),
    ("batch", "--fov", ["nan", "inf"]),
    ("batch", "--num-faces", ["0", "-1", HUGE]),
    ("batch", "--fps", ["nan"]),
    ("overlay", "--fov", ["nan", "-1"]),
    ("overlay", "--num-faces", ["0", HUGE]),
    ("overlay", "--fps", ["inf"]),
    ("calibrate", "--fov", ["nan", "inf", "-1", "1e308"]),
    ("convert", "--fps", ["nan", "inf", "-1", "0", "1e308"]),
]


def _numeric_args(command, media, good_npz, tmp_path):
    return {"track": ["track", media["images"], "-o", tmp_path / "t.npz", "--quiet"],
            "blend": ["blend", media["images"], "-o", tmp_path / "b.blend", "--quiet"],
            "batch": ["batch", media["short"], "-o", tmp_path / "batch", "--quiet"],
            "overlay": ["overlay", media["short"], "-o", tmp_path / "o.mp4", "--quiet"],
            "calibrate": ["calibrate", media["images"], "-o", tmp_path / "p.json", "--quiet"],
            "convert": ["convert", good_npz, "-o", tmp_path / "c.csv"]}[command]


@pytest.mark.parametrize("command, option, value", [(c, o, v) for c, o, vs in NUMERIC for v in vs],
                         ids=[f"{c} {o} {v}" for c, o, vs in NUMERIC for v in vs])
@pytest.mark.usefixtures("tripwire")
def test_a_numeric_option_out_of_range_is_refused_before_work(media, good_npz, tmp_path, capsys, command, option, value):
    r = run(capsys, *_numeric_args(command, media, good_npz, tmp_path), f"{option}={value}")
    error_line(r, code=2)  # before any tracking or baking (the tripwire), so it is about the option
    assert not [p for p in tmp_path.iterdir() if p.name not in ("cache",)], list(tmp_path.iterdir())


@pytest.mark.parametrize("field, value", [("beta", float("nan")), ("beta", float("inf")), ("beta", -1.0),
                                          ("min_cutoff", float("nan")), ("min_cutoff", 0.0), ("min_cutoff", -1.0),
                                          ("d_cutoff", float("nan"))])
def test_one_euro_settings_out_of_range_are_a_settings_error(field, value):
    from blender_facemesh.core.errors import SettingsError
    from blender_facemesh.core.solve.filters import OneEuroFilter, OneEuroSettings

    with pytest.raises(SettingsError):
        OneEuroFilter(OneEuroSettings(**{field: value}))


# --- (f) a take without a face, a bad model ------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["npz", "json"])
def test_a_take_without_a_face(good, media, tmp_path, capsys, fmt):
    """report reports it (text, JSON, plot); the commands that need a face say so in one line."""
    path = _no_face(good, tmp_path, fmt)
    r = run(capsys, "report", path)
    assert r.code == 0 and "Traceback" not in r.err, r.tail()
    r = run(capsys, "report", path, "--json", "--plot", tmp_path / "p.png")
    assert r.code == 0, r.tail()
    strict_json(r.out.split("\nplot: ")[0])
    assert (tmp_path / "p.png").is_file()
    for cmd in (["convert", path, "-o", tmp_path / "c.csv"], ["blend", path, "-o", tmp_path / "b.blend"],
                ["calibrate", path, "-o", tmp_path / "c.json"]):
        error_line(run(capsys, *cmd), code=2)
    r = run(capsys, "overlay", media["short"], "-o", tmp_path / "o.mp4", "--take", path, "--quiet")
    assert r.code == 0 and "no face in 6" in r.out, r.tail()


def _wrong_models(tmp_path, face_model):
    d = tmp_path / "models"
    d.mkdir()
    (d / "garbage.task").write_bytes(np.random.default_rng(9).bytes(5000))
    (d / "empty.task").write_bytes(b"")
    other = d / "other.task"
    with zipfile.ZipFile(other, "w") as z:  # a model bundle, but not this one
        z.writestr("face_detector.tflite", b"TFL3" + bytes(200))
    data = Path(face_model.path).read_bytes()
    (d / "cut.task").write_bytes(data[: len(data) // 3])
    (d / "folder.task").mkdir()
    return {k: d / f"{k}.task" for k in ("garbage", "empty", "other", "cut", "folder")}


@pytest.mark.parametrize("model", ["garbage", "empty", "other", "cut", "folder", "missing"])
@pytest.mark.parametrize("command", ["info", "track", "blend", "batch", "overlay", "calibrate"])
def test_model_env_var_pointing_at_the_wrong_thing_is_one_line(media, tmp_path, capsys, monkeypatch, face_model,
                                                               command, model):
    models = _wrong_models(tmp_path, face_model)
    monkeypatch.setenv("BLENDER_FACEMESH_MODEL", str(models.get(model, tmp_path / "models" / "missing.task")))
    out = tmp_path / "out"
    args = {"info": ["info"], "track": ["track", media["short"], "-o", out / "t.npz", "--quiet"],
            "blend": ["blend", media["short"], "-o", out / "b.blend", "--quiet"],
            "batch": ["batch", media["short"], "-o", out, "--quiet"],
            "overlay": ["overlay", media["short"], "-o", out / "o.mp4", "--quiet"],
            "calibrate": ["calibrate", media["short"], "-o", out / "p.json", "--quiet"]}[command]
    err = error_line(run(capsys, *args), code=2)
    assert "BLENDER_FACEMESH_MODEL" in err or f"{model}.task" in err, err
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())


@pytest.mark.parametrize("model", ["garbage", "other", "folder"])
@pytest.mark.parametrize("command", ["track", "calibrate", "overlay"])
def test_a_wrong_model_option_is_one_line(media, tmp_path, capsys, face_model, command, model):
    path = _wrong_models(tmp_path, face_model)[model]
    out = tmp_path / "out"
    args = {"track": ["track", media["short"], "-o", out / "t.npz"],
            "calibrate": ["calibrate", media["short"], "-o", out / "p.json"],
            "overlay": ["overlay", media["short"], "-o", out / "o.mp4"]}[command]
    err = error_line(run(capsys, *args, "--model", path, "--quiet"), code=2)
    assert f"{model}.task" in err, err
    assert not out.exists() or not list(out.iterdir())


def test_a_garbage_model_prints_no_thread_traceback(media, tmp_path):
    """The model is opened by the capture thread: its failure must still be one line."""
    bad = tmp_path / "garbage.task"
    bad.write_bytes(b"not a model" * 100)
    r = run_child("track", media["short"], "-o", tmp_path / "t.npz", "--quiet", BLENDER_FACEMESH_MODEL=bad,
                  BLENDER_FACEMESH_CACHE=tmp_path / "cache")
    error_line(r, code=2, mentions=["garbage.task"])
    r = run_child("info", BLENDER_FACEMESH_MODEL=tmp_path, BLENDER_FACEMESH_CACHE=tmp_path / "cache")
    error_line(r, code=2, mentions=["BLENDER_FACEMESH_MODEL"])
    assert not (tmp_path / "t.npz").exists() and not leftovers(tmp_path)


def _profile_case(case: str, path: Path) -> Path:
    from blender_facemesh.core.solve.calibration import PerformerProfile

    good = PerformerProfile(name="me").to_dict()
    if case == "deeply nested":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif case == "binary garbage":
        path.write_bytes(np.random.default_rng(13).bytes(2000))
    elif case == "a folder":
        path.mkdir()
    elif case == "a list":
        path.write_text("[1, 2, 3]")
    elif case == "version 1e400":
        path.write_text(json.dumps(good).replace('"version": 1', '"version": 1e400'))
    elif case == "neutral NaN":
        good["neutral"] = [float("nan")] * len(good["neutral"])
        path.write_text(json.dumps(good))
    elif case == "neutral too short":
        good["neutral"] = good["neutral"][:3]
        path.write_text(json.dumps(good))
    elif case != "missing":
        raise KeyError(case)
    return path


PROFILE_CASES = ["deeply nested", "binary garbage", "a folder", "a list", "version 1e400", "neutral NaN",
                 "neutral too short", "missing"]


@pytest.mark.parametrize("case, command", [(p, c) for c in ("track --performer", "blend --performer",
                                                              "overlay --performer", "calibrate onto it")
                                            for p in PROFILE_CASES
                                            if (p, c) != ("missing", "calibrate onto it")])  # that one is written new
@pytest.mark.usefixtures("tripwire")
def test_a_broken_performer_profile_is_one_line(media, good_npz, tmp_path, capsys, case, command):
    """--performer and an existing calibrate output are JSON read as trusted as takes are."""
    prof = _profile_case(case, tmp_path / "me.json")
    out = tmp_path / "out"
    args = {"track --performer": ["track", media["short"], "-o", out / "t.npz", "--performer", prof, "--quiet"],
            "blend --performer": ["blend", good_npz, "-o", out / "b.blend", "--performer", prof, "--quiet"],
            "overlay --performer": ["overlay", media["short"], "-o", out / "o.mp4", "--take", good_npz,
                                    "--performer", prof, "--quiet"],
            "calibrate onto it": ["calibrate", good_npz, "-o", prof, "--quiet"]}[command]
    error_line(run(capsys, *args), code=(1, 2))
    assert not out.exists() or not list(out.iterdir())


# --- (g) broken Live Link Face CSVs -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def livelink_text(good, tmp_path_factory):
    from blender_facemesh.core.formats.livelink import write_csv

    return write_csv(good, tmp_path_factory.mktemp("ll") / "good.csv").read_text()


def _csv_case(case: str, text: str, path: Path) -> Path:
    head, *rows = text.splitlines()
    row = rows[3].split(",")

    def with_row(i, value):
        r = list(row)
        r[i] = value
        return "\n".join([head] + rows[:3] + [",".join(r)] + rows[4:]) + "\n"

    if case == "binary garbage":
        path.write_bytes(np.random.default_rng(11).bytes(4000))
        return path
    if case == "NUL bytes":
        path.write_bytes(text[:2000].encode() + b"\x00\x00\x00" + text[2000:].encode())
        return path
    if case == "UTF-16":
        path.write_bytes(text.encode("utf-16"))
        return path
    body = {
        "empty file": "",
        "blank lines only": "\n\n \n",
        "header only": head + "\n",
        "wrong header": "time,a,b,c\n0,1,2,3\n",
        "header of half the columns": ",".join(head.split(",")[:30]) + "\n" + "\n".join(",".join(r.split(",")[:30]) for r in rows) + "\n",
        "text in a number": with_row(5, "abc"),
        "NaN in a number": with_row(5, "nan"),
        "inf in a number": with_row(60, "inf"),
        "1e400 head yaw": with_row(head.split(",").index("HeadYaw"), "1e400"),
        "empty field": with_row(7, ""),
        "ragged row": "\n".join([head] + rows[:3] + [",".join(row[:20])] + rows[4:]) + "\n",
        "bad timecode": with_row(0, "25:99:99:99.000"),
        "timecode text": with_row(0, "yesterday"),
        "timecode goes back": "\n".join([head] + rows[:40] + rows[:40]) + "\n",
        "huge frame number": with_row(0, "00:00:01:999999999999.0"),
        "a field of 2 MB": with_row(9, "1" * 2_000_000),
    }[case]
    path.write_text(body)
    return path


CSV_CASES = ["binary garbage", "NUL bytes", "UTF-16", "empty file", "blank lines only", "header only", "wrong header",
             "header of half the columns", "text in a number", "NaN in a number", "inf in a number",
             "1e400 head yaw", "empty field", "ragged row", "bad timecode", "timecode text", "timecode goes back",
             "huge frame number", "a field of 2 MB"]


@pytest.mark.parametrize("command", ["convert", "convert --fps 30", "report", "blend", "calibrate", "overlay --take"])
@pytest.mark.parametrize("case", CSV_CASES)
@pytest.mark.usefixtures("tripwire")
def test_a_broken_live_link_csv_is_one_line_naming_it(livelink_text, media, tmp_path, capsys, case, command):
    path = _csv_case(case, livelink_text, tmp_path / "broken.csv")
    out = tmp_path / "out"
    out.mkdir()
    args = {"convert": ["convert", path, "-o", out / "c.npz"],
            "convert --fps 30": ["convert", path, "-o", out / "c.json", "--fps", "30"],
            "report": ["report", path],
            "blend": ["blend", path, "-o", out / "b.blend", "--quiet"],
            "calibrate": ["calibrate", path, "-o", out / "p.json", "--quiet"],
            "overlay --take": ["overlay", media["short"], "-o", out / "o.mp4", "--take", path, "--quiet"]}[command]
    error_line(run(capsys, *args), code=2, mentions=["broken.csv"])
    assert not list(out.iterdir()) and not leftovers(tmp_path)


# --- the Blender operators that read files --------------------------------------------------------------

_OPERATOR_CHILD = r"""
import json, sys
import bpy
import blender_facemesh

bpy.ops.wm.read_factory_settings(use_empty=True)
blender_facemesh.register()
bpy.context.scene.facemesh.take_dir = sys.argv[2]
for name, op, kwargs in json.loads(open(sys.argv[1]).read()):
    try:  # an ERROR report makes bpy.ops raise RuntimeError("Error: the message"); an exception, with its traceback
        result, error = sorted(getattr(bpy.ops.facemesh, op)(**kwargs)), None
    except BaseException as exc:
        result, error = None, type(exc).__name__ + ": " + str(exc)
    print("\nCASE " + json.dumps({"case": name, "result": result, "error": error}), flush=True)
blender_facemesh.unregister()
"""


def test_operators_that_read_files_cancel_with_one_error_report(good, media, livelink_text, tmp_path):
    pytest.importorskip("bpy")
    d = tmp_path / "bad"
    d.mkdir()
    npz = _npz_case("fps NaN", good, d / "fps_nan.npz")
    ids = _npz_case("ids float", good, d / "ids_float.npz")
    deep = _json_case("deeply nested", good, d / "deep.json")
    junk = _npz_case("not a zip", good, d / "junk.npz")
    empty_json = _json_case("empty file", good, d / "empty.json")
    ragged = _csv_case("ragged row", livelink_text, d / "ragged.csv")
    binary = _csv_case("binary garbage", livelink_text, d / "binary.csv")
    empty_csv = _csv_case("empty file", livelink_text, d / "empty.csv")
    text_csv = _csv_case("text in a number", livelink_text, d / "text.csv")
    header_csv = _csv_case("wrong header", livelink_text, d / "header.csv")
    journal = d / "x.npz.recording"
    journal.write_bytes(b"junk" * 10)
    cases = [
        ("bake_take fps NaN", "bake_take", {"filepath": str(npz)}),
        ("bake_take float ids", "bake_take", {"filepath": str(ids)}),
        ("bake_take deep json", "bake_take", {"filepath": str(deep)}),
        ("bake_take not a zip", "bake_take", {"filepath": str(junk)}),
        ("bake_take empty json", "bake_take", {"filepath": str(empty_json)}),
        ("bake_take missing", "bake_take", {"filepath": str(d / "missing.npz")}),
        ("calibrate_neutral fps NaN", "calibrate_neutral", {"filepath": str(npz)}),
        ("calibrate_neutral deep json", "calibrate_neutral", {"filepath": str(deep)}),
        ("calibrate_neutral range from junk", "calibrate_neutral", {"filepath": str(junk), "mode": "RANGE"}),
        ("calibrate_neutral garbage video", "calibrate_neutral", {"filepath": str(media["garbage"])}),
        ("calibrate_neutral empty video", "calibrate_neutral", {"filepath": str(media["empty"])}),
        ("calibrate_neutral image folder", "calibrate_neutral", {"filepath": str(media["corrupt_images"])}),
        ("calibrate_shape fps NaN", "calibrate_shape", {"filepath": str(npz)}),
        ("calibrate_shape ragged csv", "calibrate_shape", {"filepath": str(ragged)}),
        ("calibrate_shape truncated video", "calibrate_shape", {"filepath": str(media["truncated"])}),
        ("calibrate_shape corrupt image folder", "calibrate_shape", {"filepath": str(media["corrupt_images"])}),
        ("import_livelink ragged", "import_livelink", {"filepath": str(ragged)}),
        ("import_livelink binary", "import_livelink", {"filepath": str(binary)}),
        ("import_livelink empty", "import_livelink", {"filepath": str(empty_csv)}),
        ("import_livelink text in a number", "import_livelink", {"filepath": str(text_csv)}),
        ("import_livelink wrong header", "import_livelink", {"filepath": str(header_csv)}),
        ("import_livelink missing", "import_livelink", {"filepath": str(d / "missing.csv")}),
        ("export_livelink of a damaged take", "export_livelink", {"take": str(npz), "filepath": str(d / "o.csv")}),
        ("export_livelink of a deep json", "export_livelink", {"take": str(deep), "filepath": str(d / "o.csv")}),
        ("process_video empty", "process_video", {"filepath": str(media["empty"]), "bake": False}),
        ("process_video garbage", "process_video", {"filepath": str(media["garbage"]), "bake": False}),
        ("process_video truncated", "process_video", {"filepath": str(media["truncated"]), "bake": False}),
        ("recording_recover junk", "recording_recover", {"journal": str(journal)}),
        ("mapping_load deep json", "mapping_load", {"filepath": str(deep)}),
        ("mapping_load junk", "mapping_load", {"filepath": str(junk)}),
    ]
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    p = subprocess.run([sys.executable, "-c", _OPERATOR_CHILD, str(spec), str(tmp_path / "takes")], capture_output=True,
                       text=True, timeout=300, env=env_for_child(BLENDER_FACEMESH_CACHE=tmp_path / "cache"), cwd=REPO)
    got = {c["case"]: c for c in (json.loads(ln[ln.index("CASE {") + 5:]) for ln in p.stdout.splitlines()
                                  if "CASE {" in ln)}
    problems = []
    for name, _op, _kw in cases:
        c = got.get(name)
        if c is None:
            problems.append(f"{name}: never ran (child exit {p.returncode}: {p.stderr[-500:]})")
            continue
        if c["error"] is None:
            problems.append(f"{name}: returned {c['result']} without an error report")
            continue
        lines = [ln for ln in c["error"].strip().splitlines() if ln.strip() and not ln.startswith("Location: ")]
        if "Traceback" in c["error"] or "Error: Python:" in c["error"]:
            problems.append(f"{name}: an exception escaped the operator: {lines[-1]}")
        elif not c["error"].startswith("RuntimeError: Error: ") or len(lines) != 1:
            problems.append(f"{name}: not one error report: {c['error']!r}")
    assert not problems, "\n".join(problems)
    assert "Traceback" not in p.stderr and "Exception in thread" not in p.stderr, p.stderr[-3000:]
    assert journal.exists()  # a journal that cannot be recovered is the user's to keep or discard
    assert not (d / "o.csv").exists() and leftovers(d) == [journal]
