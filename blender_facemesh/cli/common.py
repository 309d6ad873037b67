"""What the commands share: exit codes, the progress bar, the tracking options, reading takes.

Bad input ends with one ``error: ...`` line and exit code 2, a failure while processing with 1;
both come from a ``FacemeshError`` (the command table in ``__init__`` catches it), so a command
raises instead of printing."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.camera import DEFAULT_FOV_DEG
from ..core.errors import FacemeshError, OutputError, SettingsError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")
NO_BPY = ("pip install bpy==5.0.1 (Python 3.11) or bpy==5.2.3 (Python 3.13), i.e. pip install -e \".[blender]\", "
          "or run this inside Blender")


class ProgressBar:
    """A one-line progress bar on stderr; silent when stderr is not a terminal unless forced."""

    def __init__(self, total: int | None, label: str = "", stream=None, enabled: bool | None = None):
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._last = 0.0
        self.n = 0

    def update(self, n: int, extra: str = "") -> None:
        self.n = n
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and n != self.total):
            return
        self._last = now
        rate = n / max(now - self.start, 1e-6)
        if self.total:
            frac = min(1.0, n / self.total)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label} [{bar:<30}] {n}/{self.total} {rate:5.1f} fps {extra}"
        else:
            text = f"\r{self.label} {n} frames {rate:5.1f} fps {extra}"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def number(kind, low, high, above: bool = False):
    """An argparse ``type``: a finite ``kind`` (int or float) in [low, high] (``above``: > low),
    so nan, inf and nonsense end in argparse's one error line before any work starts."""
    import math

    def parse(text: str):
        try:
            v = kind(text)
        except (ValueError, OverflowError):
            v = None
        if v is None or not math.isfinite(v) or v > high or (v <= low if above else v < low):
            what = "a whole number" if kind is int else "a number"
            span = f"over {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: give {what} {span}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


FPS = number(float, 0, 1000, above=True)
PIXELS = number(int, 1, 100_000)


class Parser(argparse.ArgumentParser):
    """argparse's errors as one ``error:`` line like every other failure (not a usage block)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def add_tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="path to face_landmarker.task (default: search; see README)")
    p.add_argument("--delegate", default="AUTO", choices=["AUTO", "GPU", "CPU"], type=str.upper)
    p.add_argument("--num-faces", type=number(int, 1, 8), default=1, help="faces to track (1 to 8)")
    p.add_argument("--fov", type=number(float, 1, 179, above=True), default=None,
                   help="camera's vertical field of view, degrees (default: the performer's calibration, "
                        f"else {DEFAULT_FOV_DEG:g})")
    p.add_argument("--performer", help="performer profile (.json, from `calibrate`): head pose from their own face")
    p.add_argument("--fps", type=FPS, default=None, help="frame rate of an image sequence")
    p.add_argument("--simulate-live", action="store_true",
                   help="play a video file at real-time pace, dropping frames like a camera")
    p.add_argument("--duration", type=number(float, 0, 1e7, above=True), default=None, help="stop after this many seconds (cameras)")
    p.add_argument("--width", type=PIXELS, default=None, help="camera: requested width")
    p.add_argument("--height", type=PIXELS, default=None, help="camera: requested height")
    p.add_argument("--camera-fps", type=FPS, default=None, help="camera: requested fps")
    p.add_argument("--backend", default="auto", help="camera backend: auto, v4l2, dshow, msmf, avfoundation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_smoothing_args(p: argparse.ArgumentParser, what: str) -> None:
    """Smoothing as the add-on's panel has it: a preset, then any region set apart from it."""
    from ..core.solve.smoothing import LEVELS, PRESETS, REGION_LABELS, REGIONS

    p.add_argument("--smoothing", type=str.lower, default="balanced", choices=[x.lower() for x in PRESETS],
                   help=f"smoothing {what} (default balanced; raw: none); takes always keep the raw values")
    p.add_argument("--no-filter", action="store_true", help="the same as --smoothing raw")
    for r in REGIONS:
        p.add_argument(f"--smooth-{r.replace('_', '-')}", dest=f"smooth_{r}", type=str.lower, default=None,
                       choices=[x.lower() for x in LEVELS], help=f"{REGION_LABELS[r].lower()}: another level than the preset's")


def smoothing_settings(args):
    """--smoothing, --no-filter and --smooth-REGION into the core's Smoothing."""
    from ..core.solve.smoothing import REGIONS, Smoothing

    base = Smoothing.from_preset("raw" if getattr(args, "no_filter", False) else getattr(args, "smoothing", "balanced"))
    return base.with_regions(**{r: getattr(args, f"smooth_{r}", None) for r in REGIONS})


def apply_performer(args) -> None:
    """Resolve --performer and --fov into args.face_shape and args.fov."""
    from ..core import faceshape
    from ..core.solve.calibration import PerformerProfile

    args.face_shape = None
    if getattr(args, "performer", None):
        shape = faceshape.of_profile(PerformerProfile.load(args.performer))
        if shape is None:
            raise SettingsError(f"{args.performer} has no face shape: run `python -m blender_facemesh calibrate` first")
        problems = faceshape.quality_problems(shape)
        if problems:  # the average face then: a doubtful shape would tilt every pose
            print(f"note: {args.performer}'s face shape is not used ({'; '.join(problems)})", file=sys.stderr)
            shape = None
        args.face_shape = shape
        if args.fov is None and shape is not None:
            args.fov = shape.fov_deg
    if args.fov is None:
        args.fov = DEFAULT_FOV_DEG
    check_fov(args.fov)


