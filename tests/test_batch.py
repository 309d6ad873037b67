"""`python -m blender_facemesh batch`: many videos, one bad one reported and skipped."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blender_facemesh.core.take import Take

REPO = Path(__file__).resolve().parent.parent


def _batch(*args, cwd):
    return subprocess.run([sys.executable, "-m", "blender_facemesh", "batch", *map(str, args), "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture
def folder(sample_clip, tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    shutil.copy(sample_clip, d / "a_good.mp4")
    (d / "b_corrupt.mp4").write_bytes(b"\x00\x01 not a video " * 300)
    shutil.copy(sample_clip, d / "c_good.mov")
    (d / "notes.txt").write_text("not a video, not picked up")
    return d


def test_batch_finishes_the_others_and_reports_the_bad_one(folder, tmp_path):
    out = tmp_path / "out"
    proc = _batch(folder, "--output", out, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_good.json", "c_good.json"]
    assert len(Take.load(out / "a_good.json")) == 90
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "b_corrupt.mp4" in errors[0] and "skipped" in errors[0]
    assert "batch: 2 of 3 videos done" in proc.stdout and "failed: b_corrupt.mp4" in proc.stdout
    assert "[1/3]" in proc.stdout and "[3/3]" in proc.stdout


def test_batch_with_nothing_to_do_is_one_line(tmp_path):
    proc = _batch(tmp_path / "missing", "--output", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: no videos")


def test_batch_writes_blend_files_with_bpy(folder, tmp_path):
    pytest.importorskip("bpy")
    (folder / "b_corrupt.mp4").unlink()
    (folder / "c_good.mov").unlink()
    out = tmp_path / "out"
    proc = _batch(folder, "--output", out, "--blend", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "a_good.blend").is_file() and (out / "a_good.npz").is_file()
    assert "baked 90 frames" in proc.stdout
