"""Smoothing of tracked channels, chosen per face region, offline (no lag) and live (causal).

Takes keep MediaPipe's raw per-frame values; smoothing is applied when a take is baked,
exported or drives the rig live, so changing it never needs the video tracked again.

- **Offline** (files and recorded takes): local polynomial fits around each frame, looking at
  the frames after as well as before, so nothing is delayed. Each frame gets the widest window
  whose fit still agrees with all narrower ones (the intersection-of-confidence-intervals rule,
  Katkovnik's LPA-ICI): still stretches get a wide window (jitter gone), blinks and fast turns
  a narrow one (peaks and timing kept). Rotations are smoothed as rotation vectors about the
  stretch's mean rotation, so they stay rotations.
- **Live**: One Euro filters (``filters.py``) per region, the head rotation filtered as a
  rotation vector in degrees with one cut-off from its angular speed.

The numbers behind each level were chosen by ``bench/quality.py`` (see the README's table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..channels import ARKIT_NAMES
from ..errors import SettingsError
from ..rotations import det3, rodrigues, rotation_log, rotation_part
from .filters import OneEuroFilter, OneEuroSettings, smoothing_factor

REGIONS = ("eyes", "brows", "mouth", "head_rotation", "head_position")
REGION_LABELS = {"eyes": "Eyes", "brows": "Brows", "mouth": "Mouth and Jaw",
                 "head_rotation": "Head Rotation", "head_position": "Head Position"}
LEVELS = ("OFF", "RESPONSIVE", "BALANCED", "SMOOTH")
PRESETS = ("RAW", "RESPONSIVE", "BALANCED", "SMOOTH")


def _score_region(name: str) -> str:
    if name.startswith("eye"):
        return "eyes"
    if name.startswith("brow"):
        return "brows"
    return "mouth"  # jaw, mouth, cheeks, nose, tongue: they move with the mouth


SCORE_REGIONS = np.array([_score_region(n) for n in ARKIT_NAMES])

# Offline: (widest half-window in seconds, ICI threshold, the change that counts as noise in
# the channel's units: scores 0..1, rotation degrees, position cm). Live: One Euro's (min
# cut-off Hz, beta) in the same units per second. Chosen by bench/quality.py: at BALANCED the
# offline smoother leaves about a quarter of raw's head jitter and two fifths of the scores',
# keeps 97% of blink and 99% of jaw peaks and adds no delay. Larger score tolerances cut more
# jitter but were seen to round off jaw snaps (the mouth starting to open before it does), so
# they stay small. The live filter adds about 0.2 degrees of head error on 90 deg/s turns.
_OFFLINE = {
    "eyes": {"RESPONSIVE": (0.5, 2.0, 0.015), "BALANCED": (0.7, 2.0, 0.025), "SMOOTH": (0.9, 2.0, 0.04)},
    "scores": {"RESPONSIVE": (0.5, 2.0, 0.015), "BALANCED": (0.7, 2.0, 0.025), "SMOOTH": (0.9, 2.0, 0.04)},
    "rotation": {"RESPONSIVE": (0.3, 2.0, 0.3), "BALANCED": (0.5, 2.0, 0.6), "SMOOTH": (0.7, 2.0, 1.0)},
    "position": {"RESPONSIVE": (0.3, 2.0, 0.05), "BALANCED": (0.5, 2.0, 0.1), "SMOOTH": (0.7, 2.0, 0.2)},
}
_LIVE = {
    "scores": {"RESPONSIVE": (1.5, 5.0), "BALANCED": (0.7, 5.0), "SMOOTH": (0.5, 3.0)},
    "rotation": {"RESPONSIVE": (0.5, 0.3), "BALANCED": (0.3, 0.2), "SMOOTH": (0.2, 0.15)},
    "position": {"RESPONSIVE": (1.0, 0.5), "BALANCED": (0.5, 0.3), "SMOOTH": (0.3, 0.1)},
}
_REACH = 5  # frames: how far a narrow window spreads to its neighbours
_EASE = 5  # frames: the span over which the window changes (= _REACH: a peak keeps its narrow window)
_ORDER = 2  # local quadratic fits (quartic kept peaks no better and left more jitter)
_MAX_GAP_S = 0.25  # frames further apart than this are smoothed as separate stretches


@dataclass
class Smoothing:
    """How much each face region is smoothed: one of LEVELS per region. ``preset`` names the
    preset it came from ("CUSTOM" once a region is changed by hand), for reports."""

    eyes: str = "BALANCED"
    brows: str = "BALANCED"
    mouth: str = "BALANCED"
    head_rotation: str = "BALANCED"
    head_position: str = "BALANCED"
    preset: str = "BALANCED"

    def __post_init__(self):
        self.validate()

    @classmethod
    def from_preset(cls, name: str) -> "Smoothing":
        """Every region at the preset's level (RAW: smoothing off); the measurements found no
        region that wants a different level from the rest (see bench/quality.py)."""
        name = str(name).upper()
        if name in PRESETS:
            level = "OFF" if name == "RAW" else name
            return cls(*([level] * len(REGIONS)), preset=name)
        raise SettingsError(f"unknown smoothing preset {name!r}: use one of {', '.join(p.lower() for p in PRESETS)}")

    @classmethod
    def off(cls) -> "Smoothing":
        return cls.from_preset("RAW")

    def with_regions(self, **levels) -> "Smoothing":
        """A copy with some regions set by hand (None leaves a region as it is)."""
        d = self.as_dict()
        for region, level in levels.items():
            if region not in REGIONS:
                raise SettingsError(f"unknown smoothing region {region!r}: use one of {', '.join(REGIONS)}")
            if level is not None and str(level).upper() != d[region]:
                d[region], d["preset"] = str(level).upper(), "CUSTOM"
        return Smoothing(**d)

    @property
    def enabled(self) -> bool:
        return any(self.level(r) != "OFF" for r in REGIONS)

    def level(self, region: str) -> str:
        return getattr(self, region)

    def validate(self) -> None:
        for r in REGIONS:
            level = str(getattr(self, r)).upper()
            if level not in LEVELS:
                raise SettingsError(f"smoothing for {REGION_LABELS[r].lower()} must be one of "
                                    f"{', '.join(v.lower() for v in LEVELS)}, not {getattr(self, r)!r}")
            setattr(self, r, level)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Smoothing":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(d).items() if k in names})

    def describe(self) -> str:
        if self.preset != "CUSTOM":
            return self.preset.lower()
        return ", ".join(f"{REGION_LABELS[r].lower()} {self.level(r).lower()}" for r in REGIONS)


# --- offline: local polynomial fits with adaptive windows ------------------------------------


def _kernel(h: int, order: int = 2) -> np.ndarray:
    """Weights (2h+1) of a local polynomial fit's value at the centre (Epanechnikov-weighted)."""
    if h == 0:
        return np.ones(1)
    i = np.arange(-h, h + 1, dtype=np.float64)
    w = 1.0 - (i / (h + 1)) ** 2
    x = np.stack([i ** p for p in range(min(order, 2 * h) + 1)], axis=1)
    a = x.T @ (w[:, None] * x)
    return (np.linalg.solve(a, x.T * w))[0]


