"""The add-on as a user gets it: built into an extension zip by Blender's own packager,
installed into an empty Blender user folder, enabled, used, and disabled with a capture
running. Runs in a child process because BLENDER_USER_RESOURCES must be set before bpy loads."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("bpy")

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
    sys.path.insert(0, str(tmp_path.parent))
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
