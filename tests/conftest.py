"""Shared fixtures: the real model, real footage (skipped when absent), detections cached per clip."""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("GLOG_minloglevel", "2")


def footage_dir() -> Path | None:
    d = Path(os.environ.get("BLENDER_FACEMESH_FOOTAGE", REPO.parent / "shared" / "footage"))
    return d if d.is_dir() else None


FOOTAGE_CLIPS = ("studio_jaw_blink_smile.mp4", "studio_glasses_asym_smiles.mp4",
                 "webcam_glasses_pout_wink.mp4", "tv_interview_headturn_224.mp4")


@pytest.fixture(scope="session")
def face_model():
    from blender_facemesh.core.capture.model import ModelError, load_model

    try:
        return load_model()
    except ModelError as exc:  # the README's test command fetches it first
        pytest.fail(f"model missing; run `python -m blender_facemesh fetch-model`: {exc}")


@pytest.fixture(scope="session")
def footage():
    d = footage_dir()
    if d is None:
        pytest.skip("../shared/footage not present (set BLENDER_FACEMESH_FOOTAGE)")
    return d


_detections = {}


def track_clip(path: Path, face_model):
    """Run the real landmarker (VIDEO mode) over every frame of a clip; cached per clip."""
    from blender_facemesh.core.capture.landmarker import Landmarker
    from blender_facemesh.core.capture.sources import VideoFileSource

    key = str(path)
    if key not in _detections:
        frames = []
        with VideoFileSource(path) as src, Landmarker() as lm:
            for t, rgb in src:
                frames.append(lm.detect(rgb, t))
            size = (src.info.width, src.info.height)
        _detections[key] = (size, frames)
    return _detections[key]


@pytest.fixture(scope="session")
def sample_clip(face_model, tmp_path_factory):
    """The built-in sample clip (astronaut photo re-posed with known rotations)."""
    from blender_facemesh.core.testing.synthetic import sample_clip_path

    return sample_clip_path(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def sample_clip_with_sound(sample_clip, tmp_path_factory):
    """The sample clip with a 3 s 440 Hz tone as its sound track, muxed by the same script the
    overlay command uses (Blender's own FFmpeg, in a child process: it resets Blender's session)."""
    import wave

    pytest.importorskip("bpy")
    from blender_facemesh.blender.mux_sound import mux_sound

    d = tmp_path_factory.mktemp("sound")
    wav, out = d / "tone.wav", d / "sample_with_sound.mp4"
    sr = 16000
    t = np.arange(int(3.0 * sr)) / sr
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16).tobytes())
    proc = mux_sound(sample_clip, wav, out, timeout=300)
    if not out.is_file():
        pytest.fail("could not make the clip with sound: " + proc.stderr[-1500:])
    return out


# --- Blender (the bpy module): tests/test_blender.py, tests/test_characters.py -----------------

@pytest.fixture(scope="module")
def addon():
    """The add-on registered in this process (real Blender, the bpy module)."""
    bpy = pytest.importorskip("bpy")
    import blender_facemesh

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_facemesh.register()
    yield blender_facemesh
    blender_facemesh.unregister()


@pytest.fixture(scope="module")
def sample_take(sample_clip, tmp_path_factory):
    from blender_facemesh.core.capture.sources import VideoFileSource
    from blender_facemesh.core.solve.smoothing import Smoothing
    from blender_facemesh.core.tracking.worker import WorkerSettings, track_take

    take = track_take(VideoFileSource(sample_clip), WorkerSettings(smoothing=Smoothing.off()))
    return take, take.save(tmp_path_factory.mktemp("take") / "sample.npz")


@pytest.fixture
def scene(addon, tmp_path):
    """A fresh empty file for every test (the add-on's classes, properties and load handler are
    registered on types and survive it), so no test sees what another left behind."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    s = bpy.context.scene
    s.render.fps, s.render.fps_base, s.frame_start = 30, 1.0, 1
    f = s.facemesh
    f.take_dir = str(tmp_path / "takes")
    f.performer_path, f.target_mesh, f.target_rig, f.character = "", None, None, None
    f.mappings.clear()
    f.performers.clear()
    f.mapping_preset = ""
    return s
