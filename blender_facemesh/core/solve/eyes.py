"""Gaze from the eyeLook scores: each eye's yaw and pitch in degrees, for eye bones and for the
Live Link CSV's eye columns. Plain numpy; the limits are how far a human eye turns."""

from __future__ import annotations

import numpy as np

from ..channels import ARKIT_INDEX


def eye_rotations(scores, max_yaw_deg: float = 30.0, max_pitch_up_deg: float = 25.0,
                  max_pitch_down_deg: float = 30.0) -> np.ndarray:
    """(N, 52) scores -> (N, 2, 2) radians: [eye 0=left, 1=right][yaw, pitch].

    Left/right are the performer's (eyeLook*Left is the left eye). Yaw > 0 turns the eyes
    toward the performer's left: eyeLookOutLeft for the left eye, eyeLookInRight for the right
    (for a Z-up character facing -Y that is a positive rotation about +Z). Pitch > 0 looks up.
    Scores are clipped to 0..1 first; NaN stays NaN. Bone axes are the caller's business.
    """
    s = np.asarray(scores, dtype=np.float64)
    single = s.ndim == 1
    s = np.clip(np.atleast_2d(s), 0.0, 1.0)
    g = lambda n: s[:, ARKIT_INDEX[n]]  # noqa: E731
    yaw, up, down = np.radians([max_yaw_deg, max_pitch_up_deg, max_pitch_down_deg])
    out = np.empty((len(s), 2, 2))
    out[:, 0, 0] = (g("eyeLookOutLeft") - g("eyeLookInLeft")) * yaw
    out[:, 1, 0] = (g("eyeLookInRight") - g("eyeLookOutRight")) * yaw
    for e, side in enumerate(("Left", "Right")):
        out[:, e, 1] = g(f"eyeLookUp{side}") * up - g(f"eyeLookDown{side}") * down
    return out[0] if single else out

