"""Rotations as the whole project writes them: 3x3 matrices, quaternions (w, x, y, z), rotation
vectors and the head angles tests and reports speak in.

Head angles: ``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` of the head's rotation (canonical face ->
camera; camera +X right, +Y up, +Z toward the viewer): yaw > 0 turns the nose toward image
right, pitch > 0 tips it down, roll > 0 tilts the head's top toward image left.
"""

from __future__ import annotations

import math

import numpy as np


_EYE3 = np.eye(3)


def det3(m: np.ndarray) -> float:
    return float(m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
                 - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
                 + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


def rotation_part(pose: np.ndarray) -> np.ndarray:
    """The pure rotation of a similarity 4x4 (MediaPipe's matrices carry a scale)."""
    m = np.asarray(pose, dtype=np.float64)[:3, :3]
    if np.abs(m.T @ m - _EYE3).max() < 1e-9 and det3(m) > 0:
        return m.copy()  # a rotation already (a phone's head, our solved poses): no SVD on the live path
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, 2] *= -1
        r = u @ vt
    return r


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation taking ``a`` onto ``b`` (both 3x3 rotations)."""
    # ||A - B||_F = 2 sqrt(2) sin(angle / 2): accurate for tiny angles, where arccos of the trace is not
    d = np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) / (2.0 * np.sqrt(2.0))
    return float(np.degrees(2.0 * np.arcsin(min(1.0, d))))


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """3x3 rotation -> quaternion (w, x, y, z), w >= 0."""
    r = np.asarray(r, dtype=np.float64)
    t = np.trace(r)
    if t > 0:
        s = np.sqrt(t + 1.0) * 2
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.sqrt((q * q).sum())
    return q if q[0] >= 0 else -q


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q / np.sqrt((q * q).sum())
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])



def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation from angles in degrees, ``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)``.

    Right-handed rotations about the camera axes (+X right, +Y up, +Z toward the viewer):
      * yaw > 0: the nose swings toward image right (the subject turns to their own left);
      * pitch > 0: the nose swings down (the subject looks down);
      * roll > 0: the top of the head tilts toward image left (counter-clockwise on screen).
    """
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz


def matrix_to_euler(R: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`euler_to_matrix` (degrees), for reading poses back in tests and logs."""
    R = np.asarray(R, dtype=np.float64)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -R[1, 2]))))
    yaw = math.degrees(math.atan2(R[0, 2], R[2, 2]))
    roll = math.degrees(math.atan2(R[1, 0], R[1, 1]))
    return yaw, pitch, roll



def rodrigues(w: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) -> rotation matrices (..., 3, 3)."""
    w = np.asarray(w, dtype=np.float64)
    th = np.sqrt((w * w).sum(-1))[..., None, None]
    k = np.zeros(w.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -w[..., 2], w[..., 1], -w[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = w[..., 2], -w[..., 1], w[..., 0]
    small = th < 1e-8
    ths = np.where(small, 1.0, th)
    a = np.where(small, 1.0, np.sin(ths) / ths)
    b = np.where(small, 0.5, (1.0 - np.cos(ths)) / (ths * ths))
    return np.eye(3) + a * k + b * np.einsum("...ij,...jk->...ik", k, k)



def rotation_log(r: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> rotation vectors (..., 3), the inverse of :func:`rodrigues`
    for angles below 180 degrees (through quaternions, which stay accurate near zero)."""
    r = np.asarray(r, dtype=np.float64)
    flat = r.reshape(-1, 3, 3)
    q = np.array([matrix_to_quaternion(m) for m in flat]).reshape(r.shape[:-2] + (4,))
    s = np.sqrt((q[..., 1:] ** 2).sum(-1))
    angle = 2.0 * np.arctan2(s, q[..., 0])
    k = np.where(s > 1e-12, angle / np.where(s > 1e-12, s, 1.0), 2.0)
    return q[..., 1:] * k[..., None]


def continuous_quaternions(q: np.ndarray) -> np.ndarray:
    """Flip signs along a (N,4) quaternion sequence so neighbours lie on the same hemisphere;
    interpolating F-curves between q and -q would spin the head the long way round."""
    q = np.array(q, dtype=np.float64, copy=True)
    for i in range(1, len(q)):
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q


def livelink_rotation(yaw, pitch, roll) -> np.ndarray:
    """Live Link Face yaw/pitch/roll (radians, arrays) -> (..., 3, 3) rotations in camera axes
    (the app's conventions: core/formats/livelink.py's docstring; its UDP stream uses the same)."""
    a, b, c = -np.asarray(yaw, float), np.asarray(pitch, float), -np.asarray(roll, float)
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    return np.stack([  # Ry(a) @ Rx(b) @ Rz(c), multiplied out
        np.stack([ca * cc + sa * sb * sc, -ca * sc + sa * sb * cc, sa * cb], -1),
        np.stack([cb * sc, cb * cc, -sb], -1),
        np.stack([-sa * cc + ca * sb * sc, sa * sc + ca * sb * cc, ca * cb], -1),
    ], -2)


def livelink_angles(r) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) Live Link Face [yaw, pitch, roll] radians."""
    r = np.asarray(r, float)
    return np.stack([-np.arctan2(r[..., 0, 2], r[..., 2, 2]),
                     np.arcsin(np.clip(-r[..., 1, 2], -1.0, 1.0)),
                     -np.arctan2(r[..., 1, 0], r[..., 1, 1])], -1)
