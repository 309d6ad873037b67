"""Frame sources against real files written on the fly (no mocks).

Clips encode their frame index as brightness (index * 10) so order and skipping can be
checked, and carry a red square in the top-left corner so colour order and rotation can be.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from blender_facemesh.core.capture.sources import (
    CameraSource,
    FrameSource,
    ImageSequenceSource,
    SimulatedLiveSource,
    SourceError,
    SourceInfo,
    VideoFileSource,
    open_source,
)

W, H, FPS, N = 64, 48, 25, 25
STEP = 10  # brightness per frame index


def make_frame(i: int, w: int = W, h: int = H) -> np.ndarray:
    """BGR frame: brightness i*STEP, red marker in the top-left corner."""
    f = np.full((h, w, 3), (i * STEP) % 256, np.uint8)
    f[: h // 4, : w // 4] = (0, 0, 255)
    return f


def make_clip(path: Path, n: int = N, fps: float = FPS, fourcc: str = "MJPG",
              w: int = W, h: int = H) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert vw.isOpened(), f"this OpenCV cannot write {fourcc} to {path.suffix}"
    for i in range(n):
        vw.write(make_frame(i, w, h))
    vw.release()
    return path


def brightness_index(rgb: np.ndarray) -> float:
    """Frame index recovered from the brightness of the unmarked bottom-right quarter."""
    h, w = rgb.shape[:2]
    return float(rgb[h // 2:, w // 2:].mean()) / STEP


def red_marker_centre(rgb: np.ndarray) -> tuple[float, float]:
    ys, xs = np.where((rgb[..., 0] > 180) & (rgb[..., 2] < 100))
    return float(ys.mean()), float(xs.mean())


# --- mp4 box surgery (plain bytes, so no ffmpeg binary is needed) ---------------------------

def _boxes(data: bytes, start: int, end: int):
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack(">I4s", data[i:i + 8])
        if size < 8:
            return
        yield i, size, typ
        i += size


def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    for i, size, typ in _boxes(data, start, end):
        if typ == path[0]:
            return (i, size) if len(path) == 1 else _find(data, path[1:], i + 8, i + size)
    return None


def set_mp4_rotation(src: Path, dst: Path, degrees: int) -> Path:
    """Write the clockwise display rotation into tkhd's matrix, as phones do."""
    data = bytearray(src.read_bytes())
    off, _ = _find(data, [b"moov", b"trak", b"tkhd"])
    version = data[off + 8]
    matrix = off + 12 + (20 if version == 0 else 32) + 16
    cos, sin = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    values = [cos << 16, sin << 16, 0, -sin << 16, cos << 16, 0, 0, 0, 1 << 30]
    data[matrix:matrix + 36] = struct.pack(">9i", *values)
    dst.write_bytes(bytes(data))
    return dst


def make_faststart(src: Path, dst: Path) -> Path:
    """Move moov in front of mdat (qt-faststart), fixing the chunk offsets."""
    data = src.read_bytes()
    top = list(_boxes(data, 0, len(data)))
    i, size, _ = next(b for b in top if b[2] == b"moov")
    moov = bytearray(data[i:i + size])

    def shift(start: int, end: int) -> None:
        for j, sz, typ in _boxes(moov, start, end):
            if typ in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(j + 8, j + sz)
            elif typ == b"stco":
                (count,) = struct.unpack(">I", moov[j + 12:j + 16])
                for k in range(count):
                    o = j + 16 + 4 * k
                    (v,) = struct.unpack(">I", moov[o:o + 4])
                    moov[o:o + 4] = struct.pack(">I", v + len(moov))
            elif typ == b"co64":
                raise AssertionError("co64 not expected in a tiny clip")

    shift(8, len(moov))
    out = bytearray()
    for j, sz, typ in top:
        if typ == b"ftyp":
            out += data[j:j + sz] + moov
        elif typ != b"moov":
            out += data[j:j + sz]
    dst.write_bytes(bytes(out))
    return dst


def truncate_copy(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def read_all(source: FrameSource) -> list[tuple[float, np.ndarray]]:
    with source:
        return list(source)


def check_frames(items, w=W, h=H):
    ts = [t for t, _ in items]
    assert all(b > a for a, b in zip(ts, ts[1:])), ts
    for _, f in items:
        assert f.dtype == np.uint8 and f.shape == (h, w, 3) and f.flags.c_contiguous


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "avi": make_clip(d / "clip.avi", fourcc="MJPG"),
        "mp4": make_clip(d / "clip.mp4", fourcc="mp4v"),
    }


