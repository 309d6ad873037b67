"""Command line: ``python -m blender_facemesh track INPUT --output FILE`` and friends.

Runs the same capture core the add-on uses, without Blender. Bad input ends with one line
on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .core.camera import DEFAULT_FOV_DEG
from .core.errors import FacemeshError, OutputError, SettingsError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


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


def _fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _add_tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="path to face_landmarker.task (default: search; see README)")
    p.add_argument("--delegate", default="AUTO", choices=["AUTO", "GPU", "CPU"], type=str.upper)
    p.add_argument("--num-faces", type=int, default=1)
    p.add_argument("--fov", type=float, default=None,
                   help="camera's vertical field of view, degrees (default: the performer's calibration, "
                        f"else {DEFAULT_FOV_DEG:g})")
    p.add_argument("--performer", help="performer profile (.json, from `calibrate`): head pose from their own face")
    p.add_argument("--fps", type=float, default=None, help="frame rate of an image sequence")
    p.add_argument("--no-filter", action="store_true", help="switch smoothing off")
    p.add_argument("--min-cutoff", type=float, default=None, help="One Euro min cut-off (Hz) for all channels")
    p.add_argument("--beta", type=float, default=None, help="One Euro beta for blendshapes and pose")
    p.add_argument("--simulate-live", action="store_true",
                   help="play a video file at real-time pace, dropping frames like a camera")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (cameras)")
    p.add_argument("--width", type=int, default=None, help="camera: requested width")
    p.add_argument("--height", type=int, default=None, help="camera: requested height")
    p.add_argument("--camera-fps", type=float, default=None, help="camera: requested fps")
    p.add_argument("--backend", default="auto", help="camera backend: auto, v4l2, dshow, msmf, avfoundation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m blender_facemesh",
                                 description="Facial motion capture with MediaPipe, without Blender.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("track", help="track a video, image folder or camera into a take")
    p.add_argument("input", help="video file, image folder or pattern, camera:N, or 'sample' "
                                 "(the built-in clip made from scikit-image's astronaut photo)")
    p.add_argument("--output", "-o", required=True, help="take file to write (.json or .npz)")
    _add_tracking_args(p)
    b = sub.add_parser("blend", help="track a video (or load a take) and save an animated .blend: "
                                     "the capture rig with the keys baked (needs the bpy module)")
    b.add_argument("input", help="video file, image folder or pattern, a take (.npz/.json), or 'sample'")
    b.add_argument("--output", "-o", required=True, help=".blend file to write")
    _add_tracking_args(b)
    bt = sub.add_parser("batch", help="track many videos into takes (and .blend files); bad files are "
                                      "reported and skipped (exit 1 if any failed)")
    bt.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    bt.add_argument("--output", "-o", required=True, help="folder for the takes (and .blend files)")
    bt.add_argument("--format", choices=["npz", "json"], default="npz", help="take file format (default npz)")
    bt.add_argument("--blend", action="store_true", help="also write a .blend per video with the rig baked (bpy)")
    _add_tracking_args(bt)
    ov = sub.add_parser("overlay", help="the video with the tracked mesh, head axes and strongest "
                                        "blendshapes drawn on it")
    ov.add_argument("input", help="video file")
    ov.add_argument("--output", "-o", required=True, help=".mp4 to write")
    ov.add_argument("--take", help="a saved take of this video (.npz/.json) instead of tracking it again")
    _add_tracking_args(ov)
    rp = sub.add_parser("report", help="a tracking report for a take: faces found, drops, head range, "
                                       "channel ranges, jitter on still stretches; optional PNG plot")
    rp.add_argument("take", help="take file (.npz or .json)")
    rp.add_argument("--plot", help="also write a PNG plot of the main channels over time")
    rp.add_argument("--json", action="store_true", help="print the numbers as JSON")
    cal = sub.add_parser("calibrate", help="solve the performer's own 3D face from a head-turn take "
                                           "(video or .npz take) into a performer profile")
    cal.add_argument("input", help="video of the performer turning their head slowly left, right, up and down "
                                   "with a relaxed face (a few seconds), or a .npz take of it")
    cal.add_argument("--output", "-o", required=True, help="performer profile to write (.json); an existing "
                                                             "one keeps its neutral and ranges")
    cal.add_argument("--fov", type=float, default=None, help="camera's vertical field of view, degrees "
                                                             "(default: estimated from the take)")
    cal.add_argument("--model", help="path to face_landmarker.task")
    cal.add_argument("--delegate", default="AUTO", choices=["AUTO", "GPU", "CPU"], type=str.upper)
    cal.add_argument("--quiet", action="store_true", help="no progress bar")
    cv = sub.add_parser("convert", help="convert a take between .npz, .json and Live Link Face .csv")
    cv.add_argument("input", help="take file: .npz, .json, or a Live Link Face .csv")
    cv.add_argument("--output", "-o", required=True, help="file to write: .npz, .json or .csv")
    cv.add_argument("--fps", type=float, default=None, help="timecode rate of a .csv (default: read from it)")
    cv.add_argument("--drop-frame", action="store_true", help="write drop-frame timecodes (29.97 / 59.94)")
    f = sub.add_parser("fetch-model", help="download face_landmarker.task into the user cache")
    f.add_argument("--dest", help="file to write (default: user cache)")
    sub.add_parser("info", help="show the model, delegate and versions found here")
    return ap


def _apply_performer(args) -> None:
    """Resolve --performer and --fov into args.face_shape and args.fov."""
    from .core import faceshape
    from .core.solve.calibration import PerformerProfile

    args.face_shape = None
    if getattr(args, "performer", None):
        shape = faceshape.of_profile(PerformerProfile.load(args.performer))
        if shape is None:
            raise SettingsError(f"{args.performer} has no face shape: run `python -m blender_facemesh calibrate` first")
        args.face_shape = shape
        if args.fov is None:
            args.fov = shape.fov_deg
    if args.fov is None:
        args.fov = DEFAULT_FOV_DEG
    _check_fov(args.fov)


def _check_fov(fov) -> None:
    if fov is not None and not 1 < fov < 179:
        raise SettingsError("--fov must be between 1 and 179 degrees")


def _worker_settings(args, filters=None):
    """The tracking options every tracking command shares (after _apply_performer)."""
    from .core.capture.landmarker import LandmarkerSettings
    from .core.tracking.worker import WorkerSettings

    return WorkerSettings(
        landmarker=LandmarkerSettings(model_path=args.model, num_faces=args.num_faces, delegate=args.delegate),
        filters=filters or _filter_settings(args), fov_deg=args.fov, face_shape=args.face_shape)


def _filter_settings(args):
    from .core.solve.filters import FilterSettings

    if args.no_filter:
        return FilterSettings.off()
    fs = FilterSettings()
    if args.beta is not None:
        fs.blendshapes.beta = fs.pose.beta = args.beta
    for s in (fs.landmarks, fs.blendshapes, fs.pose):
        if args.min_cutoff is not None:
            s.min_cutoff = args.min_cutoff
        s.validate()
    return fs


def _input_path(spec: str) -> str:
    """``sample`` is the built-in clip (made, once, from scikit-image's astronaut photo)."""
    if spec != "sample":
        return spec
    from .core.testing.synthetic import sample_clip_path

    return str(sample_clip_path())


def _is_take_file(path: str) -> bool:
    return path.lower().endswith((".npz", ".json", ".csv"))


def _writing(out, fn, *args, **kwargs):
    """``fn(*args)``, with a failure to write ``out`` turned into the one-line error (exit 1)."""
    try:
        return fn(*args, **kwargs)
    except OSError as exc:
        raise OutputError(f"could not write {out}: {exc.strerror or exc}") from exc


def cmd_track(args) -> int:
    from .core.capture.sources import open_source
    from .core.tracking.worker import CaptureWorker, WorkerError, new_take

    out = Path(args.output)
    if out.suffix.lower() not in (".json", ".npz"):
        return _fail(f"output {out} must end in .json or .npz")
    if not 1 <= args.num_faces <= 8:
        return _fail("--num-faces must be between 1 and 8")
    _apply_performer(args)
    filters = _filter_settings(args)
    source = open_source(_input_path(args.input), fps=args.fps, simulate_live=args.simulate_live, width=args.width,
                         height=args.height, camera_fps=args.camera_fps, backend=args.backend)
    settings = _worker_settings(args, filters)
    info = source.info
    take = new_take(info, settings, num_faces=args.num_faces)
    bar = ProgressBar(info.frame_count, label=Path(info.name).name[:24], enabled=False if args.quiet else None)
    worker = CaptureWorker(source, settings).start()
    t_start = time.monotonic()
    try:
        for sample in worker:
            take.append(sample)
            bar.update(len(take), f"faces {len(sample.faces)}")
            if args.duration and time.monotonic() - t_start >= args.duration:
                break
    except KeyboardInterrupt:
        print("\ninterrupted: saving what was tracked so far", file=sys.stderr)
    except WorkerError:
        worker.stop()
        bar.close()
        if len(take):
            take.save(out)
            print(f"partial take of {len(take)} frames saved to {out}", file=sys.stderr)
        raise
    finally:
        worker.stop()
    bar.close()
    take.meta.update(delegate=worker.delegate, delegate_reason=worker.delegate_reason,
                     frames_dropped=worker.frames_dropped, end_reason=worker.end_reason)
    if len(take) == 0:
        return _fail(f"no frames could be read from {args.input}")
    try:
        take.save(out)
    except (OSError, FacemeshError) as exc:
        return _fail(f"could not write {out}: {exc}", EXIT_FAILED)
    n_face = int(take.face_present.sum())
    print(f"wrote {out}: {len(take)} frames, face in {n_face}, {worker.frames_dropped} dropped, "
          f"delegate {worker.delegate} ({worker.delegate_reason})")
    return 0


VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")


def _track_file(spec: str, args, label: str = "", settings=None):
    """A video (or image sequence) into a take, with a progress bar. Raises the core's errors."""
    from .core.capture.sources import SourceError, open_source
    from .core.tracking.worker import track_take

    source = open_source(_input_path(spec), fps=getattr(args, "fps", None))
    if source.live:
        source.close()
        raise SourceError("a camera cannot be processed here; record it with `track` first")
    bar = ProgressBar(source.info.frame_count, label=label or Path(source.info.name).name[:24],
                      enabled=False if args.quiet else None)
    try:
        return track_take(source, settings or _worker_settings(args), on_progress=lambda n, _t: bar.update(n))
    finally:
        bar.close()


def _have_bpy() -> bool:
    import importlib.util

    return importlib.util.find_spec("bpy") is not None


def _write_blend(take, out: Path, model_path=None) -> str:
    """The capture rig with ``take`` baked, saved as ``out`` (bpy); the add-on registered for it."""
    from . import register, unregister
    from .blender.blendfile import new_file, write_blend

    try:
        registered_here = new_file()
        if registered_here:
            register()
        try:
            return write_blend(take, out, model_path)
        finally:
            if registered_here:
                unregister()  # bpy 4.5 does not exit while add-on classes are still registered
    except (OSError, RuntimeError) as exc:
        raise OutputError(f"could not write {out}: {exc}") from exc


_NO_BPY = "pip install bpy==5.0.1 (Python 3.11), or run this inside Blender"


def cmd_blend(args) -> int:
    """Everything the add-on does for a video, headless: track, build the rig, bake, save."""
    from .core.capture.model import find_model

    out = Path(args.output).expanduser().resolve()
    if out.suffix.lower() != ".blend":
        return _fail(f"output {out.name} must end in .blend")
    if not _have_bpy():
        return _fail(f"the bpy module is not installed: {_NO_BPY}")
    _apply_performer(args)
    find_model(args.model)
    take = _load_take(args.input) if _is_take_file(args.input) else _track_file(args.input, args)
    if not len(take) or not take.face_present.any():
        return _fail(f"no face found in {args.input}: nothing to animate")
    print(_write_blend(take, out, args.model))
    return 0


def _batch_inputs(items: list[str]) -> tuple[list[Path], list[str]]:
    """Videos named directly or found in folders (sorted); and the names that are neither."""
    found, bad = [], []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file():
            found.append(p)
        else:
            bad.append(item)
    return list(dict.fromkeys(found)), bad


def cmd_batch(args) -> int:
    """Many videos into takes (and .blend files); a bad file is reported and skipped."""
    from .core.capture.model import find_model
    from .core.capture.sources import SourceError

    videos, missing = _batch_inputs(args.inputs)
    for m in missing:
        print(f"error: {m}: not found (give video files or folders)", file=sys.stderr)
    if not videos:
        return _fail("no videos to process: give video files or folders holding them "
                     f"({', '.join(VIDEO_EXTENSIONS)})")
    if args.blend and not _have_bpy():
        return _fail(f"--blend needs the bpy module: {_NO_BPY}")
    _apply_performer(args)
    find_model(args.model)
    out_dir = Path(args.output).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"cannot use {out_dir} as the output folder: {exc.strerror}")
    failed = []
    t0 = time.monotonic()
    for i, video in enumerate(videos, 1):
        label = f"[{i}/{len(videos)}] {video.name[:20]}"
        try:
            take = _track_file(str(video), args, label)
            if not take.face_present.any():
                raise SourceError(f"no face found in its {len(take)} frames")
            dest = out_dir / f"{video.stem}.{args.format}"
            take.save(dest)
            line = f"{label}: {len(take)} frames, face in {int(take.face_present.sum())} -> {dest}"
            if args.blend:
                line += "; " + _write_blend(take, out_dir / f"{video.stem}.blend", args.model)
            print(line, flush=True)
        except (FacemeshError, OSError) as exc:
            failed.append((str(video), str(exc)))
            print(f"error: {video}: {exc} (skipped)", file=sys.stderr, flush=True)
    print(f"batch: {len(videos) - len(failed)} of {len(videos)} videos done in {time.monotonic() - t0:.1f} s"
          + (f"; failed: {', '.join(Path(f[0]).name for f in failed)}" if failed else "")
          + (f"; not found: {', '.join(missing)}" if missing else ""))
    return 0 if not failed and not missing else EXIT_FAILED


