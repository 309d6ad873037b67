"""``blend``: a video or take into an animated .blend (the capture rig, baked), with bpy."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import OutputError
from .common import (NO_BPY, apply_performer, check_output, fail, have_bpy, is_take_file, load_take,
                     save_take_or_keep, smoothing_settings, track_file)


def write_blend_file(take, out: Path, model_path=None, character=None, look=False, check=0, smoothing=None) -> str:
    """The capture rig (or ``character``, a file) with ``take`` baked, saved as ``out`` (bpy);
    the add-on registered for it."""
    from .. import register, unregister
    from ..blender.blendfile import new_file, write_blend

    try:
        registered_here = new_file()
        if registered_here:
            register()
        try:
            return write_blend(take, out, model_path, character=character, look=look, check=check,
                               smoothing=smoothing)
        finally:
            if registered_here:
                unregister()  # bpy 4.5 does not exit while add-on classes are still registered
    except (OSError, RuntimeError) as exc:
        raise OutputError(f"could not write {out}: {exc}") from exc


def cmd_blend(args) -> int:
    """Everything the add-on does for a video, headless: track, build the rig, bake, save."""
    from ..core.capture.model import find_model

    out = Path(args.output).expanduser().resolve()
    if out.suffix.lower() != ".blend":
        return fail(f"output {out.name} must end in .blend")
    if not have_bpy():
        return fail(f"the bpy module is not installed: {NO_BPY}")
    check_output(out)
    character = getattr(args, "character", None)
    if character is not None:
        character = Path(character).expanduser()
        if not character.is_file():
            return fail(f"character {character} does not exist")
        if character.suffix.lower() not in (".glb", ".gltf", ".vrm", ".fbx"):
            return fail(f"character {character.name}: give a .glb, .gltf, .vrm or .fbx file")
    elif getattr(args, "look", False) or getattr(args, "check", 0):
        return fail("--look and --check need --character")
    apply_performer(args)
    smoothing = smoothing_settings(args)
    find_model(args.model)
    tracked = not is_take_file(args.input)
    take = track_file(args.input, args) if tracked else load_take(args.input)
    if not len(take) or not take.face_present.any():
        return fail(f"no face found in {args.input}: nothing to animate")
    try:
        print(write_blend_file(take, out, args.model, character, getattr(args, "look", False),
                               getattr(args, "check", 0), smoothing))
    except OutputError as exc:
        if not tracked:
            raise
        try:  # the tracking is not thrown away with the .blend
            where = save_take_or_keep(take, out.with_suffix(".npz"))
        except OutputError as kept:
            raise OutputError(f"{exc}; {kept}") from None
        raise OutputError(f"{exc}; the tracked take is kept in {where}") from None
    return 0
