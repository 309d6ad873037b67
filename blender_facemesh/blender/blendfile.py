"""A take into a fresh .blend: the capture rig, the keys baked, the scene set to the take.

What ``python -m blender_facemesh blend`` and ``batch --blend`` write, with the bpy module or
inside Blender. The caller registers the add-on between :func:`new_file` and :func:`write_blend`
(the command line does when Blender has not)."""

from __future__ import annotations

from pathlib import Path

import bpy


def new_file() -> bool:
    """An empty file; True when the add-on still has to be registered (it is inside Blender
    with the add-on enabled, not in a bare bpy module)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return not hasattr(bpy.types.Scene, "facemesh")


def write_blend(take, out: Path, model_path=None) -> str:
    """The capture rig with ``take`` baked into the current (new) file, saved as ``out`` (the
    take as .npz beside it). Returns the summary line."""
    from ..core.capture.model import load_model
    from .rig import build_rig
    from .sync import match_scene_to_take
    from .takes import bake_with_scene, describe, list_take

    scene = bpy.context.scene
    match_scene_to_take(scene, take)
    build_rig(bpy.context, load_model(model_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    take_path = take.save(out.with_suffix(".npz"))
    done = bake_with_scene(bpy.context, take, scene, take_path)
    list_take(scene, take, take_path)
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    return f"wrote {out}: the capture rig with {describe(done)}; the take is in {take_path.name}"
