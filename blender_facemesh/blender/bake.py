"""Write a take onto targets: shape keys through the mapping, head/neck/eye bones, and (on the
capture face) shape keys fitted to the performer. Every target is checked before the first
write, so a bad target leaves the scene untouched."""

from __future__ import annotations

import numpy as np

from ..core.animation.bake import rig_channels, take_to_curves
from ..core.channels import ARKIT_NAMES
from .rig import canonical_to_blender
from .targets import FaceWriter, RigWriter, TargetError


def is_capture_face(face) -> bool:
    """The 468-vertex face with ARKit keys (ours, or a copy of it): shape keys can be fitted."""
    keys = face.data.shape_keys if face is not None and face.type == "MESH" else None
    return (keys is not None and len(face.data.vertices) == 468
            and all(n in keys.key_blocks for n in ARKIT_NAMES))


def write_shape_fit(face, fit) -> None:
    """Basis = the performer's fitted neutral face; each key = basis + its fitted delta."""
    keys = face.data.shape_keys
    base = canonical_to_blender(fit.base)
    flat = base.astype(np.float32).ravel()
    face.data.vertices.foreach_set("co", flat)
    keys.reference_key.data.foreach_set("co", flat)
    for j, name in enumerate(ARKIT_NAMES):
        co = canonical_to_blender(fit.base + fit.deltas[j]).astype(np.float32).ravel()
        keys.key_blocks[name].data.foreach_set("co", co)
    face.data.update()


def bake_take(context, take, face=None, rig=None, *, mapping=None, bones: dict | None = None,
              profile=None, face_id=None, missing: str = "HOLD", neck_share: float = 0.3,
              use_location: bool = False, fit_shapes: bool = False,
              action_name: str = "FaceMesh Take", scene=None) -> dict:
    """Bulk-write the take's keys; returns counts (and the shape fit's replay error) for the
    report. Raises TargetError / ValueError before writing anything when something is wrong."""
    from ..core.animation.retarget import Mapping

    scene = scene or context.scene
    fps = scene.render.fps / scene.render.fps_base
    rest = None  # the performer's calibrated rest, else the one the live preview used, else the first frame
    if profile is not None and getattr(profile, "head_rest", None) is not None:
        rest = np.asarray(profile.head_rest, np.float64)
    elif take.meta.get("head_rest") is not None:
        rest = np.asarray(take.meta["head_rest"], np.float64).reshape(4, 4)
    curves = take_to_curves(take, fps, scene.frame_start, face_id, missing, rest=rest, profile=profile)
    face_writer = rig_writer = fit = None
    if face is not None:
        if mapping is None:
            keys = face.data.shape_keys if face.type == "MESH" else None
            if keys is None:
                raise TargetError(f"{face.name} has no shape keys: add ARKit-named shape keys or pick another mesh")
            mapping = Mapping.auto_map([kb.name for kb in keys.key_blocks])
        face_writer = FaceWriter(face, mapping)
        if fit_shapes and is_capture_face(face):
            from ..core.solve.shapefit import ShapeFitError, fit_from_take

            try:
                fit = fit_from_take(take, face_id=face_id, profile=profile)
            except ShapeFitError:
                fit = None  # a JSON take has no mesh: keys are still baked, the shapes stay
    if rig is not None:
        rig_writer = RigWriter(rig, bones or {"head": "head", "neck": "neck"})
    if face_writer is None and rig_writer is None:
        raise TargetError("no target to bake onto: pick a face mesh or an armature")

    done = {"frames": len(curves.frames), "shape_keys": 0, "bones": 0, "replay_error_mm": None}
    if fit is not None:
        write_shape_fit(face, fit)
        done["replay_error_mm"] = float(fit.rms_mm)
    if face_writer is not None:
        done["shape_keys"] = face_writer.bake(curves.frames, curves.blendshapes, action_name)
    if rig_writer is not None:
        channels = rig_channels(curves.head_quaternion, curves.head_location, curves.blendshapes,
                                neck_share, use_location, rig_writer.has_neck)
        done["bones"] = rig_writer.bake(curves.frames, channels, action_name)
    return done
