"""Recordings that survive a crash: the journal streamed while recording, killed processes
(a plain live session, ``track``, and Blender itself), and recovery from the CLI and the panel's
operator. Each test has its own user cache, so the journals it finds are its own."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from blender_facemesh.core import journal
from blender_facemesh.core.capture.sources import SimulatedLiveSource
from blender_facemesh.core.take import Take
from blender_facemesh.core.tracking.live import LiveSession
from blender_facemesh.core.tracking.worker import WorkerSettings

REPO = Path(__file__).resolve().parents[1]
FPS = 30  # the sample clip's


@pytest.fixture
def cache(tmp_path, monkeypatch, face_model):
    """A user cache of this test's own (the model still found where it is)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("BLENDER_FACEMESH_CACHE", str(d))
    monkeypatch.setenv("BLENDER_FACEMESH_MODEL", str(face_model.path))
    return d


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "GLOG_minloglevel": "2"}


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "blender_facemesh", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=_env(), cwd=REPO)


def _kill_when(proc, cond, limit=120.0):
    """SIGKILL ``proc`` once ``cond(line)`` holds for a line it printed; returns that line."""
    deadline = time.monotonic() + limit
    for line in proc.stdout:
        if cond(line):
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return line
        if time.monotonic() > deadline:
            break
    proc.kill()
    pytest.fail("the child never got far enough: " + proc.stderr.read()[-2000:])


def _poll_until(session, cond, limit=60.0):
    deadline = time.monotonic() + limit
    while not cond() and time.monotonic() < deadline:
        session.poll()
        threading.Event().wait(0.01)
    return cond()


def test_a_recording_streams_to_its_journal_and_a_clean_save_removes_it(cache, sample_clip, tmp_path):
    planned = tmp_path / "takes" / "one.npz"
    session = LiveSession(SimulatedLiveSource(sample_clip), WorkerSettings(), take_path=lambda: planned).start()
    try:
        session.start_recording()
        assert _poll_until(session, lambda: session.take is not None and len(session.take) >= 30)
        j = session.take.journal
        assert j is not None and j.path == journal.journal_for(planned)
        assert journal.in_use(j.path)  # a recording in progress is not offered for recovery
        assert journal.unfinished([planned.parent]) == []
        threading.Event().wait(2 * journal.INTERVAL)
        assert j.frames_written >= 15  # written while recording, not at the end
    finally:
        take = session.stop()
    # stopped but not yet saved: complete on disk, and now an unfinished recording
    found = journal.unfinished()
    assert [u.journal for u in found] == [j.path.resolve()] and found[0].frames == len(take)
    again = journal.read_journal(j.path)
    assert len(again) == len(take)
    np.testing.assert_array_equal(again.landmarks, take.landmarks)
    np.testing.assert_array_equal(again.head_matrix, take.head_matrix)
    np.testing.assert_array_equal(again.t, take.t)
    take.save(j.take_path)
    j.discard()
    assert journal.unfinished([planned.parent]) == [] and not j.path.exists()


def test_a_journal_cut_short_or_damaged_keeps_every_whole_chunk(cache, sample_take, tmp_path):
    take, _ = sample_take
    path = tmp_path / "cut.npz.recording"
    j = journal.TakeJournal(path, take)
    for i in range(3):  # three chunks of 10 frames
        for k in range(10 * i, 10 * i + 10):
            j.append(_sample(take, k))
        j._write_pending()
    j.close()
    assert journal.summary(path).frames == 30
    data = path.read_bytes()
    path.write_bytes(data[:-100])  # the last chunk cut mid-write
    assert len(journal.read_journal(path)) == 20
    damaged = bytearray(data)
    damaged[-50] ^= 0xFF  # a flipped byte in the last chunk fails its checksum
    path.write_bytes(bytes(damaged))
    assert len(journal.read_journal(path)) == 20
    path.write_bytes(data + b"\x07garbage")  # junk after the end
    assert len(journal.read_journal(path)) == 30
    path.write_bytes(data[:len(journal.MAGIC) + 3])
    with pytest.raises(journal.JournalError, match="no header"):
        journal.read_journal(path)
    path.write_bytes(b"not a journal at all")
    with pytest.raises(journal.JournalError, match="not a blender_facemesh recording journal"):
        journal.read_journal(path)


def _sample(take, i):
    from types import SimpleNamespace

    from blender_facemesh.core.take import _ARRAYS

    faces = [SimpleNamespace(id=int(take.face_ids[i, 0]), **{k: take.arrays[k][i, 0] for k in _ARRAYS})]
    return SimpleNamespace(index=int(take.frame_index[i]), t=float(take.t[i]), faces=faces)


_LIVE_CHILD = """
import sys, threading
from blender_facemesh.core.capture.sources import SimulatedLiveSource
from blender_facemesh.core.tracking.live import LiveSession
from blender_facemesh.core.tracking.worker import WorkerSettings
from pathlib import Path
s = LiveSession(SimulatedLiveSource(sys.argv[1]), WorkerSettings(), take_path=lambda: Path(sys.argv[2])).start()
s.start_recording()
while True:
    s.poll()
    if s.take is not None:
        print(len(s.take), flush=True)
    threading.Event().wait(0.02)
"""


