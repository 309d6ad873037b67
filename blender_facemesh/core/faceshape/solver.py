"""Performer face-shape calibration: the performer's own rigid 3D face, for head pose.

MediaPipe's head pose fits its *canonical* face to the landmarks, so on a face that is wider,
deeper or flatter than the canonical one the fitted rotation is off by a degree or more, and
the error changes with the pose (a head bone driven by it wobbles). Here a calibration take, in
which the performer turns their head slowly left, right, up and down with a relaxed face, is
used to solve that performer's rigid face (468 points) together with the head pose of every
frame, by bundle adjustment: minimise the 2D reprojection error of MediaPipe's landmarks through
a pinhole camera. Later takes then get their head pose by a perspective PnP against that shape
(:class:`.pose.ShapePose`).

Camera and units are those of :mod:`..camera`: camera at the origin
looking down -Z, +X right, +Y up, centimetres; a pixel is ``x_px = x_norm * width``,
``y_px = y_norm * height``; principal point at the image centre; focal length in pixels from the
vertical field of view, ``f = (height / 2) / tan(fov / 2)``.

Solver (numpy only)
-------------------
Unknowns: the shape ``X`` (468 x 3), a rotation and translation per used frame, and, when the
field of view is not given, ``log f``. Levenberg-Marquardt on

    sum_ij rho(|pi_f(R_i X_j + t_i) - u_ij|) + lam * sum_j |X_j - A(C)_j|^2

with ``rho`` Huber (threshold 2.5 x the median residual, re-chosen every iteration: IRLS), and
``A(C)`` the canonical face ``C`` fitted to the current shape by a rotation, a translation and a
*per-axis* scale. The regulariser therefore keeps the shape close to the canonical one where the
views say little (points seen along their depth only, noisy contour points) without pulling
the performer's overall proportions (width, height, depth) back to the canonical ones.
Each step eliminates the points (3 x 3 blocks) with the Schur complement, leaving a dense
``6F (+1)`` system for the poses (and focal): one BLAS product and one Cholesky solve per
iteration, about 0.1-0.3 s for 150 frames on two cores. Poses start from MediaPipe-style
Procrustes on the canonical face (:class:`.geometry.FaceGeometry`), the shape from the
canonical face. Takes longer than ``max_frames`` use that many evenly spaced frames.

After a first solve, landmarks are reweighted (``reweight_rounds``): by how well each fits a
rigid point over the take, and per frame by how squarely its surface faces the camera.

Field of view
-------------
Focal length is observable only through perspective distortion across the turns. On exact
projections it comes out within 1 deg; on MediaPipe's landmarks of synthetic faces with known
truth it reads 8-14 deg high for 40-63 deg cameras (``bench/performer.py``): the tracked
landmarks under-read large turns (PnP on the true shape reads pitch 11-15 % short) and the focal
absorbs part of that. Neither a stronger shape prior, nor subsets of the best-fitting landmarks,
nor a profile over fixed fovs removed the bias, so the estimate is kept but
:meth:`FaceShapeCalibration.quality_problems` refuses it.

Gauge
-----
2D observations fix the shape and poses only up to a similarity (rotate/shift the shape and
undo it in every pose; scale shape and translations together), so the solution is put in a
fixed frame after every accepted step: the canonical face is fitted to the shape by a rotation,
a translation and a per-axis scale ``D``, and the shape is expressed in that fit's frame (poses
adjusted to match, so projections do not change), scaled so that ``det(D) = 1``: the performer's
face has the canonical face's *volume*. Two choices here, both deliberate:

* the frame comes from a fit that allows per-axis proportions, not from a plain similarity
  (Procrustes): a face 15 % deeper than the canonical one is, to a similarity fit, best matched
  by tilting it (1.2 degrees on the Procrustes basis for 10 % wider / 15 % deeper), and that
  tilt would read as a constant pitch/yaw offset in every later take. With per-axis scales a
  face that only differs in proportions gets exactly the canonical frame;
* scale (and so absolute distance) is not observable from 2D alone: a face twice as large twice
  as far projects the same. We fix the volume to the canonical's, as MediaPipe fixes the size
  to its canonical face; rotations do not depend on this choice, translations scale with it.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np

from ..camera import focal_px, fov_from_focal
from ..channels import N_MESH_VERTICES as N_POINTS
from ..errors import FacemeshError
from ..rotations import rodrigues, rotation_part
from ..solve.geometry import FaceGeometry

DEFAULT_REG = 0.3
MIN_PRESENT_FRACTION = 0.6   # a take where the face is lost in more than 40 % of frames is refused
FOV_LIMITS_DEG = (20.0, 120.0)
FACING_FLOOR = 0.0           # a landmark whose surface faces the camera at cos <= this gets no weight

# quality check (FaceShapeCalibration.quality_problems); see there for why each
CHECK_MAX_REPROJ_FRACTION = 0.006      # RMS reprojection, of the image height (3 px at 512, 6.5 at 1080)
CHECK_MIN_YAW_SPAN_DEG = 40.0          # about +-20 deg left/right
CHECK_MIN_PITCH_SPAN_DEG = 20.0        # about +-10 deg up/down
CHECK_AXIS_LIMITS = (0.80, 1.25)       # per-axis proportions against the canonical face
CHECK_FOV_PLAUSIBLE_DEG = (30.0, 90.0)  # vertical fov of webcams, phones and ordinary lenses


class ShapeCalibrationError(FacemeshError, ValueError):
    """A calibration take that cannot support a face-shape solve; the message says what to do."""


# --- small maths -----------------------------------------------------------------------------


def _yaw_pitch(rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch (degrees) of camera-space head rotations, as rotations.matrix_to_euler."""
    r = np.asarray(rotations)
    pitch = np.degrees(np.arcsin(np.clip(-r[:, 1, 2], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(r[:, 0, 2], r[:, 2, 2]))
    return yaw, pitch


def _rotation_onto(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum w |R src - dst|^2 (both centred)."""
    h = np.einsum("n,ni,nj->ij", w, dst, src)
    u, _, vt = np.linalg.svd(h)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        u[:, 2] *= -1
    return u @ vt


def fit_axes(canonical: np.ndarray, shape: np.ndarray, w: np.ndarray | None = None,
             iters: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``shape ~ R @ diag(d) @ canonical + t`` (rotation, per-axis scale, translation).

    Alternates: d in closed form given R, R by Procrustes given d. Returns (R, d, t).
    """
    c = np.asarray(canonical, dtype=np.float64)
    x = np.asarray(shape, dtype=np.float64)
    w = np.ones(len(c)) if w is None else np.asarray(w, dtype=np.float64)
    w = w / w.sum()
    cc = c - w @ c
    xc = x - w @ x
    d = np.ones(3) * math.sqrt((w @ (xc * xc).sum(1)) / (w @ (cc * cc).sum(1)))
    r = np.eye(3)
    for _ in range(iters):
        r = _rotation_onto(cc * d, xc, w)
        y = xc @ r                                  # = R^T xc, per row
        d_new = (w @ (y * cc)) / (w @ (cc * cc))
        d_new = np.maximum(d_new, 1e-6)
        if np.abs(d_new - d).max() < 1e-10:
            d = d_new
            break
        d = d_new
    t = w @ x - r @ (d * (w @ c))
    return r, d, t


# --- the calibration result -------------------------------------------------------------------

@dataclass
class FaceShapeCalibration:
    """A performer's rigid face, solved from a head-turn take (see module docstring)."""

    shape: np.ndarray                       # (468, 3) cm, canonical frame and volume
    fov_deg: float                          # vertical field of view used (given or estimated)
    fov_estimated: bool
    reprojection_px: float                  # RMS over used frames and landmarks
    yaw_range_deg: tuple[float, float]
    pitch_range_deg: tuple[float, float]
    frames_used: int
    width: int
    height: int
    solve_seconds: float = 0.0
    point_sigma_px: np.ndarray | None = None   # (468,) how well each landmark fit the rigid shape

    def __post_init__(self):
        self.shape = np.asarray(self.shape, dtype=np.float64)
        if self.shape.shape != (N_POINTS, 3) or not np.isfinite(self.shape).all():
            raise ValueError(f"face shape must be {N_POINTS} x 3 finite numbers, got {self.shape.shape}")
        if not 1.0 < float(self.fov_deg) < 179.0:
            raise ValueError(f"field of view must be between 1 and 179 degrees, got {self.fov_deg}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        self.fov_deg = float(self.fov_deg)
        self.fov_estimated = bool(self.fov_estimated)
        self.reprojection_px = float(self.reprojection_px)
        self.yaw_range_deg = tuple(float(v) for v in self.yaw_range_deg)
        self.pitch_range_deg = tuple(float(v) for v in self.pitch_range_deg)
        self.frames_used = int(self.frames_used)
        self.width, self.height = int(self.width), int(self.height)
        self.solve_seconds = float(self.solve_seconds)
        if self.point_sigma_px is not None:
            sig = np.asarray(self.point_sigma_px, dtype=np.float64).reshape(-1)
            if sig.shape != (N_POINTS,) or not np.isfinite(sig).all():
                raise ValueError(f"point_sigma_px must be {N_POINTS} finite numbers")
            self.point_sigma_px = sig

    @property
    def yaw_span_deg(self) -> float:
        return self.yaw_range_deg[1] - self.yaw_range_deg[0]

    @property
    def pitch_span_deg(self) -> float:
        return self.pitch_range_deg[1] - self.pitch_range_deg[0]

    def quality_problems(self, canonical: np.ndarray | None = None) -> list[str]:
        """What speaks against using this face shape by default; empty when nothing does.

        Why each: a high RMS reprojection means the landmarks did not behave as one rigid face
        (the face moved, talked, or was lost in part of the take), so the shape absorbed that;
        small yaw or pitch spans leave the depth of the face (and so the pose on it) barely
        constrained; proportions far from a human face (per-axis scale against ``canonical``,
        the model's canonical face when None) mean the solve went wrong; and an *estimated* field
        of view is refused unless the fov was given: measured on synthetic head turns tracked by
        MediaPipe the estimate runs 8-14 deg high (``bench/performer.py``) and a wrong fov tilts
        every later pose. Message texts say what to do.
        """
        problems = []
        limit = CHECK_MAX_REPROJ_FRACTION * self.height
        if not self.reprojection_px <= limit:
            problems.append(f"reprojection {self.reprojection_px:.1f} px (at most {limit:.1f}): keep the face "
                            "relaxed and still apart from the head turns, and record the take again")
        if self.yaw_span_deg < CHECK_MIN_YAW_SPAN_DEG:
            problems.append(f"left/right turn spans {self.yaw_span_deg:.0f} deg (need {CHECK_MIN_YAW_SPAN_DEG:.0f}): "
                            "turn further, about 25 deg each way")
        if self.pitch_span_deg < CHECK_MIN_PITCH_SPAN_DEG:
            problems.append(f"up/down turn spans {self.pitch_span_deg:.0f} deg (need "
                            f"{CHECK_MIN_PITCH_SPAN_DEG:.0f}): nod further, about 15 deg each way")
        lo, hi = CHECK_FOV_PLAUSIBLE_DEG
        if not lo <= self.fov_deg <= hi:
            problems.append(f"field of view {self.fov_deg:.0f} deg is implausible (expected {lo:.0f}-{hi:.0f})")
        elif self.fov_estimated:
            problems.append(f"field of view was estimated ({self.fov_deg:.0f} deg), which is unreliable from "
                            "head turns: enter the camera's field of view and calibrate again")
        if canonical is None:
            try:
                from ..capture.model import load_model
                canonical = load_model().canonical_vertices
            except Exception:  # pragma: no cover - no model: the proportions are not checked
                canonical = None
        if canonical is not None:
            d = fit_axes(canonical, self.shape)[1]
            d = d / float(np.prod(d)) ** (1.0 / 3.0)
            if d.min() < CHECK_AXIS_LIMITS[0] or d.max() > CHECK_AXIS_LIMITS[1]:
                problems.append("the solved face has implausible proportions (width/height/depth "
                                + "/".join(f"{v:.2f}" for v in d) + " of the canonical face): record the take again")
        return problems

    @property
    def passes_check(self) -> bool:
        """True when :meth:`quality_problems` finds nothing: safe to use the shape by default."""
        return not self.quality_problems()

    def summary(self) -> str:
        """One line for the panel / command line."""
        how = "estimated" if self.fov_estimated else "given"
        return (f"face shape from {self.frames_used} frames: reprojection {self.reprojection_px:.2f} px, "
                f"yaw {self.yaw_range_deg[0]:+.0f}..{self.yaw_range_deg[1]:+.0f} deg, "
                f"pitch {self.pitch_range_deg[0]:+.0f}..{self.pitch_range_deg[1]:+.0f} deg, "
                f"fov {self.fov_deg:.1f} deg ({how})")

    def to_dict(self) -> dict:
        return {
            "shape": np.round(self.shape, 5).tolist(),
            "fov_deg": self.fov_deg,
            "fov_estimated": self.fov_estimated,
            "reprojection_px": self.reprojection_px,
            "yaw_range_deg": list(self.yaw_range_deg),
            "pitch_range_deg": list(self.pitch_range_deg),
            "frames_used": self.frames_used,
            "width": self.width,
            "height": self.height,
            "solve_seconds": self.solve_seconds,
            "point_sigma_px": None if self.point_sigma_px is None else np.round(self.point_sigma_px, 4).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FaceShapeCalibration":
        if not isinstance(d, dict):
            raise TypeError(f"face shape must be a dict, got {type(d).__name__}")
        return cls(shape=np.asarray(d["shape"], dtype=np.float64), fov_deg=float(d["fov_deg"]),
                   fov_estimated=bool(d.get("fov_estimated", False)),
                   reprojection_px=float(d.get("reprojection_px", float("nan"))),
                   yaw_range_deg=tuple(d.get("yaw_range_deg", (0.0, 0.0))),
                   pitch_range_deg=tuple(d.get("pitch_range_deg", (0.0, 0.0))),
                   frames_used=int(d.get("frames_used", 0)), width=int(d["width"]),
                   height=int(d["height"]), solve_seconds=float(d.get("solve_seconds", 0.0)),
                   point_sigma_px=d.get("point_sigma_px"))


# --- bundle adjustment ------------------------------------------------------------------------

def _project(rot, trans, x, f, cx, cy):
    """Posed points and pixels: rot (F,3,3), trans (F,3), x (J,3) -> q (F,J,3) rotated, p, uv (F,J,2)."""
    q = np.einsum("fab,jb->fja", rot, x)
    p = q + trans[:, None, :]
    d = -p[..., 2]
    uv = np.stack([cx + f * p[..., 0] / d, cy - f * p[..., 1] / d], axis=-1)
    return q, p, d, uv


def _huber_cost(res_norm, k, w):
    return (np.where(res_norm <= k, 0.5 * res_norm ** 2, k * (res_norm - 0.5 * k)) * w).sum()


class _BundleAdjuster:
    def __init__(self, obs, canonical, width, height, focal, estimate_focal, lam, align_w):
        self.obs = obs                      # (F, J, 2) pixels
        self.C = canonical
        self.cx, self.cy = width / 2.0, height / 2.0
        self.height = height
        self.log_f = math.log(focal)
        self.estimate_focal = estimate_focal
        self.lam = lam
        self.align_w = align_w
        self.point_w = np.ones(obs.shape[1])

    @property
    def f(self):
        return math.exp(self.log_f)

    def residuals(self, rot, trans, x, log_f):
        _, _, _, uv = _project(rot, trans, x, math.exp(log_f), self.cx, self.cy)
        return uv - self.obs

    def target(self, x):
        r, d, t = fit_axes(self.C, x, self.align_w)
        return (self.C * d) @ r.T + t

    def cost(self, rot, trans, x, log_f, k, target):
        res = self.residuals(rot, trans, x, log_f)
        n = np.sqrt((res * res).sum(-1))
        return _huber_cost(n, k, self.point_w) + 0.5 * self.lam * ((x - target) ** 2).sum()

    def regauge(self, rot, trans, x):
        """Express the solution in the canonical frame with the canonical volume (see module doc)."""
        r, d, t = fit_axes(self.C, x, self.align_w)
        s = float(np.prod(d)) ** (1.0 / 3.0)
        x_new = ((x - t) @ r) / s                    # R^T (x - t) / s
        # p = R_i x + t_i = R_i (s r x_new + t) + t_i  ->  scale the scene by 1/s
        rot_new = np.einsum("fab,bc->fac", rot, r)
        trans_new = (np.einsum("fab,b->fa", rot, t) + trans) / s
        return rot_new, trans_new, x_new

    def step_system(self, rot, trans, x, k, target):
        """Gauss-Newton blocks with Huber IRLS weights."""
        f = self.f
        q, p, d, uv = _project(rot, trans, x, f, self.cx, self.cy)
        res = uv - self.obs                                   # (F,J,2)
        nrm = np.sqrt((res * res).sum(-1))
        w = np.where(nrm <= k, 1.0, k / np.maximum(nrm, 1e-12)) * self.point_w  # (F,J)
        F, J = nrm.shape
        inv_d = 1.0 / d
        # d(uv)/d(p): (F,J,2,3)
        jp = np.zeros((F, J, 2, 3))
        jp[..., 0, 0] = f * inv_d
        jp[..., 0, 2] = f * p[..., 0] * inv_d ** 2
        jp[..., 1, 1] = -f * inv_d
        jp[..., 1, 2] = -f * p[..., 1] * inv_d ** 2
        # camera block: [d/domega, d/dt]; dp/domega = -[q]_x
        jc = np.empty((F, J, 2, 6))
        qx, qy, qz = q[..., 0], q[..., 1], q[..., 2]
        for r_ in range(2):
            a0, a1, a2 = jp[..., r_, 0], jp[..., r_, 1], jp[..., r_, 2]
            jc[..., r_, 0] = -a1 * qz + a2 * qy
            jc[..., r_, 1] = a0 * qz - a2 * qx
            jc[..., r_, 2] = -a0 * qy + a1 * qx
            jc[..., r_, 3:] = jp[..., r_, :]
        jx = np.einsum("fjra,fab->fjrb", jp, rot)              # (F,J,2,3) d/dX
        wr = res * w[..., None]
        U = np.einsum("fjra,fj,fjrb->fab", jc, w, jc)          # (F,6,6)
        V = np.einsum("fjra,fj,fjrb->jab", jx, w, jx)          # (J,3,3)
        Wm = np.einsum("fjra,fj,fjrb->fjab", jc, w, jx)        # (F,J,6,3)
        gc = -np.einsum("fjra,fjr->fa", jc, wr)                # (F,6) descent direction rhs
        gx = -np.einsum("fjra,fjr->ja", jx, wr) - self.lam * (x - target)
        V = V + self.lam * np.eye(3)
        if self.estimate_focal:
            jf = np.stack([f * p[..., 0] * inv_d, -f * p[..., 1] * inv_d], axis=-1)  # (F,J,2)
            Uf = np.einsum("fjra,fj,fjr->fa", jc, w, jf)       # (F,6)
            Uff = float(np.einsum("fjr,fj,fjr->", jf, w, jf))
            Wf = np.einsum("fjr,fj,fjrb->jb", jf, w, jx)       # (J,3)
            gf = -float(np.einsum("fjr,fjr->", jf, wr))
        else:
            Uf = Uff = Wf = gf = None
        return res, w, U, V, Wm, gc, gx, Uf, Uff, Wf, gf

    def solve_step(self, sys_, mu):
        _, _, U, V, Wm, gc, gx, Uf, Uff, Wf, gf = sys_
        F, J = Wm.shape[:2]
        nc = 6 * F + (1 if self.estimate_focal else 0)
        # Marquardt damping on the diagonals
        Vd = V + mu * np.einsum("jaa->ja", V)[..., None] * np.eye(3)
        Vinv = np.linalg.inv(Vd)                               # (J,3,3)
        Wfull = np.zeros((nc, 3 * J))
        Wfull[:6 * F] = Wm.transpose(0, 2, 1, 3).reshape(6 * F, 3 * J)
        A = np.zeros((nc, nc))
        idx = np.arange(F)
        blk = A[:6 * F, :6 * F].reshape(F, 6, F, 6)
        blk[idx, :, idx, :] = U + mu * np.einsum("faa->fa", U)[..., None] * np.eye(6)
        g = np.zeros(nc)
        g[:6 * F] = gc.reshape(-1)
        if self.estimate_focal:
            Wfull[-1] = Wf.reshape(-1)
            A[:6 * F, -1] = Uf.reshape(-1)
            A[-1, :6 * F] = Uf.reshape(-1)
            A[-1, -1] = Uff * (1.0 + mu) + 1e-9
            g[-1] = gf
        # Schur complement: eliminate the points
        Y = np.einsum("cja,jab->cjb", Wfull.reshape(nc, J, 3), Vinv).reshape(nc, 3 * J)
        S = A - Y @ Wfull.T
        rhs = g - Y @ gx.reshape(-1)
        S = 0.5 * (S + S.T)
        try:
            L = np.linalg.cholesky(S)
            dc = np.linalg.solve(L.T, np.linalg.solve(L, rhs))
        except np.linalg.LinAlgError:
            dc = np.linalg.lstsq(S, rhs, rcond=None)[0]
        dx = np.einsum("jab,jb->ja", Vinv, gx - (Wfull.T @ dc).reshape(J, 3))
        return dc, dx

    def apply(self, rot, trans, x, log_f, dc, dx):
        F = len(rot)
        d6 = dc[:6 * F].reshape(F, 6)
        rot_new = np.einsum("fab,fbc->fac", rodrigues(d6[:, :3]), rot)
        trans_new = trans + d6[:, 3:]
        log_f_new = log_f + (float(dc[-1]) if self.estimate_focal else 0.0)
        return rot_new, trans_new, x + dx, log_f_new

    def run(self, rot, trans, x, max_iter=60, tol=1e-4):
        mu = 1e-4
        prev = None
        log_f = self.log_f
        it = 0
        for it in range(max_iter):
            target = self.target(x)
            res = self.residuals(rot, trans, x, log_f)
            nrm = np.sqrt((res * res).sum(-1))
            k = max(2.5 * float(np.median(nrm)), 0.25)
            self.log_f = log_f
            sys_ = self.step_system(rot, trans, x, k, target)
            c0 = self.cost(rot, trans, x, log_f, k, target)
            accepted = False
            for _ in range(10):
                dc, dx = self.solve_step(sys_, mu)
                cand = self.apply(rot, trans, x, log_f, dc, dx)
                if self.estimate_focal and not (math.log(focal_px(self.height, FOV_LIMITS_DEG[1]))
                                                <= cand[3] <= math.log(focal_px(self.height, FOV_LIMITS_DEG[0]))):
                    mu *= 10.0
                    continue
                c1 = self.cost(*cand, k, target)
                if np.isfinite(c1) and c1 < c0:
                    rot, trans, x, log_f = cand
                    mu = max(mu / 3.0, 1e-7)
                    accepted = True
                    break
                mu *= 10.0
            if not accepted:
                break
            rot, trans, x = self.regauge(rot, trans, x)
            if (c0 - c1) < tol * c0 or (prev is not None and c0 >= prev * (1 - tol)):
                break
            prev = c0
        self.log_f = log_f
        self.iterations = it + 1
        return rot, trans, x, log_f


def _pixels(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.stack([landmarks[..., 0] * width, landmarks[..., 1] * height], axis=-1)


def calibrate_shape(landmarks, present, width: int, height: int, canonical, fov_deg: float | None = None,
                    min_frames: int = 30, min_yaw_span_deg: float = 20.0, min_pitch_span_deg: float = 10.0,
                    reg: float = DEFAULT_REG, max_frames: int = 240,
                    reweight_rounds: int = 1, facing_weights: bool = True) -> FaceShapeCalibration:
    """Solve the performer's rigid face and the per-frame head poses from a head-turn take.

    landmarks: (N, 478 or 468, >=2) MediaPipe-normalized; present: (N,) bool (face found).
    canonical: (468, 3) canonical face, cm (``load_model().canonical_vertices``).
    fov_deg: the camera's vertical field of view; None estimates it with the rest.
    reg: strength of the pull toward the (per-axis scaled) canonical face, relative to the data:
    each point's prior weighs ``reg`` times what one frame's observation of it does, per used frame.
    reweight_rounds: after the first solve, each landmark is weighted by how well it fits
    (``(median sigma / sigma_j)^2``, at most 1, sigma_j its median residual over the take) and the
    solve repeated: MediaPipe's contour landmarks slide along the silhouette as the head turns
    (4-5 px off a rigid point where inner ones are within 1 px), and would otherwise bend the shape.
    facing_weights: in those rounds each landmark of each frame is also weighted by how squarely
    its surface faces the camera (cosine, from the mesh normals of the current solve): landmarks
    on the side turning away are guessed more than seen. On +-40 deg turns this brings the fov
    estimate 3-4 deg closer and the later PnP poses 0.4 deg closer to the truth.
    Raises :class:`ShapeCalibrationError` for takes that cannot support a solve.
    """
    t_start = time.perf_counter()
    lm = np.asarray(landmarks, dtype=np.float64)
    present = np.asarray(present, dtype=bool).reshape(-1)
    canonical = np.asarray(canonical, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1] < N_POINTS or lm.shape[2] < 2:
        raise ValueError(f"landmarks must be (frames, 468 or 478, >=2), got {lm.shape}")
    if len(present) != len(lm):
        raise ValueError(f"present has {len(present)} entries for {len(lm)} frames")
    if canonical.shape != (N_POINTS, 3):
        raise ValueError(f"canonical must be ({N_POINTS}, 3), got {canonical.shape}")
    width, height = int(width), int(height)
    n_total = len(lm)
    present = present & np.isfinite(lm[:, :N_POINTS, :2]).all(axis=(1, 2))
    n_face = int(present.sum())
    if n_total < min_frames:
        raise ShapeCalibrationError(
            f"calibration take too short: {n_total} frames, need at least {min_frames}; record a few seconds "
            "of turning your head slowly left and right, then up and down")
    if n_face < min_frames or n_face < MIN_PRESENT_FRACTION * n_total:
        raise ShapeCalibrationError(
            f"face lost in {n_total - n_face} of {n_total} frames; keep your whole face in view and well lit, "
            "turn your head slowly (no further than about 30 degrees) and record the take again")
    if fov_deg is not None and not FOV_LIMITS_DEG[0] <= float(fov_deg) <= FOV_LIMITS_DEG[1]:
        raise ShapeCalibrationError(f"field of view must be between {FOV_LIMITS_DEG[0]:.0f} and {FOV_LIMITS_DEG[1]:.0f} "
                         f"degrees, got {fov_deg}")

    frames = np.flatnonzero(present)
    if len(frames) > max_frames:
        frames = frames[np.round(np.linspace(0, len(frames) - 1, max_frames)).astype(int)]
    lm = lm[frames, :N_POINTS]

    # initial poses: MediaPipe-style Procrustes on the canonical face
    fov0 = float(fov_deg) if fov_deg is not None else 60.0
    geo_w = _procrustes_weights(canonical)
    geo = FaceGeometry(canonical, geo_w, width, height, fov0)
    rot = np.empty((len(lm), 3, 3))
    trans = np.empty((len(lm), 3))
    for i, frame in enumerate(lm):
        pose = geo.solve(np.concatenate([frame[:, :2], np.zeros((N_POINTS, 1))], axis=1)
                         if frame.shape[1] < 3 else frame[:, :3])[0]
        rot[i] = rotation_part(pose)
        scale = float(np.sqrt((pose[:3, 0] ** 2).sum()))
        trans[i] = pose[:3, 3] / scale
    _check_spans(rot, min_yaw_span_deg, min_pitch_span_deg)

    obs = _pixels(lm, width, height)
    focal = focal_px(height, fov0)
    dist = float(np.median(-trans[:, 2]))
    lam = reg * len(lm) * (focal / max(dist, 1e-3)) ** 2
    ba = _BundleAdjuster(obs, canonical, width, height, focal, fov_deg is None, lam, np.ones(N_POINTS))
    x0 = canonical.copy()
    rot, trans, x0 = ba.regauge(rot, trans, x0)
    rot, trans, x, log_f = ba.run(rot, trans, x0)
    tris = _model_triangles() if facing_weights else None
    for _ in range(int(reweight_rounds)):
        ba.point_w = _point_weights(_point_sigma(ba.residuals(rot, trans, x, log_f)))
        if tris is not None:
            ba.point_w = ba.point_w[None, :] * _facing_weights(rot, trans, x, tris)
        ba.log_f = log_f
        rot, trans, x, log_f = ba.run(rot, trans, x)
    rot, trans, x = ba.regauge(rot, trans, x)
    f = math.exp(log_f)
    res = ba.residuals(rot, trans, x, log_f)
    sigma = _point_sigma(res)
    rms = float(np.sqrt((res * res).sum(-1).mean()))
    yaw, pitch = _yaw_pitch(rot)
    return FaceShapeCalibration(
        shape=x, fov_deg=fov_from_focal(height, f), fov_estimated=fov_deg is None, reprojection_px=rms,
        yaw_range_deg=(float(yaw.min()), float(yaw.max())), pitch_range_deg=(float(pitch.min()), float(pitch.max())),
        frames_used=len(lm), width=width, height=height, solve_seconds=time.perf_counter() - t_start,
        point_sigma_px=sigma)


def _vertex_normals(x: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a, b, c = x[tris[:, 0]], x[tris[:, 1]], x[tris[:, 2]]
    fn = np.cross(b - a, c - a)                      # area-weighted, outward for the CCW winding
    vn = np.zeros_like(x)
    for i in range(3):
        np.add.at(vn, tris[:, i], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def _facing_weights(rot: np.ndarray, trans: np.ndarray, x: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(F, J) weights in [0, 1]: cosine between each posed landmark's normal and its ray to the
    camera, floored at FACING_FLOOR (a grazing or hidden landmark is MediaPipe's guess)."""
    n = np.einsum("fab,jb->fja", rot, _vertex_normals(x, tris))
    p = np.einsum("fab,jb->fja", rot, x) + trans[:, None, :]
    cos = -(n * p).sum(-1) / np.maximum(np.linalg.norm(p, axis=-1), 1e-12)
    return np.clip((cos - FACING_FLOOR) / (1.0 - FACING_FLOOR), 0.0, 1.0)


@functools.lru_cache(maxsize=1)
def _model_triangles_cached():
    from ..capture.model import load_model
    return np.asarray(load_model().triangles, dtype=np.int64)


def _model_triangles() -> np.ndarray | None:
    """The canonical mesh's triangles (from the model), or None if the model is absent."""
    try:
        tris = _model_triangles_cached()
        return tris if tris.ndim == 2 and tris.shape[1] == 3 and tris.max() < N_POINTS else None
    except Exception:  # pragma: no cover - model missing: no facing weights
        return None


def _point_sigma(res: np.ndarray) -> np.ndarray:
    """Per-landmark residual scale (pixels): root of the median squared residual over frames."""
    return np.sqrt(np.median((res * res).sum(-1), axis=0))


def _point_weights(sigma: np.ndarray) -> np.ndarray:
    ref = float(np.median(sigma))
    return np.minimum(1.0, (ref / np.maximum(sigma, 1e-6)) ** 2)


@functools.lru_cache(maxsize=1)
def _model_weights():
    from ..capture.model import load_model
    return load_model().procrustes_weights


def _procrustes_weights(canonical: np.ndarray) -> np.ndarray:
    """MediaPipe's Procrustes basis weights (from the model), or uniform if the model is absent."""
    try:
        w = _model_weights()
        if len(w) == N_POINTS:
            return np.asarray(w, dtype=np.float64)
    except Exception:  # pragma: no cover - model missing: uniform weights still give a start
        pass
    return np.ones(N_POINTS)


def _check_spans(rot, min_yaw, min_pitch):
    yaw, pitch = _yaw_pitch(rot)
    # robust spans: a few misread frames must not make a still head look like a head turn
    ys = float(np.percentile(yaw, 97) - np.percentile(yaw, 3))
    ps = float(np.percentile(pitch, 97) - np.percentile(pitch, 3))
    if ys < min_yaw or ps < min_pitch:
        what = []
        if ys < min_yaw:
            what.append(f"left/right {ys:.0f} deg (need {min_yaw:.0f})")
        if ps < min_pitch:
            what.append(f"up/down {ps:.0f} deg (need {min_pitch:.0f})")
        raise ShapeCalibrationError(
            "not enough head rotation to solve the face shape: " + ", ".join(what)
            + "; turn your head slowly left and right (about 25 deg each way), then up and down "
              "(about 15 deg), with a relaxed face, and record the take again")
