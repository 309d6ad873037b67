"""From Blender settings (add-on preferences, ``scene.facemesh``) to the core's plain objects.

One place so the operators, the live timer and the panel read settings the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ..core.camera import DEFAULT_FOV_DEG
from ..core.capture.landmarker import LandmarkerSettings
from ..core.tracking.worker import WorkerSettings

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
    lm = LandmarkerSettings(model_path=model_path(context), delegate=p.delegate if p else "AUTO",
                            num_faces=context.scene.facemesh.num_faces)
    fov = p.fov_deg if p is not None else DEFAULT_FOV_DEG
    rate = p.preview_rate if p is not None else 4.0
    shape = face_shape(context.scene)
    if shape is not None:
        fov = shape.fov_deg  # the calibration knows the camera it was made with
    return WorkerSettings(landmarker=lm, smoothing=live_smoothing(context), fov_deg=fov, face_shape=shape,
                          preview_width=PREVIEW_WIDTH if preview and rate > 0 else 0,
                          preview_rate=rate if preview else 0.0)


def live_smoothing(context):
    """What the live rig shows: the preferences' live smoothing (Balanced without them)."""
    from ..core.solve.smoothing import Smoothing

    p = preferences(context)
    return smoothing_of(p.live_smoothing) if p is not None else Smoothing()


def bake_smoothing(scene):
    """What bakes and exports apply to the raw take: the scene's smoothing."""
    return smoothing_of(scene.facemesh.smoothing)


def smoothing_of(pg):
    """The core's Smoothing from a smoothing property group (the panel's or the preferences')."""
    from ..core.solve.smoothing import REGIONS, Smoothing

    return Smoothing(*(getattr(pg, r) for r in REGIONS), preset=pg.preset)


def character(scene):
    """The scene's character resolved (meshes, armature, bones, facing), or None."""
    from .character import pick

    return pick(scene)


def targets(scene):
    """(main mesh, armature) of the scene's character; either may be None."""
    ch = character(scene)
    if ch is None:
        return None, None
    return (ch.meshes[0] if ch.meshes else None), ch.rig


def gaze_on_bones(scene, ch) -> bool:
    """Whether the gaze turns eye bones (and so leaves the eyeLook keys alone)."""
    g = scene.facemesh.gaze
    has_eyes = ch is not None and ch.rig is not None and bool(ch.bones.get("eye_left") or ch.bones.get("eye_right"))
    return has_eyes and g in ("AUTO", "BONES", "BOTH")


def bones(scene, ch) -> dict:
    """Role -> bone name for the rig writer (eye bones only when the gaze goes to them)."""
    found = dict(ch.bones.bones) if ch is not None else {}
    if not gaze_on_bones(scene, ch):
        found.pop("eye_left", None)
        found.pop("eye_right", None)
    return found


def profile_owner(scene, performer=None):
    """What holds the performer file a calibration is read from and saved to: a listed
    performer's own row, or the scene's settings (no performer, or the first one without a file
    of its own)."""
    s = scene.facemesh
    if performer is None or (not performer.performer_path and len(s.performers) and performer == s.performers[0]):
        return s
    return performer


def profile(scene, performer=None):
    """The calibration to apply (the scene's, or a listed ``performer``'s), or None. Raises
    CalibrationError for a bad file."""
    path = profile_owner(scene, performer).performer_path
    if not scene.facemesh.use_calibration or not path:
        return None
    from ..core.solve.calibration import PerformerProfile

    return PerformerProfile.load(Path(bpy.path.abspath(path)))


@dataclass
class PerformerTarget:
    """One performer's face and what it drives: bakes and the live rig read the same list."""
    face_id: int | None   # None: the first face seen (no performers listed)
    name: str
    character: object     # blender.character.Character
    mapping: object
    bones: dict
    profile: object


def performer_targets(scene) -> list[PerformerTarget]:
    """Who drives what: with no performers listed, the first face drives the scene's character
    (as it always has); else each listed performer with a character drives it, and the first
    without one the scene's character. Two performers on one character is a TargetError."""
    from .character import resolve
    from .targets import TargetError

    s = scene.facemesh
    main = character(scene)

    def target(face_id, name, ch, performer=None):
        own = main is not None and ch.root == main.root  # the mapping list is made for the scene's character
        return PerformerTarget(face_id, name, ch, mapping(scene, ch, use_list=own) if ch.meshes else None,
                               bones(scene, ch), profile(scene, performer))

    if not len(s.performers):
        return [target(None, "", main)] if main is not None else []
    out, owner = [], {}
    for i, p in enumerate(s.performers):
        if p.character is None:
            ch = main if i == 0 else None
        else:
            ch = resolve(p.character)
        if ch is None:
            continue
        key = ch.root.name
        label = p.name or f"face {p.face_id}"
        if key in owner:
            raise TargetError(f"{owner[key]} and {label} both drive {ch.name}: pick another character for one of them")
        owner[key] = label
        out.append(target(p.face_id, label, ch, p))
    return out


