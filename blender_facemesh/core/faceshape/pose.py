"""Per-frame head pose on a performer's calibrated face: a perspective fit of that rigid shape to
each frame's landmarks, warm-started from the frame before. Cheap enough for the capture thread."""

from __future__ import annotations

import math

import numpy as np

from ..camera import DEFAULT_FOV_DEG, focal_px
from ..channels import N_MESH_VERTICES as N_POINTS
from ..rotations import rodrigues, rotation_part
from ..solve.geometry import FaceGeometry
from .solver import FaceShapeCalibration, _point_weights, _procrustes_weights


METHODS = ("procrustes", "pnp")


class ShapePose:
    """Per-frame head pose from a calibrated shape, cheap enough for a capture thread.

    ``method``: "procrustes" (default): MediaPipe's own metric pipeline
    (:class:`.geometry.FaceGeometry`, which uses the landmarks' depth too) with the performer's
    shape in place of the canonical face, then the translation refined by PnP with the rotation
    held; "pnp": a perspective fit of the shape to the 2D landmarks alone (rotation and
    translation), warm-started from the previous frame. Why procrustes: MediaPipe's 2D landmarks
    are not a rigid projection once the head turns: on synthetic clips with known truth, PnP
    even on the TRUE shape reads pitch 11-15 % and yaw 3-5 % short and errs 2.5-3.0 deg on
    +-40 deg turns, where the pipeline that also uses depth errs 2.3 (``bench/performer.py``).
    Landmarks without depth (2 columns) always take the PnP path.

    PnP: Gauss-Newton on the 2D reprojection error of a subset of landmarks (Huber-weighted), at most
    ``max_iter`` 6x6 solves per frame, no BLAS. ``points``: "fit" (default with a calibration
    that carries per-landmark residuals): the ``n_fit`` landmarks that fitted the rigid shape best
    in the calibration take, weighted by that fit; "basis": MediaPipe's 33 Procrustes landmarks;
    "all"; or an index array. A first frame, or a warm start that went wrong, starts from
    MediaPipe-style Procrustes (:class:`.geometry.FaceGeometry`) on the shape.
    """

    def __init__(self, calib, width: int | None = None, height: int | None = None,
                 fov_deg: float | None = None, points: str | np.ndarray | None = None,
                 max_iter: int = 6, n_fit: int = 160, method: str = "procrustes"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        sigma = None
        if isinstance(calib, FaceShapeCalibration):
            sigma = calib.point_sigma_px
            shape = calib.shape
            width = calib.width if width is None else width
            height = calib.height if height is None else height
            fov_deg = calib.fov_deg if fov_deg is None else fov_deg
        else:
            shape = np.asarray(calib, dtype=np.float64)
            if width is None or height is None:
                raise ValueError("width and height are needed with a bare shape")
            fov_deg = DEFAULT_FOV_DEG if fov_deg is None else fov_deg
        self.shape = np.ascontiguousarray(shape, dtype=np.float64)
        if self.shape.shape != (N_POINTS, 3):
            raise ValueError(f"shape must be ({N_POINTS}, 3), got {self.shape.shape}")
        self.width, self.height, self.fov_deg = int(width), int(height), float(fov_deg)
        self.f = focal_px(self.height, self.fov_deg)
        self.cx, self.cy = self.width / 2.0, self.height / 2.0
        w = _procrustes_weights(self.shape)
        if points is None:
            points = "fit" if sigma is not None else "basis"
        self.point_w = None
        if isinstance(points, str):
            if points == "fit":
                if sigma is None:
                    raise ValueError("points='fit' needs a calibration with point_sigma_px")
                self.idx = np.sort(np.argsort(sigma, kind="stable")[:int(n_fit)])
                self.point_w = _point_weights(sigma)[self.idx]
            elif points == "basis":
                self.idx = np.flatnonzero(w > 0)
            elif points == "all":
                self.idx = np.arange(N_POINTS)
            else:
                raise ValueError(f"points must be 'fit', 'basis', 'all' or indices, got {points!r}")
        else:
            self.idx = np.asarray(points, dtype=np.int64)
        if self.point_w is None:
            self.point_w = np.ones(len(self.idx))
        self.sub = self.shape[self.idx]
        self.max_iter = int(max_iter)
        self._geo = FaceGeometry(self.shape, w, self.width, self.height, self.fov_deg)
        self._rot: np.ndarray | None = None
        self._t: np.ndarray | None = None
        self.last_rms_px = float("nan")

    def reset(self) -> None:
        """Forget the previous pose (call when the face was lost)."""
        self._rot = self._t = None

    def _init(self, lm: np.ndarray):
        lm3 = lm[:N_POINTS, :3] if lm.shape[1] >= 3 else np.concatenate([lm[:N_POINTS], np.zeros((N_POINTS, 1))], 1)
        pose = self._geo.solve(lm3)[0]
        s = float(np.sqrt((pose[:3, 0] ** 2).sum()))
        return rotation_part(pose), pose[:3, 3] / s

    def _refine(self, rot, t, uv_obs, fix_rot: bool = False):
        """Huber-weighted Gauss-Newton on the reprojection; ``fix_rot``: translation only."""
        f, cx, cy, x = self.f, self.cx, self.cy, self.sub
        n = len(x)
        jac = np.empty((n, 2, 6))
        rms = float("inf")
        for _ in range(self.max_iter):
            q = np.einsum("ab,jb->ja", rot, x)
            p = q + t
            inv_d = -1.0 / p[:, 2]
            u = cx + f * p[:, 0] * inv_d
            v = cy - f * p[:, 1] * inv_d
            ru = u - uv_obs[:, 0]
            rv = v - uv_obs[:, 1]
            # d(u)/dp = f*inv_d*(1, 0, p_x*inv_d); d(v)/dp = -f*inv_d*(0, 1, p_y*inv_d)
            a = f * inv_d
            bu = a * p[:, 0] * inv_d
            bv = -a * p[:, 1] * inv_d
            qx, qy, qz = q[:, 0], q[:, 1], q[:, 2]
            # u row: jp = (a, 0, bu)
            jac[:, 0, 0] = bu * qy
            jac[:, 0, 1] = a * qz - bu * qx
            jac[:, 0, 2] = -a * qy
            jac[:, 0, 3] = a
            jac[:, 0, 4] = 0.0
            jac[:, 0, 5] = bu
            # v row: jp = (0, -a, bv)
            jac[:, 1, 0] = a * qz + bv * qy
            jac[:, 1, 1] = -bv * qx
            jac[:, 1, 2] = -a * qx
            jac[:, 1, 3] = 0.0
            jac[:, 1, 4] = -a
            jac[:, 1, 5] = bv
            r2 = ru * ru + rv * rv
            rms = math.sqrt(float(r2.mean()))
            # Huber weights at 2.5x the median residual
            k = max(2.5 * math.sqrt(float(np.median(r2))), 0.25)
            nrm = np.sqrt(r2)
            w = np.where(nrm <= k, 1.0, k / np.maximum(nrm, 1e-12)) * self.point_w
            jw = jac * w[:, None, None]
            h = np.einsum("nra,nrb->ab", jw, jac)
            g = np.einsum("na,n->a", jw[:, 0], ru) + np.einsum("na,n->a", jw[:, 1], rv)
            if fix_rot:
                step = np.zeros(6)
                step[3:] = np.linalg.solve(h[3:, 3:] + 1e-9 * np.eye(3), -g[3:])
            else:
                step = np.linalg.solve(h + 1e-9 * np.eye(6), -g)
                rot = np.einsum("ab,bc->ac", rodrigues(step[:3]), rot)
            t = t + step[3:]
            if float(np.abs(step).max()) < 1e-6:
                break
        return rot, t, rms

    def solve(self, landmarks_normalized) -> tuple[np.ndarray, np.ndarray]:
        """(478 or 468, >=2) normalized landmarks -> (pose 4x4 shape->camera, pose-free mesh (468,3))."""
        lm = np.asarray(landmarks_normalized, dtype=np.float64)
        uv_all = np.empty((N_POINTS, 2))
        uv_all[:, 0] = lm[:N_POINTS, 0] * self.width
        uv_all[:, 1] = lm[:N_POINTS, 1] * self.height
        uv = uv_all[self.idx]
        if self.method == "procrustes" and lm.shape[1] >= 3:   # it needs the landmarks' depth
            rot, t = self._init(lm)
            t = t if self._t is None else self._t          # warm start: translation barely moves
            rot, t, rms = self._refine(rot, t, uv, fix_rot=True)
            if not np.isfinite(t).all() or t[2] > -1.0:
                rot, t = self._init(lm)
                rot, t, rms = self._refine(rot, t, uv, fix_rot=True)
            self._rot, self._t, self.last_rms_px = rot, t, rms
            return self._pose_and_mesh(rot, t, uv_all)
        if self._rot is None:
            self._rot, self._t = self._init(lm)
        rot, t, rms = self._refine(self._rot, self._t, uv)
        if not (np.isfinite(rot).all() and np.isfinite(t).all()) or t[2] > -1.0 or rms > 0.2 * self.height:
            rot, t = self._init(lm)           # lost track of the warm start: start afresh
            rot, t, rms = self._refine(rot, t, uv)
        # re-orthonormalise now and then drift from the many small updates
        u, _, vt = np.linalg.svd(rot)
        rot = np.einsum("ab,bc->ac", u, vt)
        self._rot, self._t, self.last_rms_px = rot, t, rms
        return self._pose_and_mesh(rot, t, uv_all)

    def _pose_and_mesh(self, rot, t, uv_all):
        pose = np.eye(4)
        pose[:3, :3] = rot
        pose[:3, 3] = t
        # pose-free mesh: each landmark on its camera ray, at the depth the posed shape gives it
        depth = -(np.einsum("ab,jb->ja", rot, self.shape)[:, 2] + t[2])
        cam = np.empty((N_POINTS, 3))
        cam[:, 0] = (uv_all[:, 0] - self.cx) / self.f * depth
        cam[:, 1] = -(uv_all[:, 1] - self.cy) / self.f * depth
        cam[:, 2] = -depth
        mesh = np.einsum("ja,ab->jb", cam - t, rot)    # R^T (p - t), row-wise
        return pose, mesh
