"""Saving takes and performer profiles next to the .blend, and baking a finished take with the
scene's settings: shared by live capture, video processing and the bake operator."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import bpy

from ..core.errors import FacemeshError
from ..core.files import safe_stem
from . import options


def _temp_takes() -> Path:
    return Path(tempfile.gettempdir()) / "facemesh_takes"


def new_take_path(scene, stem: str = "take") -> Path:
    """Where a take about to be recorded will be saved: the scene's takes folder, or the
    temporary folder when that cannot be made (its journal streams beside it meanwhile)."""
    folder = options.take_dir(scene) if scene is not None else _temp_takes()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = _temp_takes()
    return folder / f"{stem}_{datetime.now():%Y%m%d_%H%M%S_%f}.npz"


def save_take(take, scene, stem: str = "take") -> Path:
    """Save into the scene's takes folder; if that cannot be written, into the temporary folder
    (a recording is never dropped because of a bad folder setting). A recorded take is saved
    where its journal is, and the journal is deleted once the take is safely on disk."""
    journal = take.journal
    planned = journal.take_path if journal is not None else new_take_path(scene, stem)
    try:
        path = take.save(planned)
    except OSError:
        if planned.parent == _temp_takes():
            raise
        path = take.save(_temp_takes() / planned.name)
    if journal is not None:
        journal.discard()
        take.journal = None
    if scene is not None:
        list_take(scene, take, path)
    return path


def list_take(scene, take, path) -> None:
    """Add a saved take to the scene's take list (or refresh its entry) and make it current."""
    s = scene.facemesh
    path = str(path)
    item = next((t for t in s.takes if t.filepath == path), None) or s.takes.add()
    item.filepath = path
    item.name = item.name or Path(path).stem
    item.frames, item.duration, item.fps = len(take), take.duration, take.fps
    src = take.source or {}
    item.source = Path(str(src.get("name", ""))).name or str(src.get("kind", ""))
    s.take_index = list(s.takes).index(item)
    s.last_take = path


def take_name(path) -> str:
    """What a take is called in the list and in its action's name: its file's stem."""
    return Path(str(path)).stem if path else "Take"


def bake_with_scene(context, take, scene=None, path=None, **overrides) -> dict:
    """Bake with the scene's character and settings (``overrides``: any of them replaced, e.g.
    the command line's smoothing) into the take's own action (named after the take file
    ``path``); raises FacemeshError (TargetError, TakeError...) untouched."""
    from .bake import bake_take

    scene = scene or context.scene
    if "character" in overrides or not len(scene.facemesh.performers):
        done = bake_take(context, take, scene=scene, take_name=take_name(path),
                         **{**options.bake_kwargs(scene), **overrides})
    else:  # each performer brings their own character, mapping, bones and calibration
        done = _bake_performers(context, take, scene, take_name(path), {**options.bake_settings(scene), **overrides})
    if done.get("replay_error_mm") is not None:
        scene.facemesh.replay_error_mm = done["replay_error_mm"]
    return done


def _bake_performers(context, take, scene, name, kwargs) -> dict:
    """Each listed performer's face onto their own character, into the take's one action (a slot
    per character). Performers the take does not have are skipped with a warning."""
    from .bake import bake_take
    from .targets import TargetError

    targets = options.performer_targets(scene)
    if not targets:
        raise TargetError("no performer has a character to drive: pick a character for a performer "
                          "(or the scene's character for the first)")
    present = set(take.face_counts())
    done, skipped = None, []
    for tgt in targets:
        if tgt.face_id not in present:
            skipped.append(tgt.name)
            continue
        one = bake_take(context, take, scene=scene, take_name=name,
                        **{**kwargs, "character": tgt.character, "mapping": tgt.mapping, "bones": tgt.bones,
                           "profile": tgt.profile, "face_id": tgt.face_id})
        one["performer"] = tgt.name
        if done is None:
            done = {**one, "performers": [one]}
        else:
            done["performers"].append(one)
            done["warnings"] = done["warnings"] + one["warnings"]
    if done is None:
        raise TargetError(f"the take has none of the listed performers ({', '.join(skipped)}): "
                          "press Find Performers to list the take's faces")
    for who in skipped:
        done["warnings"].append(f"{who} is not in this take: not baked")
    return done