def _widths(h_max: int) -> list[int]:
    """Half-widths tried, from the raw frame (0) up to ``h_max``, about 1.5x apart."""
    out, h = [0], 1
    while h < h_max:
        h = min(h_max, max(h + 1, int(round(h * 1.5))))
        out.append(h)
    # (h = 1 is left out: a quadratic through three frames is the middle frame itself)
    return out


def _erode_and_ease(idx: np.ndarray, reach: int, ease: int) -> np.ndarray:
    """The chosen window per frame, made to change gradually: each frame takes the narrowest
    choice within ``reach`` frames (a blink's neighbours stay narrow too), then a moving mean
    over the same span, so the output never jumps where the window changes."""
    n = len(idx)
    pad = np.pad(idx, [(reach, reach)] + [(0, 0)] * (idx.ndim - 1), mode="edge")
    low = np.min(np.stack([pad[j:j + n] for j in range(2 * reach + 1)]), axis=0)
    pad = np.pad(low, [(ease, ease)] + [(0, 0)] * (idx.ndim - 1), mode="edge")
    return np.mean(np.stack([pad[j:j + n] for j in range(2 * ease + 1)]), axis=0)


def lpa_ici(x: np.ndarray, sigma: np.ndarray, h_max: int, gamma: float, joint: bool = False) -> np.ndarray:
    """Zero-lag adaptive smoothing of (N, C) evenly spaced samples. ``sigma`` (C,): the change
    in each channel that counts as noise; ``joint``: one window per frame for all channels (a
    rotation vector's components must not be smoothed by different amounts)."""
    x = np.asarray(x, np.float64)
    n, c = x.shape
    h_max = int(min(h_max, (n - 1) // 2))
    if n < 3 or h_max < 2:
        return x.copy()
    # odd reflection at the ends keeps a straight-line trend straight (no pull toward the end value)
    pad = np.concatenate([2 * x[:1] - x[h_max:0:-1], x, 2 * x[-1:] - x[-2:-h_max - 2:-1]])
    lower = np.full((n, c), -np.inf)
    upper = np.full((n, c), np.inf)
    alive = np.ones((n, 1 if joint else c), bool)
    chosen = np.zeros(alive.shape)
    ys = []
    for i, h in enumerate(_widths(h_max)):
        k = _kernel(h, _ORDER)
        y = np.zeros((n, c))
        for j, kj in enumerate(k):
            y += kj * pad[h_max - h + j: h_max - h + j + n]
        ys.append(y)
        half = gamma * sigma * np.sqrt((k * k).sum())
        lower, upper = np.maximum(lower, y - half), np.minimum(upper, y + half)
        ok = lower <= upper
        alive &= ok.all(axis=1, keepdims=True) if joint else ok
        chosen[alive] = i
        if not alive.any():
            break
    soft = _erode_and_ease(chosen, _REACH, _EASE)
    lo = np.floor(soft).astype(int)
    hi = np.minimum(lo + 1, len(ys) - 1)
    frac = soft - lo
    stack = np.stack(ys)  # (widths, n, c): between the two nearest widths, linearly
    rows, cols = np.indices((n, c))
    lo, hi, frac = (np.broadcast_to(a, (n, c)) for a in (lo, hi, frac))
    return (1 - frac) * stack[lo, rows, cols] + frac * stack[hi, rows, cols]


def _segments(t: np.ndarray, present: np.ndarray) -> list[np.ndarray]:
    """Index runs of frames with a face and no long time gap between neighbours."""
    idx = np.flatnonzero(present)
    if not idx.size:
        return []
    breaks = (np.diff(idx) > 1) | (np.diff(t[idx]) > _MAX_GAP_S)
    return np.split(idx, np.flatnonzero(breaks) + 1)


def _frames(seconds: float, dt: float) -> int:
    return int(round(seconds / dt)) if dt > 0 else 0


def smooth_scores(scores: np.ndarray, t: np.ndarray, present: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """(N, 52) scores smoothed per region with no lag; frames without a face stay as they are."""
    out = np.array(scores, np.float64, copy=True)
    for seg in _segments(t, present):
        dt = float(np.median(np.diff(t[seg]))) if len(seg) > 1 else 0.0
        for region in ("eyes", "brows", "mouth"):
            level = smoothing.level(region)
            if level == "OFF":
                continue
            cols = np.flatnonzero(SCORE_REGIONS == region)
            h_s, gamma, tol = _OFFLINE["eyes" if region == "eyes" else "scores"][level]
            x = out[np.ix_(seg, cols)]
            y = lpa_ici(x, np.full(len(cols), tol), _frames(h_s, dt), gamma)
            out[np.ix_(seg, cols)] = np.clip(y, 0.0, 1.0)
    return out


def smooth_poses(mats: np.ndarray, t: np.ndarray, present: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """(N, 4, 4) head poses (rotation with scale, translation in cm) smoothed with no lag:
    rotation as a rotation vector about each stretch's mean, translation as a vector."""
    out = np.array(mats, np.float64, copy=True)
    rot_level, pos_level = smoothing.level("head_rotation"), smoothing.level("head_position")
    for seg in _segments(t, present):
        dt = float(np.median(np.diff(t[seg]))) if len(seg) > 1 else 0.0
        m = out[seg]
        if rot_level != "OFF":
            scale = np.cbrt([det3(a[:3, :3]) for a in m])
            r = m[:, :3, :3] / scale[:, None, None]
            ref = rotation_part(r.sum(axis=0))  # the chordal mean: the sum projected onto rotations
            w = rotation_log(np.einsum("ji,njk->nik", ref, r))
            h_s, gamma, tol = _OFFLINE["rotation"][rot_level]
            w = lpa_ici(w, np.full(3, np.radians(tol)), _frames(h_s, dt), gamma, joint=True)
            out[seg, :3, :3] = (ref @ rodrigues(w)) * scale[:, None, None]
        if pos_level != "OFF":
            h_s, gamma, tol = _OFFLINE["position"][pos_level]
            out[seg, :3, 3] = lpa_ici(m[:, :3, 3], np.full(3, tol), _frames(h_s, dt), gamma, joint=True)
    return out


def smooth_take(take, smoothing: Smoothing):
    """A copy of ``take`` with every face's pose and scores smoothed offline (landmarks and
    mesh stay raw). The take itself is not changed: it keeps the raw values. A take from an
    older version, filtered while it was tracked, is not smoothed twice (see :func:`raw_take`)."""
    from ..take import Take

    raw = raw_take(take)
    done = smoothing.as_dict() if raw else "smoothed when tracked (an older take): left as it is"
    out = Take(take.fps, take.width, take.height, take.source, {**take.meta, "smoothing": done})
    arrays = {k: getattr(take, k) for k in take.arrays}  # the properties: recorded frames are flushed
    out.t, out.frame_index, out.face_ids = take.t, take.frame_index, take.face_ids
    if smoothing.enabled and len(take.t) and raw:
        ids = take.face_ids
        mats, scores = arrays["head_matrix"].copy(), arrays["blendshapes"].copy()
        for fid in np.unique(ids[ids >= 0]):
            rows, cols = np.nonzero(ids == fid)
            order = np.argsort(rows)
            rows, cols = rows[order], cols[order]
            present = np.isfinite(mats[rows, cols]).all(axis=(1, 2)) & np.isfinite(scores[rows, cols]).all(axis=1)
            tt = take.t[rows]
            mats[rows, cols] = smooth_poses(mats[rows, cols], tt, present, smoothing)
            scores[rows, cols] = smooth_scores(scores[rows, cols].astype(np.float64), tt, present,
                                               smoothing).astype(scores.dtype)
        arrays["head_matrix"], arrays["blendshapes"] = mats, scores
    out.arrays = arrays
    return out


def raw_take(take) -> bool:
    """Whether a take holds raw values: takes from before smoothing moved to baking were
    filtered while tracking (their header says so under ``filters``)."""
    f = take.meta.get("filters")
    if not isinstance(f, dict):
        return True
    return not any(isinstance(v, dict) and v.get("enabled", True) for v in f.values())


# --- live: causal One Euro per region -------------------------------------------------------


def _live_settings(kind: str, level: str) -> OneEuroSettings:
    if level == "OFF":
        return OneEuroSettings(enabled=False)
    cut, beta = _LIVE[kind][level]
    return OneEuroSettings(min_cutoff=cut, beta=beta)


class _SpeedEuro:
    """One Euro on a vector whose cut-off follows the vector's speed (its norm), so a rotation
    vector's components are smoothed alike and a turn about any axis counts the same."""

    def __init__(self, s: OneEuroSettings):
        self.s = s
        self.reset()

    def reset(self):
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if not self.s.enabled:
            return x
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x
        dt = t - self._t
        dx_hat = self._dx + smoothing_factor(self.s.d_cutoff, dt) * ((x - self._x) / dt - self._dx)
        cutoff = self.s.min_cutoff + self.s.beta * float(np.linalg.norm(dx_hat))
        self._x = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._dx, self._t = dx_hat, t
        return self._x


class LiveSmoother:
    """Causal smoothing of one face's pose and scores as they arrive (one per face id)."""

    def __init__(self, smoothing: Smoothing):
        self.smoothing = smoothing
        self.scores = {r: OneEuroFilter(_live_settings("scores", smoothing.level(r)))
                       for r in ("eyes", "brows", "mouth")}
        self._cols = {r: np.flatnonzero(SCORE_REGIONS == r) for r in self.scores}
        self.rotation = _SpeedEuro(_live_settings("rotation", smoothing.level("head_rotation")))
        self.position = _SpeedEuro(_live_settings("position", smoothing.level("head_position")))
        self._ref = None

    def __call__(self, head_matrix: np.ndarray, scores: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        m = np.asarray(head_matrix, np.float64)
        out_scores = np.array(scores, np.float64, copy=True)
        for r, f in self.scores.items():
            out_scores[self._cols[r]] = f(out_scores[self._cols[r]], t)
        out = m.copy()
        if self.rotation.s.enabled:
            scale = float(np.cbrt(det3(m[:3, :3])))
            r = m[:3, :3] / scale
            if self._ref is None:
                self._ref = r
            w = np.degrees(rotation_log(self._ref.T @ r))
            if np.linalg.norm(w) > 90.0:  # far from the reference: re-anchor (the filter restarts)
                self._ref, w = r, np.zeros(3)
                self.rotation.reset()
            out[:3, :3] = self._ref @ rodrigues(np.radians(self.rotation(w, t))) * scale
        out[:3, 3] = self.position(m[:3, 3], t)
        return out, np.clip(out_scores, 0.0, 1.0)
