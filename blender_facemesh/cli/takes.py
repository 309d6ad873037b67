"""``overlay``, ``report`` and ``convert``: what can be made of a take besides animation."""

from __future__ import annotations

import json
from pathlib import Path

from .common import (ProgressBar, apply_performer, check_output, fail, have_bpy, load_take, smoothing_settings, track_file,
                     writing)


def _keep_audio(silent: Path, source: str, out: Path) -> str:
    """Mux the source's sound under the overlay video with Blender's own FFmpeg (the bpy module
    or not: OpenCV writes no audio). Returns what happened, for the summary line."""
    import shutil

    from ..blender.mux_sound import NO_SOUND, mux_sound
    from ..core.files import atomic_target

    if not have_bpy():
        shutil.move(str(silent), str(out))
        return "no audio (the bpy module is needed to copy the sound: pip install bpy==5.0.1 on Python 3.11, bpy==5.2.3 on 3.13)"
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
    from ..core.capture.model import find_model
    from ..core.visual.overlay import write_overlay_video

    out = Path(args.output).expanduser()
    if out.suffix.lower() != ".mp4":
        return fail(f"output {out.name} must end in .mp4")
    if Path(args.input).is_dir():
        return fail(f"{args.input} is a folder: overlay draws on a video file")
    if not Path(args.input).is_file():
        return fail(f"video {args.input} not found")
    check_output(out)
    silent = out.with_name(out.stem + ".video.mp4")
    try:
        apply_performer(args)
        bar = ProgressBar(None, label=Path(args.input).name[:24], enabled=False if args.quiet else None)
        if args.take:
            take = load_take(args.take)
        else:
            find_model(args.model)
            take = track_file(args.input, args)
        from ..core.solve.smoothing import smooth_take

        take = smooth_take(take, smoothing_settings(args))  # drawn as it will be baked
        info = writing(out, write_overlay_video, args.input, take, silent,
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
    from ..core.visual.report import format_report, plot_report, take_report

    take = load_take(args.take)
    d = take_report(take)
    if args.plot:
        writing(args.plot, plot_report, take, args.plot)
    print(json.dumps(d, indent=1) if args.json else format_report(d))
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


def cmd_convert(args) -> int:
    from ..core.formats.livelink import read_csv, write_csv_per_face
    from ..core.take import Take

    src, out = Path(args.input), Path(args.output)
    if out.suffix.lower() not in (".npz", ".json", ".csv"):
        return fail(f"output {out.name} must end in .npz, .json or .csv")
    check_output(out)
    take = read_csv(src, fps=args.fps) if src.suffix.lower() == ".csv" else Take.load(src)
    if out.suffix.lower() == ".csv":
        from ..core.solve.smoothing import smooth_take

        smoothed = smooth_take(take, smoothing_settings(args))  # what other tools import: the finished curves
        written = writing(out, write_csv_per_face, smoothed, out, fps=args.fps, drop_frame=args.drop_frame)
        if len(written) > 1:  # a CSV per performer, as the app records one per phone
            out = ", ".join(str(p) for p in written)
    else:
        writing(out, take.save, out)
    print(f"wrote {out}: {len(take)} frames, {take.duration:.2f} s at {take.fps:g} fps")
    return 0
