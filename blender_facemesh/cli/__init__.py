"""Command line: ``python -m blender_facemesh track INPUT --output FILE`` and friends.

Runs the same capture core the add-on uses, without Blender (``blend`` and ``batch --blend``
use the bpy module). Bad input ends with one line on stderr and a non-zero exit, never a
traceback: commands raise ``FacemeshError`` and :func:`main` prints it.

The commands, what each does, and where it lives:

| command     | module     | what it does                                                         |
|-------------|------------|----------------------------------------------------------------------|
| track       | track.py   | a video, image folder, camera or iPhone app's stream into a take     |
| blend       | blend.py   | a video or take into an animated .blend (the capture rig, baked)     |
| batch       | track.py   | many videos into takes (and .blend files); bad files skipped         |
| overlay     | takes.py   | the video with the tracked mesh, head axes and scores drawn on it    |
| report      | takes.py   | a take's tracking report (coverage, head range, jitter), and a plot  |
| calibrate   | track.py   | the performer's own face shape from a head-turn take                 |
| convert     | takes.py   | a take between .npz, .json and Live Link Face .csv                   |
| recover     | recover.py | recordings a crash or kill left unfinished, saved as takes           |
| fetch-model | setup.py   | face_landmarker.task into the user cache                             |
| info        | setup.py   | the model, the delegate and versions found here                      |
"""

from __future__ import annotations

import argparse
import os

from ..core.errors import FacemeshError
from .blend import cmd_blend
from .common import FPS, Parser, add_smoothing_args, add_tracking_args, fail, number
from .recover import cmd_recover
from .setup import cmd_fetch_model, cmd_info
from .takes import cmd_convert, cmd_overlay, cmd_report
from .track import cmd_batch, cmd_calibrate, cmd_track

COMMANDS = {
    "track": cmd_track,
    "blend": cmd_blend,
    "batch": cmd_batch,
    "overlay": cmd_overlay,
    "report": cmd_report,
    "calibrate": cmd_calibrate,
    "convert": cmd_convert,
    "recover": cmd_recover,
    "fetch-model": cmd_fetch_model,
    "info": cmd_info,
}


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m blender_facemesh",
                                 description="Facial motion capture with MediaPipe, without Blender.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("track", help="track a video, image folder or camera into a take")
    p.add_argument("input", help="video file, image folder or pattern, camera:N, 'sample' (the built-in clip "
                                 "made from scikit-image's astronaut photo), or an iPhone app's stream: "
                                 "livelink[:[ADDRESS:]PORT] (Live Link Face, port 11111) or "
                                 "ifacialmocap[:PHONE_ADDRESS] (iFacialMocap, port 49983)")
    p.add_argument("--output", "-o", required=True, help="take file to write (.json or .npz)")
    p.add_argument("--listen", metavar="ADDRESS", help="phone streams: the network interface to listen on "
                                                        "(default: all, since the phone is on the local network)")
    p.add_argument("--allow", metavar="ADDRESS", action="append",
                   help="phone streams: accept packets only from this address (repeat for several phones)")
    add_tracking_args(p)
    b = sub.add_parser("blend", help="track a video (or load a take) and save an animated .blend: "
                                     "the capture rig with the keys baked (needs the bpy module)")
    b.add_argument("input", help="video file, image folder or pattern, a take (.npz/.json), or 'sample'")
    b.add_argument("--output", "-o", required=True, help=".blend file to write")
    b.add_argument("--character", help="your character (.glb, .gltf, .vrm or .fbx) to animate instead of the "
                                       "capture rig: its meshes, keys and bones are found")
    b.add_argument("--look", action="store_true", help="with --character: map the keys whose names match "
                                                       "nothing by looking at renders of them")
    b.add_argument("--check", type=number(int, 0, 10_000), default=0, metavar="FRAMES",
                   help="with --character: render this many baked frames and report per channel how "
                        "closely the character follows the performer")
    add_tracking_args(b)
    add_smoothing_args(b, "applied to the take before it is baked")
    bt = sub.add_parser("batch", help="track many videos into takes (and .blend files); bad files are "
                                      "reported and skipped (exit 1 if any failed)")
    bt.add_argument("inputs", nargs="+", help="video files and/or folders of videos")
    bt.add_argument("--output", "-o", required=True, help="folder for the takes (and .blend files)")
    bt.add_argument("--format", choices=["npz", "json"], default="npz", help="take file format (default npz)")
    bt.add_argument("--blend", action="store_true", help="also write a .blend per video with the rig baked (bpy)")
    add_tracking_args(bt)
    add_smoothing_args(bt, "for the .blend files (--blend)")
    ov = sub.add_parser("overlay", help="the video with the tracked mesh, head axes and strongest "
                                        "blendshapes drawn on it")
    ov.add_argument("input", help="video file")
    ov.add_argument("--output", "-o", required=True, help=".mp4 to write")
    ov.add_argument("--take", help="a saved take of this video (.npz/.json) instead of tracking it again")
    add_tracking_args(ov)
    add_smoothing_args(ov, "of the pose and scores drawn")
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
    cal.add_argument("--fov", type=number(float, 1, 179, above=True), default=None, help="camera's vertical field of view, degrees "
                                                             "(default: estimated from the take)")
    cal.add_argument("--model", help="path to face_landmarker.task")
    cal.add_argument("--delegate", default="AUTO", choices=["AUTO", "GPU", "CPU"], type=str.upper)
    cal.add_argument("--quiet", action="store_true", help="no progress bar")
    cv = sub.add_parser("convert", help="convert a take between .npz, .json and Live Link Face .csv")
    cv.add_argument("input", help="take file: .npz, .json, or a Live Link Face .csv")
    cv.add_argument("--output", "-o", required=True, help="file to write: .npz, .json or .csv")
    cv.add_argument("--fps", type=FPS, default=None, help="timecode rate of a .csv (default: read from it)")
    cv.add_argument("--drop-frame", action="store_true", help="write drop-frame timecodes (29.97 / 59.94)")
    add_smoothing_args(cv, "of a .csv export (.npz and .json takes stay raw)")
    rc = sub.add_parser("recover", help="save recordings that a crash or kill left unfinished as takes "
                                        "(journals found in the user cache, or those given)")
    rc.add_argument("journals", nargs="*", help="journals (.recording) or folders holding them "
                                                "(default: every unfinished recording found)")
    rc.add_argument("--list", action="store_true", help="only list them")
    rc.add_argument("--discard", action="store_true", help="delete them instead of recovering")
    rc.add_argument("--output", "-o", help="take file to write (one journal only; default: beside the journal, "
                                           "as the take it was to become)")
    f = sub.add_parser("fetch-model", help="download face_landmarker.task into the user cache")
    f.add_argument("--dest", help="file to write (default: user cache)")
    sub.add_parser("info", help="show the model, delegate and versions found here")
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logging out of the bar
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FacemeshError as exc:
        return fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:  # one line, no traceback (track keeps its frames itself)
        return fail("interrupted (Ctrl+C): nothing more was written", 130)
