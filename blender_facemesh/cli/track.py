"""``track``, ``batch`` and ``calibrate``: videos, image sequences, cameras and iPhone streams into takes."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from ..core.errors import FacemeshError
from .blend import write_blend_file
from .common import (EXIT_FAILED, NO_BPY, VIDEO_EXTENSIONS, ProgressBar, apply_performer, check_fov, check_output,
                     fail, have_bpy, input_path, interrupts_wait, is_take_file, load_take, save_take_or_keep,
                     smoothing_settings, track_file, worker_settings)


def cmd_track(args) -> int:
    from ..core.capture.sources import open_source
    from ..core.journal import open_journal
    from ..core.tracking.worker import CaptureWorker, WorkerError, new_take
    from .recover import note_unfinished

    out = Path(args.output)
    if out.suffix.lower() not in (".json", ".npz"):
        return fail(f"output {out} must end in .json or .npz")
    check_output(out)
    apply_performer(args)
    settings = worker_settings(args)
    phone = _phone(args)
    if phone is not None:  # an iPhone app's stream: the phone tracks, MediaPipe is not used
        from ..core.tracking.phone import PhoneWorker

        worker = PhoneWorker(phone, settings)
    else:
        source = open_source(input_path(args.input), fps=args.fps, simulate_live=args.simulate_live,
                             width=args.width, height=args.height, camera_fps=args.camera_fps, backend=args.backend)
        worker = CaptureWorker(source, settings)
    info = worker.source.info
    take = new_take(info, settings, num_faces=args.num_faces)
    note_unfinished()
    # streamed beside the output while tracking: a crash or kill loses at most the last second
    take.journal, why = open_journal(out, take)
    if why:
        print(f"note: {why}", file=sys.stderr)
    bar = ProgressBar(info.frame_count, label=Path(info.name).name[:24], enabled=False if args.quiet else None)
    try:
        worker.start()  # a phone's port in use fails here: nothing was recorded, so no journal is left
    except BaseException:
        if take.journal is not None:
            take.journal.discard()
        raise
    if phone is not None:
        print(f"listening for {phone.describe()}: in the app, send to this computer; "
              "Ctrl+C (or --duration) ends the take", file=sys.stderr)
    # --duration: the worker is stopped on time whether or not frames are arriving (a phone
    # that stopped sending ends too)
    timer = threading.Timer(args.duration, worker.stop) if args.duration else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    guard = None
    old_term = _term_as_interrupt()
    try:
        for sample in worker:
            take.append(sample)
            if take.journal is not None:
                take.journal.append(sample)
            bar.update(len(take), f"faces {len(sample.faces)}")
    except KeyboardInterrupt:
        print("\ninterrupted: saving what was tracked so far", file=sys.stderr)
        guard = interrupts_wait().__enter__()  # a second Ctrl+C now waits until the take is saved
    except WorkerError:
        worker.stop()
        bar.close()
        if len(take):
            print(f"partial take of {len(take)} frames saved to {save_take_or_keep(take, out)}", file=sys.stderr)
        elif take.journal is not None:
            take.journal.discard()
        raise
    finally:
        if timer is not None:
            timer.cancel()
        worker.stop()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    bar.close()
    take.meta.update(delegate=worker.delegate, delegate_reason=worker.delegate_reason,
                     frames_dropped=worker.frames_dropped, end_reason=worker.end_reason)
    if phone is not None:  # what the packets said, known once they came
        take.fps, take.source = info.fps, info.as_dict()
        take.meta.update(performers={str(k): v for k, v in worker.performer_names.items()},
                         packets=worker.counts.describe())
    # after a Ctrl+C the guard stays on to the end: more presses must not cut the save (or the
    # summary after it) short; the command ends by itself in a moment
    if len(take) == 0:
        if take.journal is not None:
            take.journal.discard()
        return fail(f"no frames could be read from {args.input}")
    save_take_or_keep(take, out)
    if guard is not None:  # saved: further presses while the process winds down are ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    n_face = int(take.face_present.sum())
    print(f"wrote {out}: {len(take)} frames, face in {n_face}, {worker.frames_dropped} dropped, "
          f"delegate {worker.delegate} ({worker.delegate_reason})")
    return 0


def _phone(args):
    """The phone stream the input names (``livelink[:[HOST:]PORT]``, ``ifacialmocap[:PHONE]``), or None."""
    from ..core.capture.phone import parse_phone_input

    phone = parse_phone_input(args.input)
    if phone is not None:
        phone.allow = tuple(args.allow or ())
        if args.listen:
            phone.host = args.listen
    return phone


def _term_as_interrupt():
    """SIGTERM (a logout, ``kill``) ends ``track`` like Ctrl+C: what was tracked is saved.
    Returns the handler it replaced (None off the main thread, where signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(*_):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


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
    from ..core.capture.model import find_model
    from ..core.capture.sources import SourceError

    videos, missing = _batch_inputs(args.inputs)
    if not videos:
        gone = f" ({', '.join(missing)} not found)" if missing else ""
        return fail(f"no videos to process{gone}: give video files or folders holding them "
                    f"({', '.join(VIDEO_EXTENSIONS)})")
    for m in missing:
        print(f"error: {m}: not found (give video files or folders)", file=sys.stderr)
    if args.blend and not have_bpy():
        return fail(f"--blend needs the bpy module: {NO_BPY}")
    apply_performer(args)
    find_model(args.model)
    out_dir = Path(args.output).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(f"cannot use {out_dir} as the output folder: {exc.strerror}")
    failed = []
    t0 = time.monotonic()
    for i, video in enumerate(videos, 1):
        label = f"[{i}/{len(videos)}] {video.name[:20]}"
        try:
            take = track_file(str(video), args, label)
            if not take.face_present.any():
                raise SourceError(f"no face found in its {len(take)} frames")
            dest = out_dir / f"{video.stem}.{args.format}"
            save_take_or_keep(take, dest)  # a failed save keeps the take in the user cache, and says so
            line = f"{label}: {len(take)} frames, face in {int(take.face_present.sum())} -> {dest}"
            if args.blend:
                line += "; " + write_blend_file(take, out_dir / f"{video.stem}.blend", args.model,
                                                smoothing=smoothing_settings(args))
            print(line, flush=True)
        except (FacemeshError, OSError) as exc:
            failed.append((str(video), str(exc)))
            print(f"error: {video}: {exc} (skipped)", file=sys.stderr, flush=True)
    print(f"batch: {len(videos) - len(failed)} of {len(videos)} videos done in {time.monotonic() - t0:.1f} s"
          + (f"; failed: {', '.join(Path(f[0]).name for f in failed)}" if failed else "")
          + (f"; not found: {', '.join(missing)}" if missing else ""))
    return 0 if not failed and not missing else EXIT_FAILED


def cmd_calibrate(args) -> int:
    from ..core import faceshape
    from ..core.capture.landmarker import LandmarkerSettings
    from ..core.capture.model import load_model
    from ..core.solve.calibration import PerformerProfile
    from ..core.solve.smoothing import Smoothing
    from ..core.tracking.worker import WorkerSettings

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        return fail(f"output {out.name} must end in .json")
    check_output(out)
    check_fov(args.fov)
    model = load_model(args.model)
    # the profile the shape goes into is read first: a broken one must not cost a solve
    base = PerformerProfile.load(out) if out.is_file() else PerformerProfile(name=out.stem)
    if is_take_file(args.input):
        take = load_take(args.input)
    else:
        settings = WorkerSettings(landmarker=LandmarkerSettings(model_path=args.model, delegate=args.delegate),
                                  smoothing=Smoothing.off())
        take = track_file(args.input, args, settings=settings)
    t0 = time.monotonic()
    calib = faceshape.from_take(take, model.canonical_vertices, fov_deg=args.fov, name=args.input)
    solve_s = time.monotonic() - t0
    faceshape.into_profile(base, calib).save(out)
    fov = f"{calib.fov_deg:.1f} deg" + (" (estimated)" if calib.fov_estimated else "")
    print(f"wrote {out}: face shape from {calib.frames_used} frames in {solve_s:.1f} s; reprojection error "
          f"{calib.reprojection_px:.2f} px; head turns covered: yaw {calib.yaw_range_deg[0]:.0f} to "
          f"{calib.yaw_range_deg[1]:.0f} deg, pitch {calib.pitch_range_deg[0]:.0f} to {calib.pitch_range_deg[1]:.0f} deg; "
          f"field of view {fov}")
    problems = faceshape.quality_problems(calib, model.canonical_vertices)
    if problems:
        print(f"note: this face shape will not be used for the head pose by default: {'; '.join(problems)}")
    return 0
