"""Performer face-shape calibration, run by hand: python bench/performer.py [--fov DEG] [--fovs DEG ...]

Renders, for three faces that are not MediaPipe's canonical one, a 5 s head-turn calibration
take (150 frames, yaw +-40, pitch +-20, roll +-10) and a separate 5 s test clip of fast turns
(yaw +-40, pitch +-20, roll +-15, up to ~110 deg/s), tracks both with the real MediaPipe
(landmarks kept in a temporary folder for this run only), and prints, measured in this one run:
  1. head rotation error on the test clip against the known rotations, mean and 90th percentile
     (degrees), per shape, for: the add-on's default pose without a face shape (FaceGeometry,
     fov known); MediaPipe's own facial transformation matrix; ShapePose on the shape calibrated
     with the fov known (its default method, and plain PnP); ShapePose on the shape calibrated
     with the fov estimated (and used at that fov); and, as a bound on what 2D landmarks
     allow, PnP on the TRUE shape at the true fov;
  2. per calibration: solve time, RMS reprojection, and the quality check's verdict;
  3. the field of view estimated from the calibration take (fov not given) against the truth,
     for every shape and every camera in --fovs.
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


def calibration_sequence(n: int = 150) -> np.ndarray:
    from blender_facemesh.core.testing.synthetic import head_turn_sequence

    return head_turn_sequence(n, yaw_amp=40.0, pitch_amp=20.0, roll_amp=10.0)


def test_sequence(n: int = 150, fps: float = 30.0) -> np.ndarray:
    """Fast turns, other frequencies and phases than the calibration take's."""
    t = np.arange(n) / fps
    return np.stack([40 * np.sin(2 * np.pi * 0.45 * t + 0.7), 20 * np.sin(2 * np.pi * 0.6 * t + 0.3),
                     15 * np.sin(2 * np.pi * 0.35 * t + 2.0)], axis=1)


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


