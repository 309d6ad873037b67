"""A tracking report for a take: coverage, head-pose range, blendshape ranges, jitter; text and plot.

Head angles are absolute, in camera space, in :mod:`..rotations`' convention
``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` of the head's rotation (canonical face -> camera; camera
+X right, +Y up, +Z toward the viewer): yaw > 0 turns the nose toward image right, pitch > 0
tips it down, roll > 0 tilts the head's top toward image left. A frontal face is (0, 0, 0).

Jitter is measured where the head is still: a frame is still when the head's rotation speed,
taken across a window of about 0.2 s (so that jitter itself does not count as motion), is
below ``still_deg_s``, and still frames count only in unbroken runs of ``min_still_s`` or more.
There the report gives the RMS frame-to-frame change of the head rotation (degrees), its
position (cm), the blendshapes (0..1 units, all channels) and the landmarks (pixels).

numpy only at import; matplotlib (Agg, through its object API: no pyplot, no global backend
switch) only inside :func:`plot_report`. NEVER imports bpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..channels import ARKIT_NAMES
from ..errors import SettingsError
from ..rotations import matrix_to_euler, rotation_part

CONVENTION = ("absolute, camera space, R = Ry(yaw) Rx(pitch) Rz(roll):\n"
              "  yaw > 0 nose to image right, pitch > 0 nose down, roll > 0 head top to image left")
STILL_DEG_S = 5.0
MIN_STILL_S = 0.5
PLOT_CHANNELS = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")


def _stats(a) -> dict | None:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    if not a.size:
        return None
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())}


def _rms(a) -> float | None:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a * a))) if a.size else None


def head_angles(head_matrix: np.ndarray) -> np.ndarray:
    """(n, 4, 4) poses -> (n, 3) yaw, pitch, roll in degrees (NaN rows where a pose is NaN)."""
    out = np.full((len(head_matrix), 3), np.nan)
    for i, m in enumerate(head_matrix):
        if np.isfinite(m).all():
            out[i] = matrix_to_euler(rotation_part(m))
    return out


def _rotations(head_matrix: np.ndarray, present: np.ndarray) -> np.ndarray:
    rots = np.full((len(head_matrix), 3, 3), np.nan)
    for i in np.flatnonzero(present):
        if np.isfinite(head_matrix[i]).all():
            rots[i] = rotation_part(head_matrix[i])
    return rots


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angles between stacks of rotations (accurate for tiny angles, like geometry's)."""
    d = np.linalg.norm((a - b).reshape(len(a), -1), axis=1) / (2.0 * np.sqrt(2.0))
    return np.degrees(2.0 * np.arcsin(np.minimum(1.0, d)))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) inclusive index pairs of the True runs of a bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