def saved_profile(scene, performer=None):
    """The performer file (the scene's, or a listed ``performer``'s) as it is on disk, or None
    when there is none or it is unreadable (a new calibration then replaces it; applying it
    reports the problem)."""
    from ..core.solve.calibration import CalibrationError, PerformerProfile

    path = profile_owner(scene, performer).performer_path
    if not path:
        return None
    try:
        return PerformerProfile.load(Path(bpy.path.abspath(path)))
    except CalibrationError:
        return None


def face_shape(scene):
    """The performer's calibrated 3D face, used for the head pose (Head Pose from Face Shape, on
    by default) when the performer file has one that passes its quality check."""
    from ..core import faceshape
    from ..core.solve.calibration import CalibrationError

    if not scene.facemesh.use_face_shape:
        return None
    prof = saved_profile(scene)
    try:
        shape = faceshape.of_profile(prof) if prof is not None else None
    except CalibrationError:
        return None  # a broken face shape is reported where it is applied
    return shape if shape is not None and not faceshape.quality_problems(shape) else None


def mapping(scene, ch, use_list: bool = True):
    """The mapping list in the panel, or an automatic one for the character when the list is
    empty (or ``use_list`` is off: another performer's character, which the list is not made
    for); without eyeLook channels when the gaze turns eye bones (unless asked for both)."""
    from ..core.animation.retarget import ChannelMapping, Mapping

    items = scene.facemesh.mappings
    if use_list and len(items):
        m = Mapping([ChannelMapping(i.source, i.target, i.gain, i.offset, i.clamp_min, i.clamp_max, i.enabled)
                     for i in items], preset=scene.facemesh.mapping_preset)
    elif ch is None or not ch.meshes:
        return None
    else:
        m = Mapping.auto_map(ch.key_names, moving=ch.moving)
    if not gaze_keys_driven(scene, ch):
        m.channels = [c for c in m.channels if not c.source.startswith("eyeLook")]
    return m


def gaze_keys_driven(scene, ch) -> bool:
    """Whether the eyeLook channels drive shape keys (they do not while eye bones take the gaze)."""
    return ch is None or not gaze_on_bones(scene, ch) or _gaze_both(scene, ch)


def _gaze_both(scene, ch) -> bool:
    """Asked for, or the capture face: its eyeLook keys are the performer's own eyelid shapes
    and it has no eyeballs for the eye bones to turn twice."""
    from .bake import is_capture_face

    g = scene.facemesh.gaze
    return g == "BOTH" or (g == "AUTO" and bool(ch.meshes) and is_capture_face(ch.meshes[0]))


def fill_mapping_list(scene, mapping) -> None:
    """The mapping into the panel's list, and every key it leaves undriven into the other list."""
    items = scene.facemesh.mappings
    items.clear()
    undriven = scene.facemesh.undriven
    undriven.clear()
    used = set(mapping.targets)
    empty = set(mapping.empty_targets)
    for name in mapping.unmatched_targets:
        it = undriven.add()
        it.name = name
        it.reason = "deforms nothing" if name in empty else "no channel matches its name"
    for name in mapping.empty_targets:
        if name in used:
            it = undriven.add()
            it.name, it.reason = name, "mapped, but deforms nothing"
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
    """Everything bake_take needs besides the take: the scene's character and the settings."""
    ch = character(scene)
    return {"character": ch, "mapping": mapping(scene, ch), "bones": bones(scene, ch),
            "profile": profile(scene), **bake_settings(scene)}


def bake_settings(scene) -> dict:
    """The scene's bake settings, whoever is baked (each performer brings their own character)."""
    s = scene.facemesh
    return {"missing": s.missing, "neck_share": s.neck_share, "use_location": s.use_location,
            "fit_shapes": s.fit_shapes, "eye_range_deg": s.eye_range, "smoothing": bake_smoothing(scene)}
