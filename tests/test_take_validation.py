"""Takes are checked once, where they are read: damaged or hand-edited takes end in one clear
line naming the file (exit 2 on the command line), and a take with a few broken frames loads
with those frames as "no face". The bad takes are made here, from a real tracked take."""

import json

import numpy as np
import pytest

from blender_facemesh.cli import main
from blender_facemesh.core.take import Take, TakeError


def _npz(take, path, **change):
    """Save ``take`` as .npz with some of its arrays or header fields replaced."""
    header = take.header()
    header.update({k[2:]: v for k, v in change.items() if k.startswith("h_")})
    arrays = dict(t=take.t, frame_index=take.frame_index, face_ids=take.face_ids, **take.arrays)
    arrays.update({k: v for k, v in change.items() if not k.startswith("h_")})
    with open(path, "wb") as f:
        np.savez(f, header=np.array(json.dumps(header)), **arrays)
    return path


@pytest.fixture(scope="module")
def good(sample_take):
    return sample_take[0]


def _bad_cases(take):
    n, k = take.face_ids.shape
    back = take.t.copy()
    back[40:] -= 5.0
    return {
        "fps 0": dict(h_fps=0),
        "fps negative": dict(h_fps=-30),
        "fps NaN": dict(h_fps=float("nan")),
        "fps infinite": dict(h_fps=float("inf")),
        "width infinite": dict(h_width=1e400),
        "times 2-D": dict(t=take.t[:, None]),
        "times NaN": dict(t=np.where(np.arange(n) == 5, np.nan, take.t)),
        "times go back": dict(t=back),
        "ids 1-D": dict(face_ids=take.face_ids[:, 0]),
        "ids float": dict(face_ids=take.face_ids.astype(np.float64)),
        "ids too large": dict(face_ids=np.full((n, k), 2 ** 40, np.int64)),
        "too few scores": dict(blendshapes=take.blendshapes[:, :, :10]),
        "frames missing": dict(head_matrix=take.head_matrix[:-3]),
        "text instead of numbers": dict(mesh=np.array(["x"] * 3)),
    }


@pytest.mark.parametrize("case", ["fps 0", "fps negative", "fps NaN", "fps infinite", "width infinite", "times 2-D",
                                  "times NaN", "times go back", "ids 1-D", "ids float", "ids too large",
                                  "too few scores", "frames missing", "text instead of numbers"])
def test_a_damaged_take_is_one_clear_error(good, tmp_path, capsys, case):
    path = _npz(good, tmp_path / "damaged.npz", **_bad_cases(good)[case])
    with pytest.raises(TakeError, match="damaged.npz"):
        Take.load(path)
    for cmd in (["report", str(path)], ["convert", str(path), "-o", str(tmp_path / "out.csv")]):
        assert main(cmd) == 2, (case, cmd)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "damaged.npz" in err[0], err
    assert not (tmp_path / "out.csv").exists()


def test_json_takes_nested_too_deep_or_with_odd_numbers(good, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(TakeError, match="deep.json"):
        Take.load(deep)
    d = good.to_json()
    d["fps"] = 0
    (tmp_path / "fps0.json").write_text(json.dumps(d))
    with pytest.raises(TakeError, match="frame rate"):
        Take.load(tmp_path / "fps0.json")
    d = good.to_json()
    d["frames"][3]["faces"][0]["id"] = 10 ** 30
    (tmp_path / "bigid.json").write_text(json.dumps(d))
    with pytest.raises(TakeError, match="bigid.json"):
        Take.load(tmp_path / "bigid.json")


def test_a_few_broken_frames_are_no_face_not_a_failure(good, tmp_path, capsys):
    mats, scores = good.head_matrix.copy(), good.blendshapes.copy()
    mats[10, 0, 0, 0] = np.nan
    mats[11, 0] = 1e300
    scores[12, 0, 3] = np.inf
    scores[20, 0, 0] = 7.0  # out of range: clipped
    t = good.t.copy()
    t[30] = t[29]  # a repeated time: nudged
    path = _npz(good, tmp_path / "glitch.npz", head_matrix=mats, blendshapes=scores, t=t)
    take = Take.load(path)
    assert list(np.flatnonzero(take.face_ids[:, 0] < 0)) == [10, 11, 12]
    assert np.isnan(take.head_matrix[10:13]).all() and take.blendshapes[20, 0, 0] == 1.0
    assert (np.diff(take.t) > 0).all() and len(take.warnings) == 3
    assert main(["report", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    json.loads(out)  # still JSON
    assert main(["convert", str(path), "-o", str(tmp_path / "ok.csv")]) == 0
