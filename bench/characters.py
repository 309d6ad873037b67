"""Retargeting onto real characters, run by hand: python bench/characters.py [VIDEO] [--frames N]

For every character in ../shared/characters (or $BLENDER_FACEMESH_CHARACTERS): pick only the
character, Auto Map (and Map by Looking where names leave keys undriven), process the video,
then render N baked frames and read them with the face landmarker. Prints, per character:
channels driven, meshes driven, keys mapped by looking, and the correlation of the character's
jawOpen, smile and blink with the performer's (NaN: that channel is not driven, did not move,
or the landmarker does not see this face). Default video: ../shared/footage's
studio_jaw_blink_smile.mp4 when present, else the generated sample clip.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ROOTS = {"facecap.glb": "Empty", "ict_facekit.glb": "ICTFaceModel"}  # no armature: the mesh or the empty above it


def _default_video() -> Path:
    clip = ROOT.parent / "shared" / "footage" / "studio_jaw_blink_smile.mp4"
    if clip.is_file():
        return clip
    from blender_facemesh.core.testing.synthetic import sample_clip_path

    return sample_clip_path(Path("/tmp/facemesh_bench"))


def _root(bpy, name: str):
    if name in ROOTS:
        return bpy.data.objects[ROOTS[name]]
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    return arms[0] if arms else next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path)
    ap.add_argument("--frames", type=int, default=30, help="baked frames rendered for the transfer check")
    args = ap.parse_args()
    import bpy

    import blender_facemesh
    from blender_facemesh.blender import options
    from blender_facemesh.blender.probe import check_transfer, map_by_looking
    from blender_facemesh.core.animation.retarget import Mapping
    from blender_facemesh.core.errors import FacemeshError
    from blender_facemesh.core.take import Take

    chars = Path(os.environ.get("BLENDER_FACEMESH_CHARACTERS", ROOT.parent / "shared" / "characters"))
    video = args.video or _default_video()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_facemesh.register()
    print(f"video: {video.name}; {args.frames} baked frames rendered per character")
    print(f"{'character':28s} {'channels':>8s} {'meshes':>6s} {'looked':>6s} {'jawOpen':>8s} {'smile':>6s} "
          f"{'blink':>6s} {'seconds':>7s}")
    for path in sorted(chars.glob("*.glb")):
        t0 = time.perf_counter()
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
        scene = bpy.context.scene
        scene.render.fps, scene.frame_start = 30, 1
        scene.facemesh.take_dir = "/tmp/facemesh_bench/takes"
        bpy.ops.import_scene.gltf(filepath=str(path))
        scene.facemesh.character = _root(bpy, path.name)
        ch = options.character(scene)
        mapping = Mapping.auto_map(ch.key_names, moving=ch.moving)
        looked = 0
        try:
            mapping, added, _silent = map_by_looking(scene, ch, mapping)
            looked = len(added)
        except FacemeshError:
            pass  # nothing left to look at, or the landmarker does not see this face
        options.fill_mapping_list(scene, mapping)
        bpy.ops.facemesh.process_video(filepath=str(video), add_sound=False)
        meshes = sum(1 for m in ch.meshes if m.data.shape_keys.animation_data
                     and m.data.shape_keys.animation_data.action is not None)
        driven = options.mapping(scene, ch)
        n_channels = len({c.source for c in driven.channels if c.enabled}) if driven is not None else 0
        corr = {}
        try:
            done = check_transfer(scene, ch, Take.load(scene.facemesh.last_take), driven, args.frames)
            corr = done["correlation"]
        except FacemeshError:
            pass
        mean = lambda names: np.nanmean([corr.get(n, np.nan) for n in names]) if corr else np.nan  # noqa: E731
        with np.errstate(all="ignore"):
            print(f"{path.stem:28s} {n_channels:8d} {meshes:6d} {looked:6d} {mean(['jawOpen']):8.2f} "
                  f"{mean(['mouthSmileLeft', 'mouthSmileRight']):6.2f} {mean(['eyeBlinkLeft', 'eyeBlinkRight']):6.2f} "
                  f"{time.perf_counter() - t0:7.1f}")


if __name__ == "__main__":
    main()
