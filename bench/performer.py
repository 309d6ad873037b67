"""Performer face-shape calibration, run by hand: python bench/performer.py [--fov DEG]

Renders, for three faces that are not MediaPipe's canonical one, a 5 s head-turn calibration
take (150 frames, yaw +-25, pitch +-15) and a separate 3 s test clip with other rotations, at a
known field of view; tracks both with the real MediaPipe; calibrates the face shape on the first
and prints, measured in this one run on the test clip's frames:
  1. head rotation error against the known rotations (mean/max degrees): MediaPipe's own
     facial transformation matrix, ours (ShapePose on the calibrated shape), and, as a bound on
     what 2D landmarks allow, the same PnP on the TRUE shape; improvement = 1 - ours/MediaPipe;
  2. calibration solve time and RMS reprojection error;
  3. the field of view estimated when it is not given (first shape).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

SHAPES = {
    "wider 10%, deeper 15%": (1.10, 1.00, 1.15),
    "narrower 8%, flatter 10%": (0.92, 1.00, 0.90),
    "longer 8%, deeper 5%": (1.00, 1.08, 1.05),
}
SIZE = (512, 512)


def test_sequence(n: int = 90) -> np.ndarray:
    t = np.arange(n) / n
    return np.stack([18 * np.sin(2 * np.pi * 1.5 * t + 0.7), -10 * np.sin(2 * np.pi * t + 0.3) + 3,
                     8 * np.cos(4 * np.pi * t)], axis=1)


def track(path: Path):
    from blender_facemesh.core.capture.landmarker import Landmarker
    from blender_facemesh.core.capture.sources import VideoFileSource

    lms, mps, present = [], [], []
    with VideoFileSource(path) as src, Landmarker() as lm:
        for t, rgb in src:
            det = lm.detect(rgb, t)
            ok = bool(det.faces)
            present.append(ok)
            lms.append(det.faces[0].landmarks if ok else np.zeros((478, 3), np.float32))
            mps.append(det.faces[0].mp_matrix if ok else np.full((4, 4), np.nan, np.float32))
    return np.array(lms, np.float64), np.array(mps, np.float64), np.array(present)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fov", type=float, default=50.0, help="the rendering camera's vertical fov (deg)")
    args = ap.parse_args()
    from blender_facemesh.core.rotations import rotation_angle_deg, rotation_part
    from blender_facemesh.core.capture.model import load_model
    from blender_facemesh.core.faceshape.pose import ShapePose
    from blender_facemesh.core.faceshape.solver import calibrate_shape
    from blender_facemesh.core.testing.synthetic import head_turn_sequence, write_clip

    canonical = load_model().canonical_vertices
    print(f"fov {args.fov:g} deg, {SIZE[0]}x{SIZE[1]}, cores: {os.cpu_count()}")
    hdr = (f"{'shape':26s} {'MediaPipe mean/max':>19s} {'ours mean/max':>14s} {'improvement':>11s} "
           f"{'true-shape PnP':>15s} {'calib s':>8s} {'reproj px':>9s}")
    print(hdr)
    print("-" * len(hdr))
    first = None
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, shape) in enumerate(SHAPES.items()):
            cal = write_clip(Path(tmp) / f"cal{i}.mp4", head_turn_sequence(150), size=SIZE, shape=shape,
                             fov_deg=args.fov)
            tst = write_clip(Path(tmp) / f"test{i}.mp4", test_sequence(), size=SIZE, shape=shape, fov_deg=args.fov)
            cal_lm, _, cal_present = track(cal.path)
            lm, mp, present = track(tst.path)
            if first is None:
                first = (cal_lm, cal_present)
            t0 = time.perf_counter()
            calib = calibrate_shape(cal_lm, cal_present, *SIZE, canonical, fov_deg=args.fov)
            secs = time.perf_counter() - t0
            sp = ShapePose(calib)
            true_shape = canonical * np.asarray(shape)
            sp_true = ShapePose(true_shape, *SIZE, args.fov, points="basis")
            ours, theirs, bound = [], [], []
            for f in np.flatnonzero(present):
                truth = tst.rotations[f]
                ours.append(rotation_angle_deg(sp.solve(lm[f])[0][:3, :3], truth))
                bound.append(rotation_angle_deg(sp_true.solve(lm[f])[0][:3, :3], truth))
                theirs.append(rotation_angle_deg(rotation_part(mp[f]), truth))
            ours, theirs, bound = map(np.array, (ours, theirs, bound))
            ratios.append(1.0 - ours.mean() / theirs.mean())
            print(f"{name:26s} {theirs.mean():9.2f} /{theirs.max():5.2f}   {ours.mean():6.2f} /{ours.max():5.2f} "
                  f"{100 * ratios[-1]:10.0f}% {bound.mean():8.2f} /{bound.max():5.2f} {secs:8.1f} "
                  f"{calib.reprojection_px:9.2f}")
        print(f"mean improvement over the shapes: {100 * np.mean(ratios):.0f}% (target 35%)")
        t0 = time.perf_counter()
        est = calibrate_shape(*first, *SIZE, canonical, fov_deg=None)
        print(f"fov estimation (first shape, fov not given): {est.fov_deg:.1f} deg for a {args.fov:g} deg camera, "
              f"solved in {time.perf_counter() - t0:.1f} s, reprojection {est.reprojection_px:.2f} px")


if __name__ == "__main__":
    main()