def describe(done: dict) -> str:
    text = f"baked {done['frames']} frames ({done['shape_keys']} shape-key keys, {done['bones']} bone keys)"
    meshes = done.get("meshes") or []
    if meshes:
        text += f" onto {len(meshes)} mesh{'es' if len(meshes) != 1 else ''}, {done.get('channels', 0)} channels"
    if done.get("action"):
        text += f", action {done['action']!r}"
    if done.get("smoothing"):
        text += f", smoothing {done['smoothing']}"
    if done.get("replay_error_mm") is not None:
        text += f"; shape keys fitted, replay error {done['replay_error_mm']:.2f} mm RMS"
    if done.get("character"):
        text += f"; character {done['character']}"
    for other in (done.get("performers") or [])[1:]:
        text += (f"; {other['performer']}: {other['shape_keys']} shape-key keys, {other['bones']} bone keys "
                 f"on {other['character']}")
    if done.get("performers"):
        text = f"{done['performers'][0]['performer']}: " + text
    for w in done.get("warnings") or ():
        text += f"; WARNING: {w}"
    return text


def report_level(done: dict) -> set:
    """A bake with warnings is reported as a warning, not as plain success."""
    return {"WARNING"} if done.get("warnings") else {"INFO"}


def save_and_bake(take, scene, bake: bool = True) -> dict:
    """Save first (the frames are safe on disk whatever happens next), then bake. Never raises
    for a bad target: the message says what went wrong."""
    if take is None:
        return {"message": ""}
    try:
        path = save_take(take, scene)
    except OSError as exc:
        kept = ""
        if take.journal is not None:  # still on disk: offered for recovery like a crash's
            from . import recovery

            recovery.scan(scene)
            kept = f"; its frames are kept in {take.journal.path}: recover them from the Capture panel"
        return {"frames": len(take), "message": f"could not save the take ({exc}){kept}; check the takes folder"}
    out = {"take": str(path), "frames": len(take), "message": f"saved {len(take)} frames to {path}"}
    if bake and scene is not None:
        try:
            done = bake_with_scene(bpy.context, take, scene, path)
        except FacemeshError as exc:
            out["message"] += f"; not baked: {exc}"
        else:
            out.update(done)
            out["message"] += "; " + describe(done)
            if not bpy.app.background:  # from a timer there is no operator to make the undo step
                bpy.ops.ed.undo_push(message="FaceMesh: bake recording")
    return out


def save_profile(scene, prof, performer=None) -> Path:
    """Write the performer profile to the file options.profile_owner names (the scene's, or a
    listed ``performer``'s own), set to a default if empty."""
    owner = options.profile_owner(scene, performer)
    if not owner.performer_path:
        who = "" if owner is scene.facemesh else "_" + safe_stem(owner.name or owner.face_id, "face")
        stem = f"performer{who}"
        owner.performer_path = (f"//{stem}.json" if bpy.data.filepath
                                else str(options.take_dir(scene) / f"{stem}.json"))
    path = Path(bpy.path.abspath(owner.performer_path))
    prof.save(path)
    return path


def store_face_shape(scene, calib) -> str:
    """Put the face shape into the performer file (neutral and ranges kept); returns the report."""
    from ..core import faceshape
    from ..core.solve.calibration import PerformerProfile

    base = options.saved_profile(scene)
    path = save_profile(scene, faceshape.into_profile(base or PerformerProfile(), calib))
    fov = f"{calib.fov_deg:.1f} deg" + (" (estimated)" if calib.fov_estimated else "")
    return (f"face shape calibrated from {calib.frames_used} frames: reprojection error "
            f"{calib.reprojection_px:.2f} px, yaw {calib.yaw_range_deg[0]:.0f} to {calib.yaw_range_deg[1]:.0f} deg, "
            f"pitch {calib.pitch_range_deg[0]:.0f} to {calib.pitch_range_deg[1]:.0f} deg, field of view {fov}; "
            f"saved to {path}")
