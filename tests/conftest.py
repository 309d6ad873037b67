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