# --- video files -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["avi", "mp4"])
def test_video_file_frames_timestamps_and_info(clips, kind):
    src = VideoFileSource(clips[kind])
    assert isinstance(src.info, SourceInfo)
    assert (src.info.kind, src.info.width, src.info.height) == ("video", W, H)
    assert src.info.fps == pytest.approx(FPS)
    assert src.info.frame_count == N
    assert src.info.rotation == 0 and not src.live and src.dropped == 0
    assert src.info.as_dict()["name"] == str(clips[kind])
    items = read_all(src)
    assert len(items) == N
    check_frames(items)
    for i, (t, f) in enumerate(items):
        assert t == pytest.approx(i / FPS, abs=1e-6)
        tol = 0.5 if kind == "avi" else 1.5  # mp4v is lossier on flat frames
        assert brightness_index(f) == pytest.approx(i, abs=tol)
    # RGB, not BGR: the red marker is in channel 0
    y, x = red_marker_centre(items[0][1])
    assert y < H / 4 and x < W / 4
    assert src.read() is None  # stays ended after close


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_is_applied_and_reported(clips, tmp_path, degrees):
    path = set_mp4_rotation(clips["mp4"], tmp_path / f"rot{degrees}.mp4", degrees)
    src = VideoFileSource(path)
    w, h = (H, W) if degrees in (90, 270) else (W, H)
    assert src.info.rotation == degrees
    assert (src.info.width, src.info.height) == (w, h)
    items = read_all(src)
    assert len(items) == N
    check_frames(items, w, h)
    # the top-left marker turns clockwise with the picture
    y, x = red_marker_centre(items[0][1])
    expected = {90: (y < h / 2 and x > w / 2), 180: (y > h / 2 and x > w / 2),
                270: (y > h / 2 and x < w / 2)}[degrees]
    assert expected, (degrees, y, x)


def test_truncated_avi_ends_cleanly(clips, tmp_path):
    path = truncate_copy(clips["avi"], tmp_path / "cut.avi", 0.6)
    src = VideoFileSource(path)
    items = read_all(src)  # no exception
    assert 0 < len(items) < N
    check_frames(items)
    assert src.info.frame_count == N  # from the header: approximate for damaged files
    for i, (t, f) in enumerate(items):
        assert t == pytest.approx(i / FPS, abs=1e-6)


def test_truncated_mp4_with_index_at_end_is_a_clear_error(clips, tmp_path):
    # OpenCV writes moov after mdat, as many recorders do; cut off, the file has no index.
    path = truncate_copy(clips["mp4"], tmp_path / "cut.mp4", 0.6)
    with pytest.raises(SourceError, match="could not be decoded") as err:
        VideoFileSource(path)
    assert "cut.mp4" in str(err.value)


def test_truncated_faststart_mp4_ends_cleanly(clips, tmp_path):
    fast = make_faststart(clips["mp4"], tmp_path / "fast.mp4")
    assert len(read_all(VideoFileSource(fast))) == N
    items = read_all(VideoFileSource(truncate_copy(fast, tmp_path / "fastcut.mp4", 0.6)))
    assert 0 < len(items) < N
    check_frames(items)


def test_not_a_video_missing_and_empty_files(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    with pytest.raises(SourceError, match="junk.mp4.*could not be decoded"):
        VideoFileSource(junk)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="could not be decoded"):
        VideoFileSource(empty)
    with pytest.raises(SourceError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match="folder"):
        VideoFileSource(tmp_path)


def test_close_from_another_thread_while_read_is_blocked(clips):
    """The worker may give up on a blocked read(); close() must not wait for it."""
    release = threading.Event()
    src = SimulatedLiveSource(clips["avi"], speed=0.001, sleep=lambda s: release.wait(s))
    src.read()
    result = {}
    reader = threading.Thread(target=lambda: result.setdefault("item", src.read()))
    reader.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    src.close()
    assert time.monotonic() - t0 < 2.0
    release.set()
    reader.join(5)
    assert not reader.is_alive() and result["item"] is None
    assert src.read() is None


# --- image sequences ---------------------------------------------------------------------

