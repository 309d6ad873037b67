"""The README's pictures: the script that makes them works, and the committed ones load."""

import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parent.parent


def test_readme_pictures_load():
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (REPO / "README.md").read_text())
    assert len(links) >= 2
    for link in links:
        img = cv2.imread(str(REPO / link))
        assert img is not None and img.shape[0] > 100 and img.std() > 10, link


def test_make_pictures_renders_a_strip_that_is_not_blank(sample_clip, tmp_path):
    pytest.importorskip("bpy")
    proc = subprocess.run([sys.executable, str(REPO / "docs" / "make_pictures.py"), "--out", str(tmp_path),
                           "--size", "96", "--samples", "4"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    strip = cv2.imread(str(tmp_path / "strip.jpg"))
    assert strip.shape == (3 * 96, 3 * 96, 3)
    render_row = strip[2 * 96 + 20:, :, :].astype(float)  # below the label bar
    assert render_row.std() > 8  # a lit face on a dark background, not an empty frame
    centre = render_row[30:60, 30:66].mean()
    corner = render_row[:10, :10].mean()
    assert centre > corner + 30  # the face is where the video's face is: the middle of the tile
    assert cv2.imread(str(tmp_path / "report.png")) is not None