def test_a_killed_live_session_loses_at_most_a_second(cache, sample_clip, tmp_path):
    planned = tmp_path / "takes" / "killed.npz"
    proc = subprocess.Popen([sys.executable, "-c", _LIVE_CHILD, str(sample_clip), str(planned)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    recorded = int(_kill_when(proc, lambda line: line.strip().isdigit() and int(line) >= 60))
    found = journal.unfinished()
    assert len(found) == 1 and found[0].take == planned
    take, dest = journal.recover(found[0].journal)
    assert dest == planned and Take.load(planned).t.shape == take.t.shape
    assert recorded - FPS <= len(take) <= recorded + 5, (recorded, len(take))
    assert take.face_present.all() and np.all(np.diff(take.t) > 0)
    assert journal.unfinished() == [] and not found[0].journal.exists()


def test_track_killed_then_recovered_from_the_command_line(cache, tmp_path):
    out = tmp_path / "killed.npz"
    proc = subprocess.Popen([sys.executable, "-m", "blender_facemesh", "track", "sample", "--simulate-live",
                             "-o", str(out), "--quiet"], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    j = journal.journal_for(out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (j.is_file() and journal.summary(j).frames >= 30):
        threading.Event().wait(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()
    assert not out.exists() and j.is_file()
    frames = journal.summary(j).frames
    # the next start says so, and `recover --list` shows it
    listed = _cli("recover", "--list")
    assert listed.returncode == 0 and f"{frames} frames" in listed.stdout and str(out) in listed.stdout
    again = _cli("track", "sample", "-o", tmp_path / "next.npz", "--quiet")
    assert again.returncode == 0 and "an unfinished recording was found" in again.stderr
    done = _cli("recover")
    assert done.returncode == 0, done.stderr
    assert f"recovered {frames} frames" in done.stdout and len(Take.load(out)) >= frames >= 30
    assert not j.exists() and "no unfinished recordings" in _cli("recover", "--list").stdout


def test_track_ended_by_sigterm_saves_its_take(cache, tmp_path):
    out = tmp_path / "term.npz"
    proc = subprocess.Popen([sys.executable, "-m", "blender_facemesh", "track", "sample", "--simulate-live",
                             "-o", str(out), "--quiet"], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    j = journal.journal_for(out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (j.is_file() and journal.summary(j).frames >= 15):
        threading.Event().wait(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and len(Take.load(out)) >= 15, err
    assert not j.exists()


def test_recover_names_what_it_cannot_use(cache, tmp_path):
    bad = tmp_path / "x.npz.recording"
    bad.write_bytes(b"junk")
    r = _cli("recover", bad)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "x.npz.recording" in r.stderr
    r = _cli("recover", tmp_path / "missing.recording")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr


_BLENDER_CHILD = """
import os, signal, sys, threading
import bpy
import blender_facemesh
from blender_facemesh.blender import live
from blender_facemesh.core.capture.sources import SimulatedLiveSource
bpy.ops.wm.read_factory_settings(use_empty=True)
blender_facemesh.register()
scene = bpy.context.scene
scene.facemesh.take_dir = sys.argv[2]
scene.facemesh.recording = True
live.start(bpy.context, SimulatedLiveSource(sys.argv[1]))
while True:
    live.tick()
    take = live.state.session.take if live.state.session else None
    if take is not None:
        print(len(take), flush=True)
    threading.Event().wait(0.01)
"""


def test_blender_killed_mid_recording_offers_the_recording_back(cache, sample_clip, tmp_path):
    bpy = pytest.importorskip("bpy")
    import blender_facemesh
    from blender_facemesh.blender import recovery

    takes = tmp_path / "takes"
    proc = subprocess.Popen([sys.executable, "-c", _BLENDER_CHILD, str(sample_clip), str(takes)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    recorded = int(_kill_when(proc, lambda line: line.strip().isdigit() and int(line) >= 45, limit=240))
    assert len(list(takes.glob("*.recording"))) == 1 and not list(takes.glob("*.npz"))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_facemesh.register()
    try:
        bpy.context.scene.facemesh.take_dir = str(takes)
        recovery.on_load_post()  # what opening a file (or starting Blender) runs
        assert len(recovery.found) == 1
        offered = recovery.found[0]
        assert recorded - FPS <= offered.frames <= recorded + 5
        assert bpy.ops.facemesh.recording_recover(journal=str(offered.journal)) == {"FINISHED"}
        s = bpy.context.scene.facemesh
        assert recovery.found == [] and len(s.takes) == 1 and s.takes[0].frames == offered.frames
        assert Path(s.last_take).parent == takes and len(Take.load(s.last_take)) == offered.frames
        assert not offered.journal.exists()
        # nothing left: the operator says so instead of failing
        with pytest.raises(RuntimeError, match="no unfinished recording"):
            bpy.ops.facemesh.recording_recover()
    finally:
        blender_facemesh.unregister()
