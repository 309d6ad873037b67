import zipfile

import numpy as np
import pytest

from blender_facemesh.core.capture import model as m


def test_canonical_mesh_read_from_bundle(face_model):
    assert face_model.canonical_vertices.shape == (468, 3)
    assert face_model.triangles.shape == (898, 3)
    assert face_model.uvs.shape == (468, 2)
    assert face_model.triangles.min() == 0 and face_model.triangles.max() == 467
    w = face_model.procrustes_weights
    assert (w > 0).sum() == 33 and abs(w.sum() - 1.055) < 1e-3
    # canonical axes: +Y up, +Z toward the viewer, nose tip (landmark 4) in front
    lo, hi = face_model.canonical_vertices.min(0), face_model.canonical_vertices.max(0)
    np.testing.assert_allclose(lo, [-7.743, -9.403, -2.436], atol=2e-3)
    np.testing.assert_allclose(hi, [7.743, 8.262, 7.587], atol=2e-3)
    assert face_model.canonical_vertices[4, 2] > 7.0


def test_missing_model_names_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDER_FACEMESH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(m.ENV_VAR, raising=False)
    monkeypatch.setattr(m, "bundled_model_path", lambda: tmp_path / "bundled" / m.MODEL_FILENAME)
    with pytest.raises(m.ModelError) as err:
        m.find_model()
    text = str(err.value)
    assert "user cache" in text and "bundled" in text and "fetch-model" in text
    assert str(tmp_path / "cache") in text


def test_corrupt_or_wrong_model_is_rejected(face_model, tmp_path):
    bad = tmp_path / "face_landmarker.task"
    data = bytearray(face_model.path.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(m.ModelError, match="sha256"):
        m.find_model(bad)
    with pytest.raises(m.ModelError, match="does not exist"):
        m.find_model(tmp_path / "nope.task")


def test_env_var_is_used(face_model, tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere.task"
    copy.write_bytes(face_model.path.read_bytes())
    monkeypatch.setenv(m.ENV_VAR, str(copy))
    assert m.find_model() == copy
    monkeypatch.setenv(m.ENV_VAR, str(tmp_path))  # a folder: said, not silently skipped
    with pytest.raises(m.ModelError, match="folder"):
        m.find_model()


def test_geometry_reader_rejects_garbage():
    with pytest.raises(m.ModelError):
        m.parse_geometry_metadata(b"\x0a\x05\x08\x05\x10")  # a mesh of the wrong vertex type


def test_bundle_holds_the_three_models(face_model):
    names = set(zipfile.ZipFile(face_model.path).namelist())
    assert {"face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite"} <= names