class Clips:
    """Renders and tracks each (kind, shape, fov) clip once, into ``tmp``; landmarks cached on disk."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.render_s = self.track_s = 0.0

    def get(self, kind: str, shape, fov: float):
        from blender_facemesh.core.testing.synthetic import write_clip

        key = f"{kind}_{'_'.join(f'{s:g}' for s in shape)}_{fov:g}"
        npz = self.tmp / f"{key}.npz"
        if not npz.exists():
            t0 = time.perf_counter()
            eulers = calibration_sequence() if kind == "cal" else test_sequence()
            truth = write_clip(self.tmp / f"{key}.mp4", eulers, size=SIZE, shape=shape, fov_deg=fov)
            t1 = time.perf_counter()
            lm, mp, present = track(truth.path)
            self.render_s += t1 - t0
            self.track_s += time.perf_counter() - t1
            np.savez(npz, lm=lm, mp=mp, present=present, rot=truth.rotations)
            truth.path.unlink()
        with np.load(npz) as z:
            return {k: z[k] for k in z.files}


def _stats(err: np.ndarray) -> str:
    return f"{err.mean():5.2f} /{np.percentile(err, 90):5.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fov", type=float, default=50.0, help="the rendering camera's vertical fov for the pose table")
    ap.add_argument("--fovs", type=float, nargs="*", default=[40.0, 50.0, 63.0],
                    help="cameras (vertical fov, deg) on which the fov estimate is measured")
    args = ap.parse_args()
    from blender_facemesh.core.capture.model import load_model
    from blender_facemesh.core.faceshape.pose import ShapePose
    from blender_facemesh.core.faceshape.solver import calibrate_shape
    from blender_facemesh.core.rotations import rotation_angle_deg, rotation_part
    from blender_facemesh.core.solve.geometry import FaceGeometry

    t_run = time.perf_counter()
    model = load_model()
    canonical = model.canonical_vertices
    fov = args.fov
    print(f"{SIZE[0]}x{SIZE[1]}, cores: {os.cpu_count()}; pose table at fov {fov:g} deg; "
          "errors: test clip, mean / p90 degrees")
    cols = ["default (no shape)", "MediaPipe matrix", "shape, fov known", "  same, PnP",
            "shape, fov est.", "PnP true shape"]
    hdr = f"{'shape':26s}" + "".join(f"{c:>19s}" for c in cols)
    print(hdr)
    print("-" * len(hdr))
    calib_lines = []
    est_by = {}
    sums = {c: [] for c in cols}
    solve_times, frame_times = [], []  # speed lives here, not in the tests
    with tempfile.TemporaryDirectory() as tmp:
        clips = Clips(Path(tmp))
        for name, shape in SHAPES.items():
            cal = clips.get("cal", shape, fov)
            tst = clips.get("test", shape, fov)
            t0 = time.perf_counter()
            known = calibrate_shape(cal["lm"], cal["present"], *SIZE, canonical, fov_deg=fov)
            secs = time.perf_counter() - t0
            t0 = time.perf_counter()
            est = calibrate_shape(cal["lm"], cal["present"], *SIZE, canonical, fov_deg=None)
            secs_est = time.perf_counter() - t0
            est_by[(name, fov)] = est.fov_deg
            geo = FaceGeometry(canonical, model.procrustes_weights, *SIZE, fov)
            shape_poses = [ShapePose(known), ShapePose(known, method="pnp"), ShapePose(est),
                           ShapePose(canonical * np.asarray(shape), *SIZE, fov, points="basis", method="pnp")]
            solvers = [lambda lm, mp: rotation_part(geo.solve(lm)[0]), lambda lm, mp: rotation_part(mp)]
            solvers += [lambda lm, mp, sp=sp: sp.solve(lm)[0][:3, :3] for sp in shape_poses]
            row = []
            frames = np.flatnonzero(tst["present"])
            for c, solve in zip(cols, solvers):
                err = [rotation_angle_deg(solve(tst["lm"][f], tst["mp"][f]), tst["rot"][f]) for f in frames]
                err = np.asarray(err)
                sums[c].append(err)
                row.append(_stats(err))
            print(f"{name:26s}" + "".join(f"{r:>19s}" for r in row))
            solve_times.append(max(secs, secs_est))
            sp = shape_poses[0]
            sp.solve(tst["lm"][frames[0]])
            t0 = time.perf_counter()
            for f in frames:
                sp.solve(tst["lm"][f])
            frame_times.append((time.perf_counter() - t0) / len(frames))
            for what, cb, s in (("fov known", known, secs), ("fov estimated", est, secs_est)):
                probs = cb.quality_problems(canonical)
                calib_lines.append(f"  {name}, {what}: {s:.1f} s, reprojection {cb.reprojection_px:.2f} px, "
                                   f"fov {cb.fov_deg:.1f}; check: " + ("passes" if not probs else "; ".join(probs)))
        allrow = [_stats(np.concatenate(sums[c])) for c in cols]
        print(f"{'all shapes':26s}" + "".join(f"{r:>19s}" for r in allrow))
        print(f"(test clips: {len(frames)} frames each; calibration takes: 150 frames)")
        print("calibrations:")
        print("\n".join(calib_lines))
        worst, per_frame = max(solve_times), max(frame_times) * 1000
        print(f"goal calibration solve < 30 s: slowest {worst:.1f} s  {'PASS' if worst < 30 else 'FAIL'}")
        print(f"goal head pose on the face shape < 5 ms a frame: {per_frame:.2f} ms  "
              f"{'PASS' if per_frame < 5 else 'FAIL'}")

        print("field of view estimated from the calibration take (fov not given), deg:")
        print(f"{'true fov':>9s}" + "".join(f"{n[:13]:>15s}" for n in SHAPES) + f"{'worst error':>13s}")
        for true_fov in args.fovs:
            ests = []
            for name, shape in SHAPES.items():
                if (name, true_fov) not in est_by:
                    cal = clips.get("cal", shape, true_fov)
                    est_by[(name, true_fov)] = calibrate_shape(cal["lm"], cal["present"], *SIZE, canonical,
                                                               fov_deg=None).fov_deg
                ests.append(est_by[(name, true_fov)])
            worst = max(abs(e - true_fov) for e in ests)
            print(f"{true_fov:9.0f}" + "".join(f"{e:15.1f}" for e in ests) + f"{worst:+13.1f}")
        print(f"rendering {clips.render_s:.0f} s, tracking {clips.track_s:.0f} s, "
              f"whole run {time.perf_counter() - t_run:.0f} s")


if __name__ == "__main__":
    main()