def check_fov(fov) -> None:
    if fov is not None and not 1 < fov < 179:
        raise SettingsError("--fov must be between 1 and 179 degrees")


def worker_settings(args):
    """The tracking options every tracking command shares (after apply_performer). The takes
    are raw; smoothing is applied by the commands that bake or export them."""
    from ..core.capture.landmarker import LandmarkerSettings
    from ..core.solve.smoothing import Smoothing
    from ..core.tracking.worker import WorkerSettings

    return WorkerSettings(
        landmarker=LandmarkerSettings(model_path=args.model, num_faces=args.num_faces, delegate=args.delegate),
        smoothing=Smoothing.off(), fov_deg=args.fov, face_shape=args.face_shape)


def input_path(spec: str) -> str:
    """``sample`` is the built-in clip (made, once, from scikit-image's astronaut photo)."""
    if spec != "sample":
        return spec
    from ..core.testing.synthetic import sample_clip_path

    return str(sample_clip_path())


def is_take_file(path: str) -> bool:
    return path.lower().endswith((".npz", ".json", ".csv"))


def check_output(out) -> Path:
    """Make sure ``out`` can be written before any long work starts: not a folder, its folder
    there (made if missing) and writable (tried with a scratch file, which also catches /proc
    and read-only mounts). Raises OutputError with what to do."""
    import tempfile

    out = Path(out).expanduser()
    if out.is_dir():
        raise OutputError(f"{out} is a folder: give a file name to write")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write {out}: {parent} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".facemesh-check-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write into {parent} ({exc.strerror or exc}): pick another output place") from exc
    return out


class interrupts_wait:
    """While a take is being saved, Ctrl+C is told to wait instead of cutting the save short
    (the frames tracked so far are what the user pressed Ctrl+C to keep)."""

    def __enter__(self):
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, lambda *_: print("\nsaving the take, one moment...",
                                                                        file=sys.stderr))
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def save_take_or_keep(take, out: Path) -> str:
    """Save a tracked take to ``out``; when that fails (disk full, folder gone), save it to the
    user cache instead so the tracking is not lost, and raise OutputError saying where it is.
    The take's journal, if it has one, is deleted once the take is saved somewhere, and kept
    (for ``recover``) when it could not be."""
    import time as _time

    journal = take.journal

    def saved(where):
        if journal is not None:
            journal.discard()
            take.journal = None
        return where

    try:
        with interrupts_wait():
            take.save(out)
        return saved(str(out))
    except (OSError, FacemeshError) as exc:
        from ..core.files import user_cache_dir

        why = getattr(exc, "strerror", None) or exc
        fallback = user_cache_dir() / "unsaved" / f"{out.stem}-{_time.strftime('%Y%m%d-%H%M%S')}.npz"
        try:
            fallback.parent.mkdir(parents=True, exist_ok=True)
            with interrupts_wait():
                take.save(fallback)
        except (OSError, FacemeshError):
            if journal is not None:
                journal.close()
                if journal.frames_written:
                    raise OutputError(f"could not write {out} ({why}), nor a copy in {fallback.parent}; the "
                                      f"{journal.frames_written} tracked frames are kept in {journal.path}: run "
                                      "`python -m blender_facemesh recover` once there is room") from exc
            raise OutputError(f"could not write {out} ({why}), nor a copy "
                              f"in {fallback.parent}: the {len(take)} tracked frames are lost") from exc
        saved(fallback)
        raise OutputError(f"could not write {out} ({why}); the {len(take)} "
                          f"tracked frames are kept in {fallback}") from exc


def writing(out, fn, *args, **kwargs):
    """``fn(*args)``, with a failure to write ``out`` turned into the one-line error (exit 1)."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise OutputError(f"could not write {out}: {exc.strerror or exc}") from exc


def track_file(spec: str, args, label: str = "", settings=None):
    """A video (or image sequence) into a take, with a progress bar. Raises the core's errors."""
    from ..core.capture.sources import SourceError, open_source
    from ..core.tracking.worker import track_take

    source = open_source(input_path(spec), fps=getattr(args, "fps", None))
    if source.live:
        source.close()
        raise SourceError("a camera cannot be processed here; record it with `track` first")
    bar = ProgressBar(source.info.frame_count, label=label or Path(source.info.name).name[:24],
                      enabled=False if args.quiet else None)
    try:
        return track_take(source, settings or worker_settings(args), on_progress=lambda n, _t: bar.update(n))
    finally:
        bar.close()


def load_take(path: str):
    """A take from .npz / .json, or a Live Link Face .csv."""
    from ..core.take import Take, TakeError

    if path.lower().endswith(".csv"):
        from ..core.formats.livelink import LiveLinkError, read_csv

        try:
            return read_csv(path)
        except LiveLinkError as exc:
            raise TakeError(str(exc)) from exc
    take = Take.load(path)
    for w in take.warnings:  # repaired on load: said once, the command goes on
        print(f"note: {Path(path).name}: {w}", file=sys.stderr)
    return take


def have_bpy() -> bool:
    import importlib.util

    return importlib.util.find_spec("bpy") is not None
