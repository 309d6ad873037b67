"""The add-on as a user gets it: built into an extension zip by Blender's own packager,
installed into an empty Blender user folder, enabled, used, and disabled with a capture
running. Runs in a child process because BLENDER_USER_RESOURCES must be set before bpy loads."""

import json
import os
import subprocess
import sys
import textwrap

from pathlib import Path

import pytest

pytest.importorskip("bpy")
REPO = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(r"""
    import json, sys, threading, time
    import bpy

    zip_path, clip, out = sys.argv[1:4]
    res = {}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    mod = "bl_ext.user_default.blender_facemesh"
    res["enabled"] = mod in bpy.context.preferences.addons
    prefs = bpy.context.preferences.addons[mod].preferences
    res["prefs_delegate"] = prefs.delegate
    res["operators"] = sorted(op for op in dir(bpy.ops.facemesh))
    scene = bpy.context.scene
    scene.facemesh.take_dir = out
    res["build_rig"] = sorted(bpy.ops.facemesh.build_rig())
    res["process_video"] = sorted(bpy.ops.facemesh.process_video(filepath=clip))
    keys = bpy.data.objects["FaceMesh Face"].data.shape_keys
    res["scene_fps"] = scene.render.fps / scene.render.fps_base
    res["baked_frames"] = len(keys.animation_data.action.layers[0].strips[0]
                              .channelbag(keys.animation_data.action_slot).fcurves[0].keyframe_points)
    # a live capture from the clip played as a camera, then the add-on is disabled under it
    live = sys.modules[mod + ".blender.live"]
    scene.facemesh.source, scene.facemesh.video_path = "SIMULATED", clip
    res["capture_start"] = sorted(bpy.ops.facemesh.capture_start())
    t0 = time.monotonic()
    while live.state.session.frames_seen < 5 and time.monotonic() - t0 < 30:
        live.tick()
        time.sleep(0.01)
    res["live_frames"] = live.state.session.frames_seen
    scene.facemesh.recording = True
    while (live.state.session.take is None or len(live.state.session.take) < 3) and time.monotonic() - t0 < 30:
        live.tick()
        time.sleep(0.01)
    bpy.ops.preferences.addon_disable(module=mod)
    res["enabled_after"] = mod in bpy.context.preferences.addons
    res["threads"] = [t.name for t in threading.enumerate() if t.name.startswith("facemesh-") and t.is_alive()]
    res["timer"] = bpy.app.timers.is_registered(live.tick)
    res["handlers"] = [h.__name__ for h in bpy.app.handlers.load_pre if "facemesh" in getattr(h, "__module__", "")]
    res["scene_prop"] = hasattr(bpy.types.Scene, "facemesh")
    res["operators_after"] = hasattr(bpy.types, "FACEMESH_OT_capture_start")
    res["saved_on_disable"] = live.state.message
    print("RESULT" + json.dumps(res))
""")


def test_installed_from_zip_works_and_unregisters_cleanly(sample_clip, tmp_path):
    sys.path.insert(0, str(REPO))
    import build_addon

    zip_path = build_addon.build(tmp_path / "dist")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(zip_path), str(sample_clip), str(tmp_path / "takes")],
                          env=env, capture_output=True, text=True, timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(line[len("RESULT"):])
    assert res["enabled"] and res["prefs_delegate"] == "AUTO"
    assert {"build_rig", "capture_start", "capture_stop", "process_video", "calibrate_neutral",
            "bake_take", "auto_map"} <= set(res["operators"])
    assert res["build_rig"] == res["process_video"] == res["capture_start"] == ["FINISHED"]
    assert res["baked_frames"] == int(89 / 30 * res["scene_fps"] + 1e-6) + 1  # 90 frames at 30 fps, resampled
    assert res["live_frames"] >= 5
    # disabled with a capture running: nothing is left behind, and the recording was saved
    assert not res["enabled_after"]
    assert res["threads"] == [] and not res["timer"] and res["handlers"] == []
    assert not res["scene_prop"] and not res["operators_after"]
    assert "saved" in res["saved_on_disable"]
    assert list((tmp_path / "takes").glob("take_*.npz"))


def test_cli_blend_writes_an_animated_blend(tmp_path):
    """The README's main command: the sample clip to a .blend with the rig and its keys."""
    out = tmp_path / "sample.blend"
    check = textwrap.dedent(r"""
        import sys, bpy
        from blender_facemesh.cli import main
        assert main(["blend", "sample", "--output", sys.argv[1], "--quiet"]) == 0
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
        keys = bpy.data.objects["FaceMesh Face"].data.shape_keys
        scene = bpy.context.scene
        bag = keys.animation_data.action.layers[0].strips[0].channelbag(keys.animation_data.action_slot)
        print("RESULT", len(bag.fcurves), len(bag.fcurves[0].keyframe_points), scene.render.fps,
              scene.frame_end, len(bpy.data.objects["FaceMesh Rig"].animation_data.action.layers[0]
                                   .strips[0].channelbag(bpy.data.objects["FaceMesh Rig"].animation_data.action_slot).fcurves))
    """)
    proc = subprocess.run([sys.executable, "-c", check, str(out)], capture_output=True, text=True, timeout=300,
                          cwd=REPO)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    n_curves, n_keys, fps, frame_end, n_pose = map(int, line.split()[1:])
    assert (n_curves, n_keys, fps, frame_end, n_pose) == (52, 90, 30, 90, 16)
    assert "wrote" in proc.stdout and str(out) in proc.stdout


def test_cli_blend_bad_input_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "blender_facemesh", "blend", str(tmp_path / "nope.mp4"),
                           "--output", str(tmp_path / "x.blend")], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "not found" in proc.stderr
    assert not (tmp_path / "x.blend").exists()
