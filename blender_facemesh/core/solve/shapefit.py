"""Fit the capture face's 52 shape keys to the performer, from a take.

Keying a take's scores on the generic shape-key rig replays *a* face; fitting the keys to the
take's own pose-free meshes makes it replay *the performer's* face. Per frame i the model is

    mesh_i ~= base + sum_j s_ij * delta_j            (468 x 3, canonical space, cm)

solved as ridge least squares over the frames that hold a face:

    min  sum_i ||mesh_i - base - S_i . D||^2 + lam * sum_j ||delta_j||^2      (base unpenalised)

An unpenalised base is the same as centring scores and meshes on their means, which leaves a
small k x k system (k <= 52 exercised channels) solved once for all 1404 columns, in float64.
Channels a take never moved (a 1st-99th percentile score range below ``min_range``) get an
exact zero delta and ``exercised`` False: their constant offset goes into the base, and the
caller knows which keys the take taught (and may fall back to generic keys for the rest).
The ridge alone keeps truly idle channels near zero, but a channel that only wobbles by ~0.005
while tracking a bigger one (MediaPipe's smile on a still mouth) can pick up a 0.5 cm key from
that correlation; the cut-off rules such keys out. Pass ``min_range=0`` to let the ridge decide.

Default lam = N * NOISE_FLOOR**2. A channel of score variance v contributes N*v to its diagonal
of the normal equations, so ridge shrinks its delta by v / (v + NOISE_FLOOR**2): a channel whose
score std is only 0.02 (a flicker, not an expression) is halved or more, one that really
moves (std 0.1 and up) keeps over 95 % of its size. Scaling with N keeps that trade the same
for a 2 s and a 2 min take. Chosen on the four real clips: fitting the first half of a clip and
replaying the second, lam/N in 1e-4..1e-3 did best; 4e-4 sits in the middle.

THIS MODULE MUST NEVER IMPORT bpy (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FacemeshError
from ..channels import ARKIT_NAMES, N_MESH_VERTICES

NOISE_FLOOR = 0.02   # score units: variation this small is treated as flicker, not expression
MIN_RANGE = 0.02     # a channel whose 1st-99th percentile score range is below this is not fitted
_NV, _NC = N_MESH_VERTICES, len(ARKIT_NAMES)
NO_MESH_MSG = ("this take has no face mesh (JSON takes carry pose and scores only); "
               "record or load a .npz take")


class ShapeFitError(FacemeshError, ValueError):
    """The take cannot be used to fit shape keys; the message says what to do instead."""


@dataclass
class ShapeFit:
    base: np.ndarray        # (468, 3) float32, cm: the performer's face at all-zero scores
    deltas: np.ndarray      # (52, 468, 3) float32, cm: each shape key at score 1, minus base
    lam: float              # ridge weight used
    frames_used: int
    rms_mm: float           # replay error on the fitted frames
    rms_base_mm: float      # error of the mean face alone on the same frames, for comparison
    exercised: np.ndarray   # (52,) bool: channels the take moved (the others have zero deltas)


def _valid(meshes, scores, present):
    """Frames with a face, a finite mesh and finite scores; refuse when too few remain."""
    meshes = np.asarray(meshes, np.float32).reshape(len(meshes), _NV, 3)
    scores = np.asarray(scores, np.float32).reshape(len(scores), _NC)
    if len(meshes) != len(scores):
        raise ShapeFitError(f"{len(meshes)} meshes but {len(scores)} score rows: pass one per frame")
    face = np.ones(len(meshes), bool) if present is None else np.asarray(present, bool).copy()
    face &= np.isfinite(scores).all(axis=1)
    ok = face & np.isfinite(meshes).all(axis=(1, 2))
    if face.any() and not ok.any():
        raise ShapeFitError(NO_MESH_MSG)
    return meshes, scores, ok


def _rms_mm(resid: np.ndarray) -> float:
    """RMS over frames and vertices of the per-vertex distance, cm -> mm."""
    r = resid.reshape(len(resid), _NV, 3)
    return float(np.sqrt(np.mean(np.sum(r.astype(np.float64) ** 2, axis=-1))) * 10.0)


def default_lam(frames: int) -> float:
    return float(frames) * NOISE_FLOOR ** 2


def fit_shape_keys(meshes, scores, present=None, lam: float | None = None,
                   min_frames: int = 10, min_range: float | None = None) -> ShapeFit:
    """Ridge fit of base + deltas to (N, 468, 3) meshes from (N, 52) scores (see module doc)."""
    meshes, scores, ok = _valid(meshes, scores, present)
    n = int(ok.sum())
    if n < min_frames:
        raise ShapeFitError(f"only {n} frame(s) with a face and a mesh; fitting shape keys needs "
                            f"at least {min_frames}: record a longer take that shows the expressions")
    y = meshes[ok].reshape(n, -1).astype(np.float64)
    s = scores[ok].astype(np.float64)
    lam = default_lam(n) if lam is None else float(lam)
    if lam < 0:
        raise ShapeFitError(f"lam must be >= 0, got {lam}")
    lo, hi = np.percentile(s, [1, 99], axis=0)
    exercised = (hi - lo) >= (MIN_RANGE if min_range is None else float(min_range))
    exercised &= s.std(axis=0) > 0     # a constant column has nothing to fit, even at min_range 0
    d = np.zeros((_NC, y.shape[1]))
    s_mean, y_mean = s.mean(axis=0), y.mean(axis=0)
    if exercised.any():
        sc, yc = s[:, exercised] - s_mean[exercised], y - y_mean
        a = sc.T @ sc + lam * np.eye(int(exercised.sum()))
        rhs = sc.T @ yc
        try:
            d[exercised] = np.linalg.solve(a, rhs)
        except np.linalg.LinAlgError:   # lam == 0 with collinear channels: least-norm answer
            d[exercised] = np.linalg.lstsq(a, rhs, rcond=None)[0]
    base = y_mean - s_mean @ d
    return ShapeFit(
        base=base.reshape(_NV, 3).astype(np.float32),
        deltas=d.reshape(_NC, _NV, 3).astype(np.float32),
        lam=lam, frames_used=n,
        rms_mm=_rms_mm(y - base - s @ d),
        rms_base_mm=_rms_mm(y - y_mean),
        exercised=exercised,
    )


def replay(fit: ShapeFit, scores) -> np.ndarray:
    """(N, 52) scores -> (N, 468, 3) meshes as the fitted shape-key rig would show them."""
    s = np.asarray(scores, np.float64).reshape(-1, _NC)
    out = fit.base.reshape(1, -1).astype(np.float64) + s @ fit.deltas.reshape(_NC, -1).astype(np.float64)
    return out.reshape(len(s), _NV, 3).astype(np.float32)


def replay_error_mm(fit: ShapeFit, meshes, scores, present=None) -> float:
    """RMS per-vertex distance (mm) of the replayed rig against meshes, on frames with a face."""
    meshes, scores, ok = _valid(meshes, scores, present)
    if not ok.any():
        raise ShapeFitError("no frame with a face and a mesh to compare against")
    return _rms_mm(replay(fit, scores[ok]) - meshes[ok])


def fit_from_take(take, face_id: int | None = None, profile=None, lam: float | None = None,
                  min_frames: int = 10, min_range: float | None = None) -> ShapeFit:
    """Fit one face of a take; with ``profile`` (has ``.apply(scores)``) scores are calibrated
    first, so the keys match the calibrated scores that will be keyed on the rig."""
    track = take.face_track(face_id)
    scores = np.array(track["blendshapes"], np.float32)
    present = track["present"] & np.isfinite(scores).all(axis=1)
    if profile is not None and present.any():
        scores[present] = np.asarray(profile.apply(scores[present]), np.float32)
    return fit_shape_keys(track["mesh"], scores, present, lam=lam, min_frames=min_frames,
                          min_range=min_range)