def write_images(folder: Path, names, size=(W, H)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        p = folder / name
        assert cv2.imwrite(str(p), make_frame(i, *size))
        paths.append(p)
    return paths


def test_image_folder_natural_order_and_timestamps(tmp_path):
    names = [f"frame_{i}.png" for i in range(1, 13)]  # frame_2 must come before frame_10
    write_images(tmp_path / "seq", names)
    (tmp_path / "seq" / "notes.txt").write_text("not an image")
    src = ImageSequenceSource(tmp_path / "seq", fps=10)
    assert (src.info.kind, src.info.width, src.info.height) == ("images", W, H)
    assert src.info.frame_count == 12 and src.info.fps == 10 and not src.live
    items = read_all(src)
    check_frames(items)
    assert [t for t, _ in items] == pytest.approx([i / 10 for i in range(12)])
    assert [round(brightness_index(f)) for _, f in items] == list(range(12))
    assert red_marker_centre(items[0][1])[1] < W / 4  # RGB order


def test_image_glob_and_printf_patterns(tmp_path):
    write_images(tmp_path / "seq", [f"img_{i:04d}.jpg" for i in range(5, 10)])
    write_images(tmp_path / "seq", ["other.png"])
    g = ImageSequenceSource(str(tmp_path / "seq" / "img_*.jpg"))
    assert g.info.frame_count == 5 and g.info.fps == 30.0
    assert [round(brightness_index(f)) for _, f in read_all(g)] == list(range(5))
    p = ImageSequenceSource(str(tmp_path / "seq" / "img_%04d.jpg"), fps=5)
    items = read_all(p)
    assert len(items) == 5 and items[-1][0] == pytest.approx(4 / 5)
    with pytest.raises(SourceError, match="no image files match"):
        ImageSequenceSource(str(tmp_path / "seq" / "none_%04d.png"))
    with pytest.raises(SourceError, match="exactly one number field"):
        ImageSequenceSource(str(tmp_path / "seq" / "img_%04d_%d.jpg"))


def test_bad_image_in_the_middle_names_the_file(tmp_path):
    paths = write_images(tmp_path / "seq", [f"f{i:02d}.png" for i in range(4)])
    paths[2].write_bytes(b"\x89PNG garbage")
    src = ImageSequenceSource(tmp_path / "seq")
    assert src.read() is not None and src.read() is not None
    with pytest.raises(SourceError, match="f02.png"):
        src.read()
    src.close()


def test_image_sequence_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        ImageSequenceSource(tmp_path / "empty")
    write_images(tmp_path / "mixed", ["a1.png", "a2.png"])
    write_images(tmp_path / "mixed", ["a3.png"], size=(W * 2, H))
    src = ImageSequenceSource(tmp_path / "mixed")
    src.read(), src.read()
    with pytest.raises(SourceError, match="a3.png.*same size"):
        src.read()
    with pytest.raises(SourceError, match="does not exist"):
        ImageSequenceSource(tmp_path / "missing_folder")
    with pytest.raises(SourceError, match="positive"):
        ImageSequenceSource(tmp_path / "mixed", fps=0)


# --- simulated live ----------------------------------------------------------------------

class FakeClock:
    """Deterministic time: sleep() advances it, advance() stands for consumer work."""

    def __init__(self) -> None:
        self.t = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds
        self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


def test_simulated_live_drops_frames_when_consumer_lags(clips):
    clock = FakeClock()
    src = SimulatedLiveSource(clips["avi"], clock=clock, sleep=clock.sleep)
    assert src.live and src.info.kind == "simulated" and src.info.live
    start = clock.t
    items = []
    while (item := src.read()) is not None:
        items.append(item)
        elapsed = clock.t - start
        t, f = item
        assert t <= elapsed + 1e-9 and t > elapsed - 1 / FPS - 1e-9  # newest due frame
        assert brightness_index(f) == pytest.approx(round(t * FPS), abs=0.5)
        clock.advance(0.1)  # consumer needs 100 ms per frame, frames come every 40 ms
    ts = [t for t, _ in items]
    assert all(b > a for a, b in zip(ts, ts[1:]))
    assert src.dropped > 0 and len(items) + src.dropped == N
    assert max(b - a for a, b in zip(ts, ts[1:])) >= 2 / FPS - 1e-6  # timestamps jump
    src.close()


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_simulated_live_paces_a_fast_consumer(clips, speed):
    clock = FakeClock()
    src = SimulatedLiveSource(clips["avi"], speed=speed, clock=clock, sleep=clock.sleep)
    items = read_all(src)
    assert len(items) == N and src.dropped == 0
    assert [t for t, _ in items] == pytest.approx([i / FPS for i in range(N)])
    assert clock.slept == pytest.approx((N - 1) / FPS / speed, abs=1e-6)


def test_simulated_live_real_clock_takes_real_time(clips):
    src = SimulatedLiveSource(clips["avi"])  # 1 s clip
    t0 = time.monotonic()
    items = read_all(src)
    took = time.monotonic() - t0
    assert 0.8 < took < 2.5, took
    assert len(items) + src.dropped == N


def test_simulated_live_rejects_bad_speed(clips):
    with pytest.raises(SourceError, match="speed"):
        SimulatedLiveSource(clips["avi"], speed=0)


# --- camera ------------------------------------------------------------------------------

def test_missing_camera_fails_fast_with_advice():
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"camera 99 could not be opened.*check the index"):
        CameraSource(99)
    with pytest.raises(SourceError, match="camera 97"):
        open_source("camera:97")
    assert time.monotonic() - t0 < 5.0
    with pytest.raises(SourceError, match="unknown camera backend"):
        CameraSource(0, backend="nope")
    with pytest.raises(SourceError, match="not valid"):
        open_source("camera:abc")


