"""Screen landmarks -> metric 3D landmarks -> head pose and pose-free face mesh.

A numpy re-implementation of MediaPipe's face geometry pipeline
(``mediapipe/modules/face_geometry/libs/geometry_pipeline.cc``), so that we control the
camera's field of view and get the pose-free mesh that the Tasks API does not return.
Units are centimetres; camera at the origin looking down -Z, +Y up.
"""

from __future__ import annotations

import numpy as np

from ..camera import DEFAULT_FOV_DEG, Frustum
from ..channels import N_MESH_VERTICES
from ..errors import SettingsError
from ..rotations import det3


# OpenBLAS (numpy's BLAS on most platforms) wakes its whole thread pool even for 3x3 products,
# and its idle threads spin: during capture that steals a core from MediaPipe. The per-frame
# maths below is tiny, so it avoids BLAS: products via einsum, determinants and inverses by hand.

def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,jk->ik", a, b)


def invert_similarity(m: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 scale * rotation + translation, exactly and without LAPACK."""
    rs = m[:3, :3]
    s2 = float(np.einsum("i,i->", rs[:, 0], rs[:, 0]))  # scale squared
    inv = np.eye(4)
    inv[:3, :3] = rs.T / s2
    inv[:3, 3] = -np.einsum("ij,j->i", inv[:3, :3], m[:3, 3])
    return inv


def weighted_procrustes(source: np.ndarray, target: np.ndarray, sqrt_w: np.ndarray) -> np.ndarray:
    """4x4 similarity (scale * R, t) taking ``source`` (N,3) onto ``target`` (N,3).

    Same algebra as MediaPipe's FloatPrecisionProcrustesSolver (Akca 2003): weights enter
    as their square roots, reflection is removed by flipping the last left-singular vector.
    """
    w = sqrt_w[:, None]
    ws = source * w
    wt = target * w
    total = float(np.dot(sqrt_w, sqrt_w))
    src_center = (ws * w).sum(axis=0) / total
    cws = ws - src_center[None, :] * w
    design = np.einsum("ni,nj->ij", wt, cws)
    u, _, vt = np.linalg.svd(design)
    if det3(u) * det3(vt) < 0:
        u[:, 2] *= -1
    rot = _matmul(u, vt)
    scale = float(np.sum(_matmul(cws, rot.T) * wt) / np.sum(cws * ws))
    rs = scale * rot
    trans = ((wt - _matmul(ws, rs.T)) * w).sum(axis=0) / total
    m = np.eye(4)
    m[:3, :3] = rs
    m[:3, 3] = trans
    return m


class FaceGeometry:
    """Per-image-size helper that turns one face's landmarks into metric space."""

    def __init__(self, canonical: np.ndarray, weights: np.ndarray, width: int, height: int,
                 fov_deg: float = DEFAULT_FOV_DEG):
        if fov_deg <= 1 or fov_deg >= 179:
            raise SettingsError(f"field of view must be between 1 and 179 degrees, got {fov_deg}")
        self.canonical = np.asarray(canonical, dtype=np.float64)
        self.width, self.height, self.fov_deg = int(width), int(height), float(fov_deg)
        self.frustum = Frustum.for_image(width, height, fov_deg)
        # only the basis landmarks carry weight; solving on them alone is exact and 14x smaller
        self.basis = np.flatnonzero(weights > 0)
        self.sqrt_w = np.sqrt(weights[self.basis])
        self.canonical_basis = self.canonical[self.basis]

    def _project(self, normalized: np.ndarray) -> np.ndarray:
        """Normalized image landmarks (N,3) -> near-plane coordinates (z scaled like x)."""
        f = self.frustum
        xs, ys = f.right - f.left, f.top - f.bottom
        p = np.empty_like(normalized, dtype=np.float64)
        p[:, 0] = normalized[:, 0] * xs + f.left
        p[:, 1] = (1.0 - normalized[:, 1]) * ys + f.bottom
        p[:, 2] = normalized[:, 2] * xs
        return p

    def _scale(self, pts: np.ndarray) -> float:
        m = weighted_procrustes(self.canonical_basis, pts[self.basis], self.sqrt_w)
        return float(np.sqrt(np.sum(m[:3, 0] ** 2)))

    def _unproject(self, screen: np.ndarray, depth_offset: float, scale: float) -> np.ndarray:
        near = self.frustum.near
        out = np.empty_like(screen)
        depth = (screen[:, 2] - depth_offset + near) / scale
        out[:, 0] = screen[:, 0] * depth / near
        out[:, 1] = screen[:, 1] * depth / near
        out[:, 2] = -depth
        return out

    def metric_landmarks(self, normalized: np.ndarray) -> np.ndarray:
        """(>=468,3) normalized landmarks -> (468,3) metric landmarks in camera space (cm)."""
        screen = self._project(np.asarray(normalized[:N_MESH_VERTICES], dtype=np.float64))
        depth_offset = float(screen[:, 2].mean())
        first = screen.copy()
        first[:, 2] *= -1.0
        s1 = self._scale(first)
        s2 = self._scale(self._unproject(screen, depth_offset, s1))
        return self._unproject(screen, depth_offset, s1 * s2)

    def solve(self, normalized: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (head pose 4x4 canonical->camera, metric landmarks (468,3), pose-free mesh (468,3))."""
        metric = self.metric_landmarks(normalized)
        pose = weighted_procrustes(self.canonical_basis, metric[self.basis], self.sqrt_w)
        inv = invert_similarity(pose)
        mesh = _matmul(metric, inv[:3, :3].T) + inv[:3, 3]
        return pose, metric, mesh