def _load_take(path: str):
    """A take from .npz / .json, or a Live Link Face .csv."""
    from .core.take import Take, TakeError

    if path.lower().endswith(".csv"):
        from .core.formats.livelink import LiveLinkError, read_csv

        try:
            return read_csv(path)
        except LiveLinkError as exc:
            raise TakeError(str(exc)) from exc
    return Take.load(path)


def cmd_calibrate(args) -> int:
    from .core import faceshape
    from .core.capture.landmarker import LandmarkerSettings
    from .core.capture.model import load_model
    from .core.solve.calibration import PerformerProfile
    from .core.solve.filters import FilterSettings
    from .core.tracking.worker import WorkerSettings

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        return _fail(f"output {out.name} must end in .json")
    _check_fov(args.fov)
    model = load_model(args.model)
    if _is_take_file(args.input):
        take = _load_take(args.input)
    else:
        # raw landmarks: smoothing would lag the turns the solve learns from
        settings = WorkerSettings(landmarker=LandmarkerSettings(model_path=args.model, delegate=args.delegate),
                                  filters=FilterSettings.off())
        take = _track_file(args.input, args, settings=settings)
    t0 = time.monotonic()
    calib = faceshape.from_take(take, model.canonical_vertices, fov_deg=args.fov, name=args.input)
    solve_s = time.monotonic() - t0
    base = PerformerProfile.load(out) if out.is_file() else PerformerProfile(name=out.stem)
    faceshape.into_profile(base, calib).save(out)
    fov = f"{calib.fov_deg:.1f} deg" + (" (estimated)" if calib.fov_estimated else "")
    print(f"wrote {out}: face shape from {calib.frames_used} frames in {solve_s:.1f} s; reprojection error "
          f"{calib.reprojection_px:.2f} px; head turns covered: yaw {calib.yaw_range_deg[0]:.0f} to "
          f"{calib.yaw_range_deg[1]:.0f} deg, pitch {calib.pitch_range_deg[0]:.0f} to {calib.pitch_range_deg[1]:.0f} deg; "
          f"field of view {fov}")
    return 0


