"""Regenerate the README's pictures from the built-in sample clip, with the project's own code:

    python docs/make_pictures.py [--out docs/pictures] [--size 200] [--samples 32]

- strip.jpg: three moments of the sample clip, in rows: the video, the overlay (what
  `python -m blender_facemesh overlay` draws), and the capture rig baked from the take, rendered
  with Cycles on the CPU through the bpy module, seen through the reference camera;
- report.png: the tracking report's plot of the main channels (`report TAKE --plot`).
Needs the bpy module (pip install -e ".[dev]") and scikit-image (the sample clip's photo).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MOMENTS = (0, 22, 67)  # frames of the sample clip: facing, turned one way, turned the other


def _render_rig(take, video: str, frames, size: int, samples: int) -> list[np.ndarray]:
    """The capture rig with the take baked, rendered through the reference camera (Cycles, CPU)."""
    import bpy

    from blender_facemesh import register
    from blender_facemesh.blender.rig import build_rig
    from blender_facemesh.blender.sync import add_reference_camera, match_scene_to_take
    from blender_facemesh.blender.takes import bake_with_scene
    from blender_facemesh.core.camera import DEFAULT_FOV_DEG
    from blender_facemesh.core.capture.model import load_model

    bpy.ops.wm.read_factory_settings(use_empty=True)
    if not hasattr(bpy.types.Scene, "facemesh"):
        register()
    scene = bpy.context.scene
    match_scene_to_take(scene, take)
    _rig, face = build_rig(bpy.context, load_model())
    bake_with_scene(bpy.context, take, scene)
    cam = add_reference_camera(scene, video, take, take.meta.get("fov_deg", DEFAULT_FOV_DEG), face)
    cam.data.show_background_images = False
    mat = bpy.data.materials.new("FaceMesh Skin")
    if hasattr(mat, "use_nodes") and not mat.node_tree:
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = (0.80, 0.62, 0.52, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.55
    face.data.materials.append(mat)
    for poly in face.data.polygons:
        poly.use_smooth = True
    light = bpy.data.objects.new("Key", bpy.data.lights.new("Key", "AREA"))
    light.data.energy, light.data.size = 8.0, 0.6
    light.matrix_world = cam.matrix_world
    light.location = cam.matrix_world @ __import__("mathutils").Vector((0.25, 0.3, 0.0))
    scene.collection.objects.link(light)
    world = bpy.data.worlds.new("FaceMesh World")
    if not world.node_tree:
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.06, 0.08, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = 2 * size  # the centre half is kept
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in frames:
            scene.frame_set(scene.frame_start + k)
            scene.render.filepath = os.path.join(tmp, f"r{k}.png")
            bpy.ops.render.render(write_still=True)
            import cv2

            out.append(cv2.cvtColor(cv2.imread(scene.render.filepath), cv2.COLOR_BGR2RGB))
    return out


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    import cv2

    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (tile.shape[1], 18), (20, 20, 20), -1)
    cv2.putText(tile, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
    return tile


def make_pictures(out_dir: Path, size: int = 200, samples: int = 32) -> list[Path]:
    import cv2

    from blender_facemesh.core.visual.overlay import draw_overlay
    from blender_facemesh.core.visual.report import plot_report
    from blender_facemesh.core.capture.sources import VideoFileSource
    from blender_facemesh.core.camera import DEFAULT_FOV_DEG
    from blender_facemesh.core.testing.synthetic import sample_clip_path
    from blender_facemesh.core.tracking.worker import WorkerSettings, track_take

    out_dir.mkdir(parents=True, exist_ok=True)
    clip = str(sample_clip_path())
    take = track_take(VideoFileSource(clip), WorkerSettings())
    track = take.face_track()
    with VideoFileSource(clip) as src:
        video = [rgb for _t, rgb in src]
    fov = take.meta.get("fov_deg", DEFAULT_FOV_DEG)
    rows = {"video": [], "overlay": [], "rig (Cycles)": []}
    for k in MOMENTS:
        rows["video"].append(video[k])
        rows["overlay"].append(draw_overlay(video[k], track["landmarks"][k], track["head_matrix"][k],
                                            track["blendshapes"][k], fov))
    renders = _render_rig(take, clip, MOMENTS, size, samples)
    rows["rig (Cycles)"] = renders
    def centre(img):  # the face fills the middle of the frame: keep the centre half
        h, w = img.shape[:2]
        return img[h // 4: h - h // 4, w // 4: w - w // 4]

    lines = []
    for name, tiles in rows.items():
        tiles = [_label(cv2.resize(centre(t), (size, size), interpolation=cv2.INTER_AREA), f"{name}, frame {k}")
                 for t, k in zip(tiles, MOMENTS)]
        lines.append(np.concatenate(tiles, axis=1))
    strip = np.concatenate(lines, axis=0)
    strip_path = out_dir / "strip.jpg"
    cv2.imwrite(str(strip_path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    plot_path = plot_report(take, out_dir / "report.png", size=(900, 520))
    return [strip_path, plot_path]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "pictures")
    ap.add_argument("--size", type=int, default=200, help="tile size in pixels")
    ap.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel")
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        for p in make_pictures(args.out, args.size, args.samples):
            print(f"{p} ({p.stat().st_size / 1000:.0f} kB)")
    finally:
        import bpy

        if hasattr(bpy.types.Scene, "facemesh"):  # bpy 4.5 does not exit while add-on classes are registered
            from blender_facemesh import unregister

            unregister()
    return 0


if __name__ == "__main__":
    sys.exit(main())
