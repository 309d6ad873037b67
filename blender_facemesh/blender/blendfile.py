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


def import_character(path: Path):
    """Import a character file; returns the object to pick (its armature, else the top of its
    keyed meshes)."""
    from ..core.errors import SettingsError

    before = set(bpy.data.objects)
    if path.suffix.lower() == ".fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    else:
        bpy.ops.import_scene.gltf(filepath=str(path))
    new = [o for o in bpy.data.objects if o not in before]
    arms = [o for o in new if o.type == "ARMATURE"]
    if arms:
        return max(arms, key=lambda a: len(a.data.bones))
    keyed = [o for o in new if o.type == "MESH" and o.data.shape_keys is not None]
    if not keyed:
        raise SettingsError(f"{path.name} has no armature and no mesh with shape keys: nothing to animate")
    top = max(keyed, key=lambda m: len(m.data.shape_keys.key_blocks))
    while top.parent is not None:
        top = top.parent
    return top


def _transfer_lines(done: dict) -> str:
    corr = done["correlation"]
    rows = [f"{n} {r:.2f}" for n, r in sorted(corr.items()) if r == r]
    return (f"transfer on {done['faces_found']}/{len(done['frames'])} rendered frames (correlation with the "
            f"performer): " + (", ".join(rows) if rows else "no channel could be measured"))


def write_blend(take, out: Path, model_path=None, character=None, look=False, check=0, smoothing=None) -> str:
    """The capture rig (or the ``character`` file, found and mapped) with ``take`` baked into
    the current (new) file, saved as ``out`` (the take as .npz beside it). Returns the summary."""
    from ..core.capture.model import load_model
    from . import options
    from .rig import build_rig
    from .sync import match_scene_to_take
    from .takes import bake_with_scene, describe, list_take

    scene = bpy.context.scene
    match_scene_to_take(scene, take)
    lines = []
    if character is None:
        build_rig(bpy.context, load_model(model_path))
        what = "the capture rig"
    else:
        from ..core.animation.retarget import Mapping

        scene.facemesh.character = import_character(Path(character))
        ch = options.character(scene)
        mapping = Mapping.auto_map(ch.key_names, moving=ch.moving) if ch.meshes else None
        if look and ch.meshes:
            from .probe import map_by_looking

            mapping, added, _silent = map_by_looking(scene, ch, mapping, model_path)
            lines.append(f"{len(added)} keys mapped by looking")
        if mapping is not None and len(mapping):
            options.fill_mapping_list(scene, mapping)
        what = ch.name
    out.parent.mkdir(parents=True, exist_ok=True)
    take_path = take.save(out.with_suffix(".npz"))
    if smoothing is not None:  # the file keeps the choice: re-baking in Blender gives the same keys
        from ..core.solve.smoothing import REGIONS

        pg = scene.facemesh.smoothing
        for region in REGIONS:
            setattr(pg, region, smoothing.level(region))
    done = bake_with_scene(bpy.context, take, scene, take_path)
    list_take(scene, take, take_path)
    if character is not None and check:
        from .probe import check_transfer

        lines.append(_transfer_lines(check_transfer(scene, ch, take, options.mapping(scene, ch), check,
                                                            model_path, options.profile(scene))))
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    text = f"wrote {out}: {what} with {describe(done)}; the take is in {take_path.name}"
    return "\n".join([text] + lines)
