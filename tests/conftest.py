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
    from blender_facemesh.core.model import ModelError, load_model

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
    from blender_facemesh.core.landmarker import Landmarker
    from blender_facemesh.core.sources import VideoFileSource

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
    from blender_facemesh.core.synthetic import sample_clip_path

    return sample_clip_path(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


_SOUND_SCRIPT = r"""
import sys, wave
import numpy as np
import bpy
clip, out, wav = sys.argv[1:4]
sr = 16000
t = np.arange(int(3.0 * sr)) / sr
with wave.open(wav, "wb") as w:  # a 440 Hz tone, 3 s
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr)
    w.writeframes((0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16).tobytes())
bpy.ops.wm.read_factory_settings(use_empty=True)
sc = bpy.context.scene
sc.render.fps = 30
ed = sc.sequence_editor_create()
strips = ed.strips if hasattr(ed, "strips") else ed.sequences
movie = strips.new_movie("v", clip, channel=1, frame_start=1)
strips.new_sound("a", wav, channel=2, frame_start=1)
sc.frame_start, sc.frame_end = 1, movie.frame_final_duration
sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = 512, 512, 100
im = sc.render.image_settings
if hasattr(im, "media_type"):  # Blender 5.0+
    im.media_type = "VIDEO"
im.file_format = "FFMPEG"
sc.render.ffmpeg.format, sc.render.ffmpeg.codec, sc.render.ffmpeg.audio_codec = "MPEG4", "H264", "AAC"
sc.render.filepath = out
bpy.ops.render.render(animation=True)
"""


@pytest.fixture(scope="session")
def sample_clip_with_sound(sample_clip, tmp_path_factory):
    """The sample clip with a tone as its sound track, muxed by Blender's own FFmpeg (needs bpy;
    run in a child process so it does not reset the tests' Blender session)."""
    import subprocess
    import sys

    pytest.importorskip("bpy")
    d = tmp_path_factory.mktemp("sound")
    out = d / "sample_with_sound.mp4"
    proc = subprocess.run([sys.executable, "-c", _SOUND_SCRIPT, str(sample_clip), str(out), str(d / "tone.wav")],
                          capture_output=True, text=True, timeout=300)
    if not out.is_file():
        pytest.fail("could not make the clip with sound: " + proc.stderr[-1500:])
    return out