# --- dispatch ----------------------------------------------------------------------------

def test_open_source_dispatch(clips, tmp_path):
    with open_source(str(clips["mp4"])) as s:
        assert type(s) is VideoFileSource
    with open_source(str(clips["mp4"]), simulate_live=True) as s:
        assert type(s) is SimulatedLiveSource and s.live
    write_images(tmp_path / "seq", ["a_001.png", "a_002.png"])
    for spec in (tmp_path / "seq", tmp_path / "seq" / "*.png", tmp_path / "seq" / "a_%03d.png",
                 tmp_path / "seq" / "a_001.png"):
        with open_source(str(spec), fps=12) as s:
            assert type(s) is ImageSequenceSource and s.info.fps == 12
    with pytest.raises(SourceError, match="not found: give a video file"):
        open_source(str(tmp_path / "nothing_here.mov"))


# --- real footage ------------------------------------------------------------------------

def _footage_dir() -> Path | None:
    env = os.environ.get("BLENDER_FACEMESH_FOOTAGE")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "footage")
    return next((c for c in candidates if c.is_dir()), None)


FOOTAGE = {
    "studio_jaw_blink_smile.mp4": (480, 480, 30.0, 216),
    "studio_glasses_asym_smiles.mp4": (480, 480, 30.0, 250),
    "webcam_glasses_pout_wink.mp4": (512, 480, 30.0, 587),
    "tv_interview_headturn_224.mp4": (224, 224, 25.0, 298),
}


@pytest.mark.parametrize("name", sorted(FOOTAGE))
def test_real_footage_info_and_frames(name):
    folder = _footage_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip("real footage not available (set BLENDER_FACEMESH_FOOTAGE)")
    w, h, fps, count = FOOTAGE[name]
    src = open_source(str(folder / name))
    assert (src.info.width, src.info.height, src.info.fps, src.info.frame_count) == (
        w, h, fps, count)
    items = read_all(src)
    assert len(items) == count
    ts = [t for t, _ in items]
    assert ts[0] == 0.0 and all(b > a for a, b in zip(ts, ts[1:]))
    assert ts[-1] == pytest.approx((count - 1) / fps, abs=1e-3)
    assert items[0][1].shape == (h, w, 3)


def test_frame_range_reads_only_the_asked_frames(sample_clip):
    from blender_facemesh.core.capture.sources import FrameRange, SourceError, VideoFileSource

    with FrameRange(VideoFileSource(sample_clip), 10, 19) as src:
        got = list(src)
        assert src.info.frame_count == 10
    assert len(got) == 10 and got[0][0] == pytest.approx(10 / 30, abs=1e-3)
    with FrameRange(VideoFileSource(sample_clip), 85) as src:
        assert len(list(src)) == 5
    with pytest.raises(SourceError, match="cannot start at frame 500"):
        FrameRange(VideoFileSource(sample_clip), 500)
    with pytest.raises(SourceError, match="empty"):
        FrameRange(VideoFileSource(sample_clip), 20, 10)
