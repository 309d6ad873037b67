"""The performer's own face shape (experimental, opt-in): everything the rest of the add-on uses
of it goes through the few functions here, so the feature lives in this folder alone.

- ``solver.py``: the bundle adjustment that solves the performer's rigid face from head turns,
  the refusals (too short, too little turn) and the result (:class:`FaceShapeCalibration`);
- ``pose.py``: the per-frame head pose on that face (:class:`ShapePose`), for the worker.

Whether a face shape should be used by default: :func:`quality_problems` (empty list: yes).

Callers: the worker asks :func:`head_pose_solver`; the command line, the operator and the live
timer ask :func:`from_take` / :func:`from_samples`; profiles are read and written through
:func:`of_profile` / :func:`into_profile` (the profile keeps the face shape as plain data).
"""

from __future__ import annotations

import numpy as np

from ..channels import N_LANDMARKS
from ..solve.calibration import CalibrationError, PerformerProfile
from .solver import FaceShapeCalibration, ShapeCalibrationError, calibrate_shape

__all__ = ["FaceShapeCalibration", "ShapeCalibrationError", "calibrate_shape", "from_take", "from_samples",
           "head_pose_solver", "of_profile", "into_profile", "quality_problems"]

_KEY = "face_shape"  # where a performer profile keeps it, under ``extra``


def from_take(take, canonical, fov_deg: float | None = None, name: str = "it") -> FaceShapeCalibration:
    """A head-turn take (``name``: its file, for the message) -> the performer's face shape; a
    take without a face or without landmarks (JSON and CSV takes) is refused with what to do."""
    track = take.face_track()
    if not track["present"].any():
        raise ShapeCalibrationError(f"no face in {name}: record the performer turning their head, facing the camera")
    if not take.has("landmarks") or np.isnan(track["landmarks"][track["present"]]).all():
        raise ShapeCalibrationError("this take has no landmarks (JSON and CSV takes carry pose and scores only): "
                                    "use the video or a .npz take")
    return calibrate_shape(track["landmarks"], track["present"], take.width, take.height, canonical,
                           fov_deg=fov_deg)


def from_samples(samples, width: int, height: int, canonical, fov_deg: float | None = None) -> FaceShapeCalibration:
    """A live head-turn stretch (the worker's samples) -> the performer's face shape."""
    present = np.array([bool(s.faces) for s in samples])
    lm = np.array([s.faces[0].landmarks if s.faces else np.full((N_LANDMARKS, 3), np.nan) for s in samples])
    return calibrate_shape(lm, present, width, height, canonical, fov_deg=fov_deg)


def quality_problems(face_shape: FaceShapeCalibration | None, canonical=None) -> list[str]:
    """Why ``face_shape`` should not drive the head pose by default (empty: it may); None -> a
    single "no face shape" entry. See :meth:`FaceShapeCalibration.quality_problems` for why each
    check; callers that use a shape the check refuses should do so only when asked explicitly."""
    if face_shape is None:
        return ["no face shape: calibrate one from a head-turn take"]
    return face_shape.quality_problems(canonical)


class _ShapeGeometry:
    """FaceGeometry's ``solve`` over a performer's ShapePose (one per face: it warm-starts)."""

    def __init__(self, pose_solver):
        self.pose_solver = pose_solver

    def solve(self, landmarks: np.ndarray):
        pose, mesh = self.pose_solver.solve(landmarks)
        return pose, None, mesh


def head_pose_solver(face_shape: FaceShapeCalibration, width: int, height: int, fov_deg: float):
    """What the worker uses instead of FaceGeometry for a performer with a face shape:
    ``solve(landmarks) -> (pose, None, pose-free mesh)``."""
    from .pose import ShapePose

    return _ShapeGeometry(ShapePose(face_shape, width, height, fov_deg))


def of_profile(profile: PerformerProfile) -> FaceShapeCalibration | None:
    """The face shape a performer profile carries, or None; CalibrationError when unreadable."""
    d = profile.extra.get(_KEY)
    if not d:
        return None
    try:
        return FaceShapeCalibration.from_dict(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"the performer's face shape is unreadable ({exc}); calibrate it again") from exc


def into_profile(profile: PerformerProfile, calib: FaceShapeCalibration) -> PerformerProfile:
    """A copy of ``profile`` carrying ``calib`` as its face shape (neutral and ranges kept)."""
    d = profile.to_dict()
    d.setdefault("extra", {})[_KEY] = calib.to_dict()
    return PerformerProfile.from_dict(d)
