"""From Blender settings (add-on preferences, ``scene.facemesh``) to the core's plain objects.

One place so the operators, the live timer and the panel read settings the same way.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.camera import DEFAULT_FOV_DEG
from ..core.solve.filters import FilterSettings, OneEuroSettings
from ..core.capture.landmarker import LandmarkerSettings
from ..core.tracking.worker import WorkerSettings
from .rig import FACE_NAME, RIG_NAME

PREVIEW_WIDTH = 320


ADDON_PACKAGE = __package__.rpartition(".")[0]  # "blender_facemesh", or "bl_ext.<repo>.blender_facemesh"


def preferences(context):
    """The add-on preferences, or None when the add-on is loaded without being enabled (tests)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon else None


def model_path(context) -> str | None:
    p = preferences(context)
    return bpy.path.abspath(p.model_path) if p is not None and p.model_path else None


def check_model(context) -> str:
    """'' when the model is usable, else the message saying what to do (checked up front so a
    missing model is an operator report, not a failure on the worker thread later)."""
    from ..core.capture.model import ModelError, find_model

    try:
        find_model(model_path(context))
    except ModelError as exc:
        return str(exc)
    return ""


def worker_settings(context, preview: bool = False) -> WorkerSettings:
    p = preferences(context)
    lm = LandmarkerSettings(model_path=model_path(context), delegate=p.delegate if p else "AUTO")
    if p is None:
        filters, fov = FilterSettings(), DEFAULT_FOV_DEG
    elif not p.smoothing:
        filters, fov = FilterSettings.off(), p.fov_deg
    else:
        filters = FilterSettings(blendshapes=OneEuroSettings(min_cutoff=p.expression_cutoff, beta=p.expression_beta),
                                 pose=OneEuroSettings(min_cutoff=p.pose_cutoff, beta=p.pose_beta))
        fov = p.fov_deg
    rate = p.preview_rate if p is not None else 4.0
    shape = face_shape(context.scene)
    if shape is not None:
        fov = shape.fov_deg  # the calibration knows the camera it was made with
    return WorkerSettings(landmarker=lm, filters=filters, fov_deg=fov, face_shape=shape,
                          preview_width=PREVIEW_WIDTH if preview and rate > 0 else 0,
                          preview_rate=rate if preview else 0.0)


def targets(scene):
    """(face, rig): the chosen targets, else the capture rig when it exists."""
    s = scene.facemesh
    face = s.target_mesh or bpy.data.objects.get(FACE_NAME)
    rig = s.target_rig or bpy.data.objects.get(RIG_NAME)
    if face is not None and face.type != "MESH":
        face = None
    if rig is not None and rig.type != "ARMATURE":
        rig = None
    return face, rig


def bones(scene) -> dict:
    s = scene.facemesh
    return {"head": s.head_bone, "neck": s.neck_bone, "eye_left": s.eye_left_bone,
            "eye_right": s.eye_right_bone}


def profile(scene):
    """The performer calibration to apply, or None. Raises CalibrationError for a bad file."""
    s = scene.facemesh
    if not s.use_calibration or not s.performer_path:
        return None
    from ..core.solve.calibration import PerformerProfile

    path = Path(bpy.path.abspath(s.performer_path))
    return PerformerProfile.load(path)


def saved_profile(scene):
    """The performer file as it is on disk, or None when there is none or it is unreadable
    (a new calibration then replaces it; applying it reports the problem)."""
    from ..core.solve.calibration import CalibrationError, PerformerProfile

    path = scene.facemesh.performer_path
    if not path:
        return None
    try:
        return PerformerProfile.load(Path(bpy.path.abspath(path)))
    except CalibrationError:
        return None


def face_shape(scene):
    """The performer's calibrated 3D face when asked for (Head Pose from Face Shape) and the
    performer file has one."""
    from ..core import faceshape
    from ..core.solve.calibration import CalibrationError

    if not scene.facemesh.use_face_shape:
        return None
    prof = saved_profile(scene)
    try:
        return faceshape.of_profile(prof) if prof is not None else None
    except CalibrationError:
        return None  # a broken face shape is reported where it is applied


def mapping(scene, face):
    """The mapping list in the panel, or an automatic one for ``face`` when the list is empty."""
    from ..core.animation.retarget import ChannelMapping, Mapping

    items = scene.facemesh.mappings
    if len(items):
        return Mapping([ChannelMapping(m.source, m.target, m.gain, m.offset, m.clamp_min, m.clamp_max, m.enabled)
                        for m in items], preset=scene.facemesh.mapping_preset)
    if face is None or face.data.shape_keys is None:
        return None
    return Mapping.auto_map([kb.name for kb in face.data.shape_keys.key_blocks])


def fill_mapping_list(scene, mapping) -> None:
    items = scene.facemesh.mappings
    items.clear()
    for m in mapping.channels:
        it = items.add()
        it.source, it.target, it.gain, it.offset = m.source, m.target, m.gain, m.offset
        it.clamp_min, it.clamp_max, it.enabled = m.clamp_min, m.clamp_max, m.enabled
    scene.facemesh.mapping_preset = mapping.preset or ""


def take_dir(scene) -> Path:
    """Where takes are saved: the scene's folder (relative to the .blend), or a temporary folder
    for an unsaved file."""
    import tempfile

    raw = scene.facemesh.take_dir or "//facemesh_takes/"
    if raw.startswith("//") and not bpy.data.filepath:
        return Path(tempfile.gettempdir()) / "facemesh_takes"
    return Path(bpy.path.abspath(raw))


def bake_kwargs(scene) -> dict:
    """Everything bake_take needs besides the take and targets."""
    s = scene.facemesh
    face, rig = targets(scene)
    return {"face": face, "rig": rig, "mapping": mapping(scene, face) if face else None,
            "bones": bones(scene), "profile": profile(scene), "missing": s.missing,
            "neck_share": s.neck_share, "use_location": s.use_location, "fit_shapes": s.fit_shapes}
