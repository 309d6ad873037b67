"""Smoothing and head-pose quality, run by hand: python bench/quality.py [--footage DIR]

Measured in one run and printed as one table (rows: raw MediaPipe values, each live preset,
each offline preset):
  * head-pose error (mean and p90, degrees) against the known rotation of synthetic clips with
    fast head turns (yaw +-40, pitch +-20, roll +-15, up to 90 deg/s, 30 fps; still for a second
    at each end), rendered at a known 50 degree field of view on three face shapes;
  * jitter on still stretches of the real clips (``../shared/footage`` or
    $BLENDER_FACEMESH_FOOTAGE; skipped when absent): RMS second difference of the head rotation
    and of the scores where the face is still, as a share of raw;
  * blink and jaw peak retention on the real clips (the output's peak beside each raw peak, as
    a share of it);
  * added delay in frames: the lag that best lines up the output's frame-to-frame changes with
    raw's (cross-correlation with sub-frame refinement), on head rotation (synthetic) and on the
    blink and jaw scores (real).
The clips are tracked once, raw; every row smooths those same raw values.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

SHAPES = {"canonical": (1.0, 1.0, 1.0), "wider 10%, deeper 15%": (1.10, 1.00, 1.15),
          "narrower 8%, flatter 10%": (0.92, 1.00, 0.90)}
FOV = 50.0
SIZE = (512, 512)


def footage_dir(arg: str | None) -> Path | None:
    for d in (arg, os.environ.get("BLENDER_FACEMESH_FOOTAGE"), Path(__file__).resolve().parents[2] / "shared" / "footage"):
        if d and Path(d).is_dir():
            return Path(d)
    return None


def track(path: Path, fov: float, cache: Path):
    """A raw take of a clip (kept in ``cache`` so every row works on the same frames)."""
    from blender_facemesh.core.capture.sources import VideoFileSource
    from blender_facemesh.core.solve.smoothing import Smoothing
    from blender_facemesh.core.take import Take
    from blender_facemesh.core.tracking.worker import WorkerSettings, track_take

    out = cache / f"{path.stem}_{fov:g}.npz"
    if out.is_file():
        return Take.load(out)
    take = track_take(VideoFileSource(path), WorkerSettings(smoothing=Smoothing.off(), fov_deg=fov))
    take.save(out)
    return take


# --- measures ---------------------------------------------------------------------------------


def _rot(mats: np.ndarray) -> np.ndarray:
    from blender_facemesh.core.rotations import rotation_part

    return np.array([rotation_part(m) for m in mats])


def pose_errors(mats: np.ndarray, truth: np.ndarray) -> np.ndarray:
    from blender_facemesh.core.rotations import rotation_angle_deg

    ok = np.isfinite(mats).all(axis=(1, 2))
    return np.array([rotation_angle_deg(a, b) for a, b in zip(_rot(mats[ok]), truth[ok])])


def rotation_degrees(mats: np.ndarray) -> np.ndarray:
    """Head rotation as a rotation vector (degrees) about the clip's first frame."""
    from blender_facemesh.core.rotations import rotation_log

    r = _rot(mats)
    return np.degrees(rotation_log(np.einsum("ji,njk->nik", r[0], r)))


