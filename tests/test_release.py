"""The release zip works on its own: built for linux-x64 with its bundled wheels and model,
installed into an empty Blender user folder by a Python that has bpy but NOT mediapipe, OpenCV or
the model, enabled, and used to process a clip."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("bpy")
REPO = Path(__file__).resolve().parent.parent

# what the bpy module itself needs; everything else (mediapipe, cv2, ...) must come from the zip
BPY_ONLY = ("bpy", "numpy", "numpy.libs", "requests", "urllib3", "idna", "charset_normalizer", "certifi",
            "zstandard", "Cython", "cython.py")

SCRIPT = textwrap.dedent(r"""
    import importlib.util, json, sys
    res = {"mediapipe_before": importlib.util.find_spec("mediapipe") is not None,
           "cv2_before": importlib.util.find_spec("cv2") is not None}
    import bpy

    zip_path, clip, takes = sys.argv[1:4]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    mod = "bl_ext.user_default.blender_facemesh"
    res["enabled"] = mod in bpy.context.preferences.addons
    import mediapipe, cv2, numpy
    res["mediapipe_from"] = mediapipe.__file__
    res["cv2_version"] = cv2.__version__
    res["numpy"] = numpy.__version__
    model = sys.modules[mod + ".core.capture.model"]
    res["model"] = str(model.find_model())
    bpy.context.scene.facemesh.take_dir = takes
    res["build_rig"] = sorted(bpy.ops.facemesh.build_rig())
    res["process_video"] = sorted(bpy.ops.facemesh.process_video(filepath=clip))
    keys = bpy.data.objects["FaceMesh Face"].data.shape_keys
    bag = keys.animation_data.action.layers[0].strips[0].channelbag(keys.animation_data.action_slot)
    res["curves"] = len(bag.fcurves)
    res["keys"] = len(bag.fcurves[0].keyframe_points)
    print("RESULT" + json.dumps(res))
""")


@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory):
    sys.path.insert(0, str(REPO))
    import build_addon

    out = tmp_path_factory.mktemp("dist")
    try:
        return build_addon.build_platform("linux-x64", out, build_addon.default_cache())
    except build_addon.BuildError as exc:
        pytest.fail(f"the linux-x64 zip did not build: {exc}")


def test_zip_has_the_wheels_and_the_model(linux_zip):
    import tomllib

    with zipfile.ZipFile(linux_zip) as z:
        names = z.namelist()
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    wheels = [n for n in names if n.startswith("wheels/")]
    assert "models/face_landmarker.task" in names
    assert manifest["platforms"] == ["linux-x64"] and manifest["blender_version_min"] == "4.5.0"
    assert sorted(f"./{w}" for w in wheels) == sorted(manifest["wheels"])
    dists = {w.split("/")[1].split("-")[0].lower() for w in wheels}
    assert {"mediapipe", "opencv_contrib_python", "matplotlib"} <= dists and "numpy" not in dists
    assert not any("opencv_python" in d for d in dists - {"opencv_contrib_python"})  # one cv2 only
    for py in ("cp311", "cp313"):  # Python-specific wheels for Blender 4.5/5.0 and 5.1+
        assert any("matplotlib-" in w and py in w for w in wheels)


def test_installed_zip_works_without_mediapipe_installed(linux_zip, sample_clip, tmp_path):
    site = Path(os.path.dirname(os.path.dirname(__import__("numpy").__file__)))
    bare = tmp_path / "bare-site"
    bare.mkdir()
    for name in BPY_ONLY:
        if (site / name).exists():
            (bare / name).symlink_to(site / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_FACEMESH"))}
    env.update(PYTHONPATH=str(bare), BLENDER_USER_RESOURCES=str(tmp_path / "user"),
               BLENDER_FACEMESH_CACHE=str(tmp_path / "empty-cache"), PYTHONNOUSERSITE="1")
    proc = subprocess.run([sys.executable, "-S", "-c", SCRIPT, str(linux_zip), str(sample_clip), str(tmp_path / "takes")],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(line[len("RESULT"):])
    assert not res["mediapipe_before"] and not res["cv2_before"]  # nothing to borrow from here
    assert res["enabled"]
    assert str(tmp_path / "user") in res["mediapipe_from"]  # the zip's own wheel
    import numpy

    assert res["cv2_version"].startswith("4.11")
    assert res["numpy"] == numpy.__version__  # Blender's own numpy (1.26 in 4.5/5.0, 2.x from 5.1), not a bundled one
    assert res["model"].endswith("models/face_landmarker.task") and str(tmp_path / "user") in res["model"]
    assert res["build_rig"] == res["process_video"] == ["FINISHED"]
    assert res["curves"] == 52 and res["keys"] == 90


def _build_addon():
    sys.path.insert(0, str(REPO))
    import build_addon

    return build_addon


def test_incomplete_locks_are_refused():
    ba = _build_addon()
    lock = ba.load_lock()
    broken = json.loads(json.dumps(lock))
    broken["platforms"]["windows-x64"]["3.13"] = [e for e in broken["platforms"]["windows-x64"]["3.13"]
                                                 if not e["file"].startswith("mediapipe")]
    with pytest.raises(ba.BuildError, match="no mediapipe wheel for windows-x64 / Python 3.13"):
        ba.check_complete(broken, "windows-x64")
    broken["platforms"]["linux-x64"]["3.11"].append({"file": "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl",
                                                     "sha256": "0" * 64})
    with pytest.raises(ba.BuildError, match="bundles numpy"):
        ba.check_complete(broken, "linux-x64")
    del broken["platforms"]["macos-arm64"]
    with pytest.raises(ba.BuildError, match="no wheels for macos-arm64"):
        ba.check_complete(broken, "macos-arm64")


def test_offline_build_without_the_wheels_or_with_a_bad_one_is_refused(tmp_path):
    ba = _build_addon()
    entries = ba.check_complete(ba.load_lock(), "linux-x64")
    with pytest.raises(ba.BuildError, match="not in the wheel cache"):
        ba.fetch_wheels(entries[:1], "linux-x64", tmp_path, offline=True)
    (tmp_path / entries[0]["file"]).write_bytes(b"tampered")
    with pytest.raises(ba.BuildError, match="not in the wheel cache"):
        ba.fetch_wheels(entries[:1], "linux-x64", tmp_path, offline=True)


def test_a_model_with_the_wrong_hash_makes_no_zip(tmp_path, monkeypatch):
    ba = _build_addon()
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not the model")
    monkeypatch.setenv("BLENDER_FACEMESH_MODEL", str(bad))
    out = tmp_path / "dist"
    with pytest.raises(ba.BuildError, match="sha256"):
        ba.build_platform("linux-x64", out, ba.default_cache())
    assert not list(out.glob("*.zip"))