def _keep_audio(silent: Path, source: str, out: Path) -> str:
    """Mux the source's sound under the overlay video with Blender's own FFmpeg (the bpy module
    or not: OpenCV writes no audio). Returns what happened, for the summary line."""
    import shutil

    from .blender.mux_sound import NO_SOUND, mux_sound
    from .core.files import atomic_target

    if not _have_bpy():
        shutil.move(str(silent), str(out))
        return "no audio (the bpy module is needed to copy the sound: pip install bpy==5.0.1)"
    try:
        with atomic_target(out, mkdir=False, keep_suffix=True) as tmp:
            proc = mux_sound(silent, source, tmp)
            if proc.returncode != 0 or not tmp.is_file():
                raise RuntimeError("NO_SOUND" if proc.returncode == NO_SOUND else "mux failed")
    except RuntimeError as exc:
        shutil.move(str(silent), str(out))
        return "the video has no sound" if str(exc) == "NO_SOUND" else "sound could not be copied"
    silent.unlink(missing_ok=True)
    return "sound kept"


def cmd_overlay(args) -> int:
    from .core.capture.model import find_model
    from .core.visual.overlay import write_overlay_video

    out = Path(args.output).expanduser()
    if out.suffix.lower() != ".mp4":
        return _fail(f"output {out.name} must end in .mp4")
    if not Path(args.input).is_file():
        return _fail(f"video {args.input} not found")
    silent = out.with_name(out.stem + ".video.mp4")
    try:
        _apply_performer(args)
        bar = ProgressBar(None, label=Path(args.input).name[:24], enabled=False if args.quiet else None)
        if args.take:
            take = _load_take(args.take)
        else:
            find_model(args.model)
            take = _track_file(args.input, args)
        info = _writing(out, write_overlay_video, args.input, take, silent,
                        on_progress=lambda d, t: bar.update(d, "draw"))
        bar.close()
    except BaseException:
        silent.unlink(missing_ok=True)
        raise
    sound = _keep_audio(silent, args.input, out)
    print(f"wrote {out}: {info['frames']} frames {info['size'][0]}x{info['size'][1]}, face in {info['tracked']}, "
          f"no face in {info['no_face']}; {sound}")
    return 0