def _moving_mean(x: np.ndarray, k: int = 15) -> np.ndarray:
    pad = np.pad(x, [(k // 2, k // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), pad]), axis=0)
    return (c[k:] - c[:-k]) / k


def still_frames(x: np.ndarray, fps: float, limit: float) -> np.ndarray:
    """Frames whose slow trend (a half-second mean) changes less than ``limit`` per second."""
    m = _moving_mean(x)
    speed = np.abs(np.gradient(m, axis=0)) * fps
    return speed.max(axis=1) < limit if speed.ndim > 1 else speed < limit


def jitter(x: np.ndarray, still: np.ndarray) -> float:
    d2 = np.zeros_like(x)
    d2[1:-1] = x[2:] - 2 * x[1:-1] + x[:-2]
    keep = still.copy()
    keep[[0, -1]] = False
    return float(np.sqrt((d2[keep] ** 2).mean())) if keep.any() else float("nan")


def peaks(x: np.ndarray, low: float = 0.3, prominence: float = 0.2, reach: int = 15) -> np.ndarray:
    """Frames of the clear peaks (blinks, jaw opens) of a raw score."""
    out = []
    for i in range(1, len(x) - 1):
        if x[i] >= low and x[i] >= x[i - 1] and x[i] > x[i + 1]:
            lo, hi = max(0, i - reach), min(len(x), i + reach + 1)
            if x[i] - min(x[lo:i].min(), x[i + 1:hi].min()) >= prominence and x[i] == x[lo:hi].max():
                out.append(i)
    return np.array(out, int)


def delay(out: np.ndarray, raw: np.ndarray, most: int = 6) -> float:
    """Frames by which ``out`` trails ``raw`` (positive: later), from frame-to-frame changes."""
    a, b = np.diff(out, axis=0), np.diff(raw, axis=0)
    n = len(a)
    lags = np.arange(-most, most + 1)
    # out[i + k] against raw[i]: the k that lines them up best is the delay
    cc = np.array([(a[max(0, k):n + min(0, k)] * b[max(0, -k):n - max(0, k)]).sum() for k in lags])
    i = int(np.argmax(cc))
    if 0 < i < len(cc) - 1:
        den = cc[i - 1] - 2 * cc[i] + cc[i + 1]
        return float(lags[i] + (0.5 * (cc[i - 1] - cc[i + 1]) / den if den else 0.0))
    return float(lags[i])


# --- rows -------------------------------------------------------------------------------------


def live(take, smoothing):
    """The take as the live path would have shown it (the causal filter, frame by frame)."""
    from blender_facemesh.core.solve.smoothing import LiveSmoother

    out_m, out_s = take.head_matrix.copy(), take.blendshapes.copy()
    f = LiveSmoother(smoothing)
    for i, t in enumerate(take.t):
        if take.face_ids[i, 0] >= 0:
            out_m[i, 0], s = f(take.head_matrix[i, 0], take.blendshapes[i, 0], t)
            out_s[i, 0] = s
    return out_m[:, 0], out_s[:, 0]


def offline(take, smoothing):
    from blender_facemesh.core.solve.smoothing import smooth_take

    s = smooth_take(take, smoothing)
    return s.head_matrix[:, 0], s.blendshapes[:, 0]


def measure(rows, real):
    """rows: (label, smoothing fn, synthetic (take, truth) pairs, whether the real clips apply)."""
    from blender_facemesh.core.channels import ARKIT_INDEX

    blink = [ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]]
    jaw = [ARKIT_INDEX["jawOpen"]]
    nan = float("nan")
    results = []
    for label, fn, synth, on_real in rows:
        errs, rot_delay = [], []
        for take, truth in synth:
            m, _ = fn(take)
            errs.append(pose_errors(m, truth))
            rot_delay.append(delay(rotation_degrees(m), rotation_degrees(take.head_matrix[:, 0])))
        per_shape = [e.mean() for e in errs]
        errs = np.concatenate(errs)
        jr, js, keep_b, keep_j, sc_delay = [], [], [], [], []
        for take in real if on_real else []:
            m, s = fn(take)
            rm, rs = take.head_matrix[:, 0], take.blendshapes[:, 0].astype(np.float64)
            rv, ov = rotation_degrees(rm), rotation_degrees(m)
            still = still_frames(rv, take.fps, 5.0)
            jr.append(jitter(ov, still) / jitter(rv, still))
            active = _moving_mean(rs) > 0.05
            st = still_frames(rs, take.fps, 0.5)
            num = den = 0.0
            for c in range(rs.shape[1]):
                k = st & active[:, c]  # the whole face still, this channel active
                if k.sum() > 10:
                    num += jitter(s[:, c:c + 1], k) ** 2
                    den += jitter(rs[:, c:c + 1], k) ** 2
            if den:
                js.append(np.sqrt(num / den))
            for cols, keep in ((blink, keep_b), (jaw, keep_j)):
                for c in cols:
                    for p in peaks(rs[:, c]):
                        keep.append(s[max(0, p - 1):p + 2, c].max() / rs[p, c])
            sc_delay.append(delay(s[:, blink + jaw], rs[:, blink + jaw]))
        mean = lambda v: float(np.mean(v)) if len(v) else nan  # noqa: E731
        results.append((label, errs.mean(), np.percentile(errs, 90), per_shape, mean(jr), mean(js),
                        mean(keep_b), mean(keep_j), mean(rot_delay), mean(sc_delay)))
    return results


def calibrate(cache: Path, shape, fov_known: bool):
    """The performer's face shape from a head-turn calibration clip of this face (yaw +-40,
    pitch +-20), with the field of view given or estimated."""
    from blender_facemesh.core import faceshape
    from blender_facemesh.core.capture.model import load_model
    from blender_facemesh.core.testing.synthetic import head_turn_sequence, write_clip

    clip = cache / f"calibration_{'_'.join(f'{v:g}' for v in shape)}.mp4"
    if not clip.is_file():
        write_clip(clip, head_turn_sequence(150, 40.0, 20.0, 10.0), size=SIZE, shape=shape, fov_deg=FOV)
    take = track(clip, FOV, cache)
    return faceshape.from_take(take, load_model().canonical_vertices, fov_deg=FOV if fov_known else None)


def track_with_shape(path: Path, calib, cache: Path, tag: str):
    from blender_facemesh.core.capture.sources import VideoFileSource
    from blender_facemesh.core.solve.smoothing import Smoothing
    from blender_facemesh.core.take import Take
    from blender_facemesh.core.tracking.worker import WorkerSettings, track_take

    out = cache / f"{path.stem}_{tag}.npz"
    if out.is_file():
        return Take.load(out)
    take = track_take(VideoFileSource(path), WorkerSettings(smoothing=Smoothing.off(), fov_deg=calib.fov_deg,
                                                            face_shape=calib))
    take.save(out)
    return take


def plot(out: Path, synth, real) -> None:
    """Raw, live and offline (Balanced) curves over time: the yaw of a fast synthetic turn with its
    truth, and a real clip's blink and jaw, so the lag and the kept peaks can be seen."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from blender_facemesh.core.channels import ARKIT_INDEX
    from blender_facemesh.core.rotations import matrix_to_euler
    from blender_facemesh.core.solve.smoothing import Smoothing

    fig = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(3, 1, 1)
    take, truth = synth[0]
    t = take.t
    yaw = lambda mats: [matrix_to_euler(_rot(m[None])[0])[0] for m in mats]  # noqa: E731
    ax.plot(t, [matrix_to_euler(r)[0] for r in truth], color="0.6", lw=3, label="truth")
    ax.plot(t, yaw(take.head_matrix[:, 0]), lw=1, label="raw")
    ax.plot(t, yaw(live(take, Smoothing())[0]), lw=1, label="live balanced")
    ax.plot(t, yaw(offline(take, Smoothing())[0]), lw=1, label="offline balanced")
    ax.set_ylabel("head yaw (deg)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("fast synthetic head turns (top); a real clip, studio_jaw_blink_smile (below)", fontsize=9)
    clip = next((r for r in real if "jaw_blink" in str(r.source.get("name", ""))), real[0] if real else None)
    for row, name in ((2, "eyeBlinkLeft"), (3, "jawOpen")):
        ax = fig.add_subplot(3, 1, row)
        if clip is None:
            continue
        c = ARKIT_INDEX[name]
        ax.plot(clip.t, clip.blendshapes[:, 0, c], lw=1, label="raw")
        ax.plot(clip.t, live(clip, Smoothing())[1][:, c], lw=1, label="live balanced")
        ax.plot(clip.t, offline(clip, Smoothing())[1][:, c], lw=1, label="offline balanced")
        ax.set_ylabel(name)
    ax.set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(str(out))


def _cell(v, fmt, pct=False):
    if v != v:  # NaN: not measured for this row
        return "-"
    return format(100 * v if pct else v, fmt) + ("%" if pct else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--footage", help="folder of real clips (default: $BLENDER_FACEMESH_FOOTAGE or ../shared/footage)")
    ap.add_argument("--keep", help="keep the tracked takes in this folder and reuse them next time")
    ap.add_argument("--no-calibration", action="store_true", help="leave out the calibrated rows (faster)")
    ap.add_argument("--plot", help="also draw raw, live and offline curves into this PNG")
    args = ap.parse_args()
    from blender_facemesh.core.rotations import euler_to_matrix
    from blender_facemesh.core.solve.smoothing import PRESETS, Smoothing
    from blender_facemesh.core.testing.synthetic import fast_turn_sequence, write_clip

    footage = footage_dir(args.footage)
    rotations = np.array([euler_to_matrix(*e) for e in fast_turn_sequence()])
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.keep) if args.keep else Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        clips = []
        for i, shape in enumerate(SHAPES.values()):
            clip = cache / f"fast_turn_{i}.mp4"
            if not clip.is_file():
                write_clip(clip, fast_turn_sequence(), size=SIZE, shape=shape, fov_deg=FOV)
            clips.append(clip)
        synth = [(track(c, FOV, cache), rotations) for c in clips]
        real = [track(p, 63.0, cache) for p in sorted(footage.glob("*.mp4"))] if footage else []
        if not real:
            print("no real footage found: jitter and peak columns are empty", file=sys.stderr)
        as_is = lambda t: (t.head_matrix[:, 0], t.blendshapes[:, 0].astype(np.float64))  # noqa: E731
        rows = [("raw", as_is, synth, True)]
        for p in PRESETS[1:]:
            rows.append((f"live {p.lower()}", lambda t, s=Smoothing.from_preset(p): live(t, s), synth, True))
        for p in PRESETS[1:]:
            rows.append((f"offline {p.lower()}", lambda t, s=Smoothing.from_preset(p): offline(t, s), synth, True))
        if not args.no_calibration:
            balanced = lambda t: offline(t, Smoothing())  # noqa: E731
            live_balanced = lambda t: live(t, Smoothing())  # noqa: E731
            for known in (True, False):
                calibs = [calibrate(cache, shape, known) for shape in SHAPES.values()]
                tag = "shape_fov_known" if known else "shape_fov_estimated"
                shaped = [(track_with_shape(c, cal, cache, tag), rotations) for c, cal in zip(clips, calibs)]
                how = "fov known" if known else "fov estimated"
                notes.append(f"face shape, {how}: fov " + ", ".join(f"{c.fov_deg:.1f}" for c in calibs)
                             + f" deg (truth {FOV:g}); quality check "
                             + ", ".join("passed" if not _problems(c) else "; ".join(_problems(c)) for c in calibs))
                rows.append((f"raw + shape, {how}", as_is, shaped, False))
                rows.append((f"live bal. + shape, {how}", live_balanced, shaped, False))
                rows.append((f"offline bal. + shape, {how}", balanced, shaped, False))
        results = measure(rows, real)
        if args.plot:
            plot(Path(args.plot), synth, real)
    print(f"synthetic: {len(synth)} face shapes ({', '.join(SHAPES)}) x {len(rotations)} frames, fast turns "
          f"(yaw +-40, pitch +-20, roll +-15, up to 90 deg/s), fov {FOV:g}; real clips: {len(real)} "
          f"({sum(len(t) for t in real)} frames)")
    hdr = (f"| {'row':36s} | head err mean | p90  | per shape          | head jitter | score jitter | blink peak "
           f"| jaw peak | delay head | delay scores |")
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for label, mean, p90, per, jr, js, kb, kj, dr, ds in results:
        shapes = " / ".join(f"{v:.2f}" for v in per)
        print(f"| {label:36s} | {mean:13.2f} | {p90:4.2f} | {shapes:18s} | {_cell(jr, '10.0f', True):>11s} "
              f"| {_cell(js, '11.0f', True):>12s} | {_cell(kb, '9.0f', True):>10s} | {_cell(kj, '7.0f', True):>8s} "
              f"| {dr:10.2f} | {_cell(ds, '12.2f'):>12s} |")
    for n in notes:
        print(n)
    return 0


def _problems(calib) -> list[str]:
    check = getattr(calib, "quality_problems", None)
    return list(check()) if check is not None else []


if __name__ == "__main__":
    sys.exit(main())
