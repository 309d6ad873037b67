import json

import numpy as np
import pytest

from blender_facemesh.core.channels import ARKIT_NAMES
from blender_facemesh.core.take import Take, TakeError
from blender_facemesh.core.tracking.worker import FaceSample, Sample


def _face(rng, fid):
    pose = np.eye(4)
    pose[:3, 3] = rng.normal(size=3)
    return FaceSample(fid, rng.random((478, 3), dtype=np.float32), pose,
                      rng.normal(size=(468, 3)).astype(np.float32),
                      rng.random(52, dtype=np.float32), np.eye(4, dtype=np.float32))


def make_take(rng, n=12):
    take = Take(30.0, 640, 480, source={"kind": "video", "name": "x.mp4"}, meta={"fov_deg": 63.0})
    for i in range(n):
        faces = [] if i == 3 else [_face(rng, 0)] + ([_face(rng, 1)] if i % 4 == 1 else [])
        take.append(Sample(i, i / 30.0, faces, 0.0, 0.0))
    return take


def test_npz_round_trip_is_lossless(tmp_path, rng):
    take = make_take(rng)
    back = Take.load(take.save(tmp_path / "a.npz"))
    assert (back.fps, back.width, back.height, back.source, back.meta) == (30.0, 640, 480, take.source, take.meta)
    np.testing.assert_array_equal(back.t, take.t)
    np.testing.assert_array_equal(back.face_ids, take.face_ids)
    for name in ("landmarks", "head_matrix", "mesh", "blendshapes", "mp_matrix"):
        a, b = getattr(take, name), getattr(back, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)  # NaN-aware, bit-equal
    assert back.face_present.tolist() == [i != 3 for i in range(12)]


def test_json_follows_the_documented_schema(tmp_path, rng):
    take = make_take(rng)
    d = json.loads(take.save(tmp_path / "a.json").read_text())
    for key in ("fps", "width", "height", "source", "frames"):
        assert key in d
    f1 = d["frames"][1]
    assert f1["t"] == pytest.approx(1 / 30.0, abs=1e-6)  # microseconds
    assert [f["id"] for f in f1["faces"]] == [0, 1]
    assert d["frames"][3]["faces"] == []
    face = f1["faces"][0]
    assert len(face["head_matrix"]) == 16
    np.testing.assert_allclose(np.reshape(face["head_matrix"], (4, 4)), take.head_matrix[1, 0], atol=1e-6)
    assert list(face["blendshapes"]) == list(ARKIT_NAMES)
    back = Take.load(tmp_path / "a.json")
    np.testing.assert_allclose(back.blendshapes, take.blendshapes, atol=1e-5)
    np.testing.assert_allclose(back.head_matrix, take.head_matrix, atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_json_read_a_frame_at_a_time_whatever_the_read_size(tmp_path, rng, monkeypatch, chunk):
    """The streaming reader sees the file in pieces of ``chunk`` characters: numbers and
    frames cut at any place still come back whole, in any order of the header's members."""
    from blender_facemesh.core import jsonstream

    take = make_take(rng)
    d = json.loads(take.save(tmp_path / "a.json").read_text())
    frames = d.pop("frames")
    (tmp_path / "b.json").write_text(json.dumps({"frames": frames, **d}, indent=1))  # header last, spaced
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    for name in ("a.json", "b.json"):
        back = Take.load(tmp_path / name)
        np.testing.assert_array_equal(back.face_ids, take.face_ids)
        np.testing.assert_allclose(back.blendshapes, take.blendshapes, atol=1e-5)
        assert back.meta == take.meta and not back.has("landmarks")
    text = (tmp_path / "a.json").read_text()
    for broken in (text[: len(text) // 2], text + "]", text.replace('"faces"', '"faces" 1', 1)):
        (tmp_path / "c.json").write_text(broken)
        with pytest.raises(TakeError, match="c.json is not a readable take"):
            Take.load(tmp_path / "c.json")


def test_face_track_follows_one_id(rng):
    take = make_take(rng)
    tr = take.face_track(1)
    assert tr["present"].tolist() == [i % 4 == 1 for i in range(12)]
    np.testing.assert_array_equal(tr["blendshapes"][1], take.blendshapes[1, 1])
    assert np.isnan(tr["blendshapes"][0]).all()


def test_bad_take_files_give_clear_errors(tmp_path, rng):
    with pytest.raises(TakeError, match="does not exist"):
        Take.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(TakeError, match="junk.npz"):
        Take.load(junk)
    good = make_take(rng).save(tmp_path / "good.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TakeError):
        Take.load(cut)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(TakeError, match="not a blender_facemesh take"):
        Take.load(other)
    with pytest.raises(TakeError, match=".npz or .json"):
        make_take(rng).save(tmp_path / "take.txt")
