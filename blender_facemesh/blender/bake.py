"""Write a take onto targets: shape keys through the mapping, head/neck/eye bones, and (on the
capture face) shape keys fitted to the performer. Every target is checked before the first
write, so a bad target leaves the scene untouched."""

from __future__ import annotations

import numpy as np

from ..core.animation.bake import rig_channels, take_to_curves
from ..core.channels import ARKIT_NAMES
from .rig import canonical_to_blender
from .targets import FaceWriter, RigWriter, TargetError, require_shape_keys


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


def bake_take(context, take, character, *, mapping=None, bones: dict | None = None,
              profile=None, face_id=None, missing: str = "HOLD", neck_share: float = 0.3,
              use_location: bool = False, fit_shapes: bool = False, eye_range_deg: float = 30.0,
              take_name: str = "Take", scene=None, smoothing=None) -> dict:
    """Bulk-write the take's keys into the take's own action; returns counts, what was driven
    and warnings for the report. Raises TargetError / ValueError before writing anything when
    something is wrong. ``smoothing``: applied to the take's raw values first (none: raw);
    the take itself is not changed, so it can be baked again with other smoothing."""
    from ..core.animation.retarget import Mapping
    from ..core.solve.smoothing import smooth_take

    scene = scene or context.scene
    if character is None:
        raise TargetError("no character to bake onto: pick your character (its armature or mesh) "
                          "or build the capture rig")
    fps = scene.render.fps / scene.render.fps_base
    rest = None  # the performer's calibrated rest, else the one the live preview used, else the first frame
    if profile is not None and getattr(profile, "head_rest", None) is not None:
        rest = np.asarray(profile.head_rest, np.float64)
    elif take.meta.get("head_rest") is not None:
        rest = np.asarray(take.meta["head_rest"], np.float64).reshape(4, 4)
    from ..core.solve.smoothing import raw_take

    raw = take
    warnings = []
    if smoothing is not None and smoothing.enabled:
        if not raw_take(take):
            warnings.append("this take was smoothed when it was tracked (an older version): baked as it is, "
                            "without the scene's smoothing; track the video again to choose the smoothing")
        take = smooth_take(take, smoothing)
    curves = take_to_curves(take, fps, scene.frame_start, face_id, missing, rest=rest, profile=profile)
    face_writer = rig_writer = fit = None
    meshes = character.meshes
    require_shape_keys(meshes)  # before the mapping: an empty one would skip FaceWriter's own check
    if meshes:
        if mapping is None:
            mapping = Mapping.auto_map(character.key_names, moving=character.moving)
        if len(mapping.targets):
            face_writer = FaceWriter(meshes, mapping)
        else:
            warnings.append(f"no shape key of {character.name} matches a tracked channel "
                            f"({len(character.key_names)} keys, none driven): open Mapping and run "
                            "Map by Looking, or map keys by hand")
        face = meshes[0]
        if face_writer is not None and fit_shapes and is_capture_face(face):
            from ..core.solve.shapefit import ShapeFitError, fit_from_take

            try:
                fit = fit_from_take(raw, face_id=face_id, profile=profile)
            except ShapeFitError:
                fit = None  # a JSON take has no mesh: keys are still baked, the shapes stay
    if character.rig is not None:
        if bones and bones.get("head"):
            rig_writer = RigWriter(character.rig, bones, character.facing)
        else:
            warnings.append(f"no head bone found in {character.rig.name}: set the Head bone in the Character panel")
    if face_writer is None and rig_writer is None:
        raise TargetError(warnings[0] if warnings else
                          f"nothing to bake onto in {character.name}: it has no shape keys and no armature")

    from .keyframes import take_action

    action = take_action(take_name)
    done = {"frames": len(curves.frames), "shape_keys": 0, "bones": 0, "replay_error_mm": None,
            "action": action.name, "meshes": [], "channels": 0, "warnings": warnings,
            "character": character.summary(),
            "smoothing": smoothing.describe() if smoothing is not None else "raw"}
    if fit is not None:
        write_shape_fit(face, fit)
        done["replay_error_mm"] = float(fit.rms_mm)
    if face_writer is not None:
        done["shape_keys"] = face_writer.bake(curves.frames, curves.blendshapes, action)
        done["meshes"] = [m.name for m in face_writer.meshes]
        done["channels"] = len({c.source for c in mapping.channels if c.enabled})
    if rig_writer is not None:
        channels = rig_channels(curves.head_quaternion, curves.head_location, curves.blendshapes,
                                neck_share, use_location, rig_writer.has_neck, eye_range_deg)
        done["bones"] = rig_writer.bake(curves.frames, channels, action)
    return done