def cmd_report(args) -> int:
    import json

    from .core.visual.report import format_report, plot_report, take_report

    take = _load_take(args.take)
    d = take_report(take)
    if args.plot:
        _writing(args.plot, plot_report, take, args.plot)
    print(json.dumps(d, indent=1) if args.json else format_report(d))
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


def cmd_convert(args) -> int:
    from .core.formats.livelink import read_csv, write_csv
    from .core.take import Take

    src, out = Path(args.input), Path(args.output)
    if out.suffix.lower() not in (".npz", ".json", ".csv"):
        return _fail(f"output {out.name} must end in .npz, .json or .csv")
    take = read_csv(src, fps=args.fps) if src.suffix.lower() == ".csv" else Take.load(src)
    if out.suffix.lower() == ".csv":
        _writing(out, write_csv, take, out, fps=args.fps, drop_frame=args.drop_frame)
    else:
        _writing(out, take.save, out)
    print(f"wrote {out}: {len(take)} frames, {take.duration:.2f} s at {take.fps:g} fps")
    return 0


def cmd_fetch_model(args) -> int:
    from .core.capture.model import ModelError, fetch_model

    try:
        path = fetch_model(Path(args.dest) if args.dest else None,
                           log=lambda m: print(m, file=sys.stderr))
    except ModelError as exc:
        return _fail(str(exc), EXIT_FAILED)  # the download failed: not the user's input
    print(path)
    return 0


def cmd_info(args) -> int:
    from importlib.metadata import version

    from .core.capture.landmarker import choose_delegate
    from .core.capture.model import find_model

    path = find_model()
    delegate, why = choose_delegate("AUTO", path)
    print(f"model: {path}\nmediapipe: {version('mediapipe')}\ndelegate: {delegate} ({why})")
    return 0


# name -> handler; each parser is built in build_parser() under the same name
COMMANDS = {
    "track": cmd_track,
    "blend": cmd_blend,
    "batch": cmd_batch,
    "overlay": cmd_overlay,
    "report": cmd_report,
    "calibrate": cmd_calibrate,
    "convert": cmd_convert,
    "fetch-model": cmd_fetch_model,
    "info": cmd_info,
}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logging out of the bar
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FacemeshError as exc:
        return _fail(str(exc), exc.exit_code)