def still_frames(t: np.ndarray, rots: np.ndarray, fps: float, still_deg_s: float = STILL_DEG_S,
                 min_still_s: float = MIN_STILL_S) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(n,) bool still mask and its runs; ``rots`` (n, 3, 3) NaN where there is no face."""
    n = len(t)
    ok = np.isfinite(rots).all(axis=(1, 2))
    if n < 2:
        return np.zeros(n, bool), []
    if not ok.any():
        return np.zeros(n, bool), []  # no face anywhere: nothing is still
    k = max(1, int(round(0.1 * fps)))
    i = np.arange(n)
    a, b = np.clip(i - k, 0, n - 1), np.clip(i + k, 0, n - 1)
    gaps = np.concatenate([[0], np.cumsum(~ok)])
    whole = (gaps[b + 1] - gaps[a]) == 0                       # a face in every frame of the window
    span = np.maximum(t[b] - t[a], 1e-9)
    speed = np.full(n, np.inf)
    speed[whole] = _angle_deg(rots[a[whole]], rots[b[whole]]) / span[whole]
    still = whole & (speed < still_deg_s)
    runs = [(s, e) for s, e in _runs(still) if t[e] - t[s] + 1.0 / fps >= min_still_s - 1e-6]
    keep = np.zeros(n, bool)
    for s, e in runs:
        keep[s:e + 1] = True
    return keep, runs


def take_report(take, face_id: int | None = None, still_deg_s: float = STILL_DEG_S,
                min_still_s: float = MIN_STILL_S) -> dict:
    """The report as a plain (JSON-ready) dict; per-face numbers are for ``face_id`` (default:
    the take's first face), coverage counts any face."""
    any_face = take.face_present            # a property: folds in samples still pending
    ids = take.face_ids
    if face_id is None:
        seen = ids[ids >= 0]
        face_id = int(seen[0]) if seen.size else 0
    tr = take.face_track(face_id)
    t, fps, n = np.asarray(take.t, np.float64), float(take.fps), len(take.t)
    present = tr["present"]
    dropped = take.meta.get("frames_dropped")
    d = {
        "source": take.source.get("name", ""), "size": [take.width, take.height], "fps": fps,
        "duration_s": float(take.duration), "frames": n,
        "frames_with_face": int(any_face.sum()), "frames_without_face": int(n - any_face.sum()),
        "frames_dropped": None if dropped is None else int(dropped),
        "frames_missing_by_time": int(max(0, round(take.duration * fps) + 1 - n)) if n else 0,
        "face_id": int(face_id), "face_frames": int(present.sum()),
        "faces_seen": sorted(int(v) for v in np.unique(ids[ids >= 0])),
    }
    hm = tr["head_matrix"]
    ang = head_angles(np.where(present[:, None, None], hm, np.nan))
    d["head_pose"] = {"convention": CONVENTION,
                      **{name: _stats(ang[:, k]) for k, name in enumerate(("yaw", "pitch", "roll"))},
                      "distance_cm": _stats(-hm[present, 2, 3])}
    bs = tr["blendshapes"][present]
    d["blendshapes"] = {name: _stats(bs[:, k]) for k, name in enumerate(ARKIT_NAMES)}

    rots = _rotations(hm, present)
    still, runs = still_frames(t, rots, fps, still_deg_s, min_still_s)
    pairs = np.flatnonzero(still[:-1] & still[1:]) if n > 1 else np.zeros(0, np.int64)
    jit = {"still_deg_s": still_deg_s, "min_still_s": min_still_s, "still_frames": int(still.sum()),
           "stretches": [[float(t[s]), float(t[e])] for s, e in runs], "pairs": int(len(pairs)),
           "rotation_deg_rms": None, "translation_cm_rms": None, "blendshapes_rms": None,
           "blendshapes_worst": None, "landmarks_px_rms": None}
    if len(pairs):
        jit["rotation_deg_rms"] = _rms(_angle_deg(rots[pairs], rots[pairs + 1]))
        jit["translation_cm_rms"] = _rms(np.linalg.norm(hm[pairs + 1, :3, 3] - hm[pairs, :3, 3], axis=1))
        db = tr["blendshapes"][pairs + 1].astype(np.float64) - tr["blendshapes"][pairs]
        jit["blendshapes_rms"] = _rms(db)
        per = [(_rms(db[:, k]) or 0.0, name) for k, name in enumerate(ARKIT_NAMES)]
        worst = max(per)
        jit["blendshapes_worst"] = {"channel": worst[1], "rms": worst[0]}
        if take.has("landmarks"):  # CSV and JSON takes carry none
            lm = tr["landmarks"][:, :, :2].astype(np.float64) * (take.width, take.height)
            jit["landmarks_px_rms"] = _rms(np.linalg.norm(lm[pairs + 1] - lm[pairs], axis=2))
    d["jitter"] = jit
    return d


def _f(v, fmt="{:.2f}", none="-") -> str:
    return none if v is None else fmt.format(v)


def format_report(d: dict) -> str:
    """The report as aligned plain text."""
    n = max(d["frames"], 1)
    w, h = d["size"]
    lines = [f"Take: {d['source'] or '(no source)'}",
             f"  {w}x{h}, {d['fps']:.2f} fps, {d['duration_s']:.2f} s",
             f"  frames               {d['frames']:>7}",
             f"  with a face          {d['frames_with_face']:>7}  ({100 * d['frames_with_face'] / n:.1f}%)",
             f"  without a face       {d['frames_without_face']:>7}  ({100 * d['frames_without_face'] / n:.1f}%)",
             f"  dropped              {_f(d['frames_dropped'], '{:>7}', '    n/a')}",
             f"  missing by time      {d['frames_missing_by_time']:>7}",
             f"  face ids             {', '.join(map(str, d['faces_seen'])) or 'none':>7}"
             f"  (below: face {d['face_id']}, {d['face_frames']} frames)",
             "", "Head pose (degrees; " + d["head_pose"]["convention"] + ")",
             f"  {'':<12}{'min':>8}{'max':>8}{'mean':>8}"]
    for k in ("yaw", "pitch", "roll", "distance_cm"):
        s = d["head_pose"][k] or {}
        lines.append(f"  {k:<12}" + "".join(f"{_f(s.get(c), '{:.1f}'):>8}" for c in ("min", "max", "mean")))
    j = d["jitter"]
    lines += ["", f"Jitter on still stretches (head slower than {j['still_deg_s']:g} deg/s for "
                  f">= {j['min_still_s']:g} s): {j['still_frames']} still frames in {len(j['stretches'])} stretches"]
    if j["pairs"]:
        worst = j["blendshapes_worst"]
        lines += [f"  head rotation        {_f(j['rotation_deg_rms'], '{:.3f}'):>8} deg rms, frame to frame",
                  f"  head position        {_f(j['translation_cm_rms'], '{:.3f}'):>8} cm rms",
                  f"  blendshapes          {_f(j['blendshapes_rms'], '{:.4f}'):>8} rms "
                  f"(worst: {worst['channel']} {worst['rms']:.4f})",
                  f"  landmarks            {_f(j['landmarks_px_rms'], '{:.3f}'):>8} px rms"]
    else:
        lines.append("  no still stretch found")
    lines += ["", f"Blendshapes{'':<15}{'min':>7}{'max':>7}{'mean':>7}"]
    for name, s in d["blendshapes"].items():
        if s is None:
            lines.append(f"  {name:<24}{'-':>7}{'-':>7}{'-':>7}")
            continue
        bar = "#" * int(round(10 * max(0.0, min(1.0, s["max"]))))
        lines.append(f"  {name:<24}{s['min']:>7.2f}{s['max']:>7.2f}{s['mean']:>7.2f}  {bar}")
    return "\n".join(lines) + "\n"


def plot_report(take, out_png, channels=None, face_id: int | None = None, size=(1000, 600)) -> Path:
    """A PNG (``size`` pixels) of the main blendshapes and the head's yaw/pitch/roll over the
    take's time (seconds of the video), shaded where the face is missing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    channels = tuple(channels or PLOT_CHANNELS)
    unknown = [c for c in channels if c not in ARKIT_NAMES]
    if unknown:
        raise SettingsError(f"unknown blendshape channel(s) {', '.join(unknown)}; use ARKit names")
    tr = take.face_track(face_id)           # default: the first face; also folds in pending samples
    t, present = np.asarray(take.t, np.float64), tr["present"]
    ang = head_angles(np.where(present[:, None, None], tr["head_matrix"], np.nan))
    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for c in channels:
        top.plot(t, tr["blendshapes"][:, ARKIT_NAMES.index(c)], lw=1.2, label=c)
    top.set_ylim(-0.02, 1.02)
    top.set_ylabel("blendshape")
    for k, (name, colour) in enumerate((("yaw", "tab:red"), ("pitch", "tab:green"), ("roll", "tab:blue"))):
        bottom.plot(t, ang[:, k], lw=1.2, color=colour, label=name)
    bottom.set_ylabel("head (deg)")
    bottom.set_xlabel("time (s)")
    half = 0.5 / take.fps if take.fps else 0.0
    missing = _runs(~present)
    for ax in (top, bottom):
        for r, (s, e) in enumerate(missing):
            ax.axvspan(t[s] - half, t[e] + half, color="0.6", alpha=0.35, lw=0,
                       label="no face" if (ax is top and r == 0) else None)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, ncols=4 if ax is top else 3)
    if len(t):
        top.set_xlim(t[0] - half, t[-1] + half)
    name = Path(str(take.source.get("name", ""))).name
    top.set_title(f"{name}  ({len(t)} frames, face in {int(present.sum())})", fontsize=10)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
