"""Live Link Face CSV: timecodes, the app's header and angle conventions, import, export, round trip."""

import math

import numpy as np
import pytest

from blender_facemesh.core.channels import ARKIT_INDEX
from blender_facemesh.core.rotations import rotation_angle_deg, rotation_part
from blender_facemesh.core.formats.livelink import (HEADER, LiveLinkError, format_timecode, parse_timecode,
                                            read_csv, write_csv)
from blender_facemesh.core.take import Take
from blender_facemesh.core.tracking.worker import FaceSample, Sample

APP_HEADER = (  # as Live Link Face writes it
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
    "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
    "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
    "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
    "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
    "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
    "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
    "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll")
NAMES = APP_HEADER.split(",")
NTSC = 30000 / 1001


def llf_csv(path, rows, header=APP_HEADER):
    """Hand-written CSV in the app's layout: rows are (timecode, {column: value}), others 0."""
    names = header.split(",")
    lines = [header]
    for tc, values in rows:
        cells = [tc, "61"] + [str(values.get(n, "0.0000000000")) for n in names[2:]]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


# --- timecodes ---------------------------------------------------------------------------------

def test_header_is_the_apps():
    assert ",".join(HEADER) == APP_HEADER


def test_drop_frame_timecodes_count_smpte_frames():
    # 00:01:00;00 and ;01 do not exist: 59;29 -> 1:00;02 are consecutive frames 1799, 1800
    for tc, frame in [("00:00:59;29", 1799), ("00:01:00;02", 1800), ("00:01:00;03", 1801),
                      ("00:09:59;29", 17981), ("00:10:00;00", 17982), ("01:00:00;00", 107892)]:
        assert parse_timecode(tc, 29.97) == pytest.approx(frame / NTSC, abs=1e-9)
        assert format_timecode(frame / NTSC, 29.97, drop_frame=True) == tc + ".000"
    assert parse_timecode("00:01:00;04", 59.94) * 2 * NTSC == pytest.approx(3600)
    assert parse_timecode("00:00:59;59", 59.94) * 2 * NTSC == pytest.approx(3599)
    assert parse_timecode("00:01:00;02.500", 29.97) == pytest.approx(1800.5 / NTSC)
    with pytest.raises(LiveLinkError, match="does not exist"):
        parse_timecode("00:01:00;01", 29.97)


def test_non_drop_and_plain_seconds():
    assert parse_timecode("14:25:36:23.566", 60) == pytest.approx(14 * 3600 + 25 * 60 + 36 + 23.566 / 60)
    assert parse_timecode("00:00:01:15", 30) == pytest.approx(1.5)
    assert parse_timecode("00:00:01:12", 24) == pytest.approx(1.5)
    assert parse_timecode("00:00:01:00", 29.97) == pytest.approx(30 / NTSC)  # non-drop 29.97: real time
    assert parse_timecode(" 12.25 ", 30) == 12.25
    assert format_timecode(1.5, 30) == "00:00:01:15.000"
    assert format_timecode(14 * 3600 + 25 * 60 + 36 + 23.566 / 60, 60) == "14:25:36:23.566"


@pytest.mark.parametrize("fps,drop", [(24, False), (25, False), (30, False), (60, False),
                                      (29.97, False), (29.97, True), (59.94, True), (23.976, False)])
def test_format_parse_round_trip(fps, drop, rng):
    for s in rng.uniform(0, 86000, 500):
        tc = format_timecode(s, fps, drop)
        assert (";" in tc) == drop
        assert parse_timecode(tc, fps) == pytest.approx(s, abs=1e-4)


@pytest.mark.parametrize("text,fps", [("", 30), ("abc", 30), ("00:61:00:00", 30), ("00:00:00:30", 30),
                                      ("00:00:00:60.5", 60), ("00:00:01;00", 30), ("1:2:3", 30),
                                      ("00:00:01:00", 0), ("00:00:01:00", float("nan"))])
def test_nonsense_timecodes_raise(text, fps):
    with pytest.raises(LiveLinkError) as info:
        parse_timecode(text, fps)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_format_refuses_nonsense():
    with pytest.raises(LiveLinkError):
        format_timecode(-1.0, 30)
    with pytest.raises(LiveLinkError, match="29.97 and 59.94"):
        format_timecode(1.0, 30, drop_frame=True)


# --- reading -----------------------------------------------------------------------------------

def test_drop_frame_csv_imports_to_smpte_seconds(tmp_path):
    path = llf_csv(tmp_path / "df.csv", [
        ("00:00:59;29", {"JawRight": 0.75, "JawLeft": 0.25}),
        ("00:01:00;02", {"MouthRight": 0.5}),
        ("00:01:00;03", {"MouthLeft": 0.125, "EyeBlinkLeft": 1}),
    ])
    take = read_csv(path)
    assert take.fps == pytest.approx(29.97, abs=1e-3)
    assert take.source["kind"] == "livelink_csv"
    assert take.meta["timecode_start"] == "00:00:59;29" and take.meta["drop_frame"]
    np.testing.assert_allclose(take.t, np.arange(3) / NTSC, atol=1e-9)  # consecutive frames
    np.testing.assert_allclose(take.t * take.fps, [0, 1, 2], atol=1e-6)
    b = take.blendshapes[:, 0]
    assert b[0, ARKIT_INDEX["jawRight"]] == 0.75 and b[0, ARKIT_INDEX["jawLeft"]] == 0.25  # by name
    assert b[1, ARKIT_INDEX["mouthRight"]] == 0.5 and b[2, ARKIT_INDEX["mouthLeft"]] == 0.125
    assert b[2, ARKIT_INDEX["eyeBlinkLeft"]] == 1.0
    assert take.face_ids.tolist() == [[0], [0], [0]]


def test_fps_is_inferred_from_frame_numbers(tmp_path):
    at30 = read_csv(llf_csv(tmp_path / "30.csv", [(f"00:00:0{s}:{f:02d}", {}) for s, f in
                                                  [(0, 28), (0, 29), (1, 0), (1, 1)]]))
    assert at30.fps == 30
    np.testing.assert_allclose(at30.t, np.arange(4) / 30, atol=1e-9)
    # the app's own pattern: a 60 fps timecode, a row every other frame, a drifting sub-frame
    at60 = read_csv(llf_csv(tmp_path / "60.csv", [("13:13:04:55.652", {}), ("13:13:04:57.651", {}),
                                                  ("13:13:04:59.651", {}), ("13:13:05:01.650", {})]))
    assert at60.fps == 60
    np.testing.assert_allclose(at60.t, [0, 1.999 / 60, 3.999 / 60, 5.998 / 60], atol=1e-9)
    at24 = read_csv(llf_csv(tmp_path / "24.csv", [("00:00:00:22", {}), ("00:00:00:23", {}), ("00:00:01:00", {})]))
    assert at24.fps == 24
    short = llf_csv(tmp_path / "short.csv", [(f"00:00:00:{f:02d}", {}) for f in range(4)])
    assert read_csv(short).fps == 60  # under a second: cannot tell, the app's default
    forced = read_csv(short, fps=30)
    assert forced.fps == 30
    np.testing.assert_allclose(forced.t, np.arange(4) / 30, atol=1e-9)


def test_repeated_timecodes_keep_order_and_midnight_unwraps(tmp_path):
    codes = ["23:59:59:58", "23:59:59:59", "23:59:59:59", "00:00:00:00"]
    take = read_csv(llf_csv(tmp_path / "r.csv", [(c, {"JawOpen": 0.1 * (i + 1)}) for i, c in enumerate(codes)]))
    assert take.fps == 60
    assert np.all(np.diff(take.t) > 0)
    np.testing.assert_allclose(take.t, [0, 1 / 60, 1 / 60 + 1e-6, 2 / 60], atol=1e-9)
    np.testing.assert_allclose(take.blendshapes[:, 0, ARKIT_INDEX["jawOpen"]], [0.1, 0.2, 0.3, 0.4], atol=1e-7)


def test_head_angles_follow_the_apps_convention(tmp_path):
    from blender_facemesh.core.rotations import euler_to_matrix

    yaw, pitch, roll = 0.3, 0.2, 0.1
    take = read_csv(llf_csv(tmp_path / "h.csv", [("00:00:00:00", {"HeadYaw": yaw}),
                                                 ("00:00:00:01", {"HeadPitch": pitch}),
                                                 ("00:00:00:02", {"HeadRoll": roll}),
                                                 ("00:00:00:03", {"HeadYaw": yaw, "HeadPitch": pitch,
                                                                  "HeadRoll": roll})]))
    m = take.head_matrix[:, 0]
    assert (m[0, :3, :3] @ [0, 0, 1])[0] < 0  # yaw > 0: the performer turns right, nose to image left
    assert (m[1, :3, :3] @ [0, 0, 1])[1] < 0  # pitch > 0: nose down
    assert (m[2, :3, :3] @ [0, 1, 0])[0] > 0  # roll > 0: top of the head to image right
    np.testing.assert_allclose(m[3, :3, :3], euler_to_matrix(*np.degrees([-yaw, pitch, -roll])), atol=1e-12)
    np.testing.assert_allclose(m[:, :3, 3], np.tile([0, 0, -50.0], (4, 1)))
    assert np.all(m[:, 3] == [0, 0, 0, 1])


def test_eye_angles_have_the_apps_signs(tmp_path):
    # In the app's recordings both eyes looking up and toward the performer's left
    # (EyeLookUp ~0.47, EyeLookOutLeft ~0.14, EyeLookInRight ~0.25) read LeftEyePitch ~-0.2 and
    # both eye yaws negative. Our export must agree in sign.
    scores = np.zeros(52, np.float32)
    for name, v in [("eyeLookUpLeft", 0.47), ("eyeLookUpRight", 0.47), ("eyeLookOutLeft", 0.14),
                    ("eyeLookInRight", 0.25)]:
        scores[ARKIT_INDEX[name]] = v
    take = Take(30, 64, 64)
    face = FaceSample(0, np.zeros((478, 3), np.float32), np.eye(4), np.zeros((468, 3), np.float32), scores,
                      np.eye(4, dtype=np.float32))
    take.append(Sample(0, 0.0, [face], 0.0, 0.0))
    path = write_csv(take, tmp_path / "eyes.csv")
    row = dict(zip(NAMES, path.read_text().splitlines()[1].split(",")))
    assert float(row["LeftEyePitch"]) == pytest.approx(-0.205, abs=0.01)  # radians, like the app's
    assert float(row["LeftEyeYaw"]) < 0 and float(row["RightEyeYaw"]) < 0
    assert float(row["LeftEyeRoll"]) == 0 and float(row["RightEyeRoll"]) == 0
    eyes = read_csv(path).eye_angles[:, 0]  # back in solve.eyes.eye_rotations' signs
    assert eyes.shape == (1, 2, 3) and eyes[0, 0, 1] > 0 and eyes[0, 0, 0] > 0


# --- malformed files ---------------------------------------------------------------------------

def test_missing_column_is_named(tmp_path):
    header = APP_HEADER.replace(",JawOpen", "")
    with pytest.raises(LiveLinkError, match=r"m\.csv lacks column\(s\) JawOpen"):
        read_csv(llf_csv(tmp_path / "m.csv", [("00:00:00:00", {})], header=header))
    with pytest.raises(LiveLinkError, match="HeadRoll"):  # head columns: all three or none
        read_csv(llf_csv(tmp_path / "m.csv", [("00:00:00:00", {})], header=APP_HEADER.replace(",HeadRoll", "")))
    no_pose = ",".join(NAMES[:NAMES.index("HeadYaw")])  # blendshapes only: still readable
    take = read_csv(llf_csv(tmp_path / "bs.csv", [("00:00:00:00", {})], header=no_pose))
    np.testing.assert_array_equal(take.head_matrix[0, 0, :3, :3], np.eye(3))
    assert not take.has("eye_angles") and not take.has("landmarks")


def test_non_numeric_value_names_line_and_column(tmp_path):
    path = llf_csv(tmp_path / "n.csv", [("00:00:00:00", {}), ("00:00:00:01", {"MouthClose": "abc"})])
    with pytest.raises(LiveLinkError, match=r"n\.csv line 3, column MouthClose: 'abc' is not a number"):
        read_csv(path)
    path = llf_csv(tmp_path / "n.csv", [("00:00:00:00", {"HeadYaw": "nan"})])
    with pytest.raises(LiveLinkError, match="line 2, column HeadYaw"):
        read_csv(path)
    with pytest.raises(LiveLinkError, match="line 2: timecode 'noon'"):
        read_csv(llf_csv(tmp_path / "n.csv", [("noon", {})]))


def test_empty_header_only_and_damaged_files(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(LiveLinkError, match=r"e\.csv is empty"):
        read_csv(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text(APP_HEADER + "\n\n")
    with pytest.raises(LiveLinkError, match=r"h\.csv has a header but no frames"):
        read_csv(tmp_path / "h.csv")
    (tmp_path / "c.csv").write_text(APP_HEADER + "\n00:00:00:00,61,0.5,0.1\n")
    with pytest.raises(LiveLinkError, match="line 2 has 4 fields"):
        read_csv(tmp_path / "c.csv")
    with pytest.raises(LiveLinkError, match="does not exist"):
        read_csv(tmp_path / "nope.csv")
    back = llf_csv(tmp_path / "b.csv", [("00:00:05:00", {}), ("00:00:01:00", {})])
    with pytest.raises(LiveLinkError, match="goes back from line 2"):
        read_csv(back)


# --- writing and round trips -------------------------------------------------------------------

def _face(rng, fid, yaw):
    pose = np.eye(4)
    pose[:3, :3] = 1.3 * _rot(yaw)  # MediaPipe's matrices carry a scale
    pose[:3, 3] = rng.normal(size=3)
    return FaceSample(fid, rng.random((478, 3), dtype=np.float32), pose,
                      rng.normal(size=(468, 3)).astype(np.float32), rng.random(52, dtype=np.float32),
                      np.eye(4, dtype=np.float32))


def _rot(yaw):
    from blender_facemesh.core.rotations import livelink_rotation

    return livelink_rotation(yaw, 0.5 * yaw, -0.3 * yaw)


def test_write_refuses_a_take_without_faces(tmp_path):
    take = Take(30.0, 64, 64)
    take.append(Sample(0, 0.0, [], 0.0, 0.0))
    with pytest.raises(LiveLinkError, match="no frames with a face"):
        write_csv(take, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_write_skips_frames_without_the_face(tmp_path, rng):
    take = Take(30.0, 640, 480, source={"kind": "video"})
    for i in range(8):
        faces = [] if i in (0, 4) else [_face(rng, 0, 0.1 * i)] + ([_face(rng, 1, 0.0)] if i == 5 else [])
        take.append(Sample(i, 2.0 + i / 30.0, faces, 0.0, 0.0))
    path = write_csv(take, tmp_path / "w.csv", start_timecode="00:59:59:28")
    lines = path.read_text().splitlines()
    assert lines[0] == APP_HEADER and len(lines) == 7
    cells = [ln.split(",") for ln in lines[1:]]
    assert [c[0] for c in cells[:3]] == ["00:59:59:28.000", "00:59:59:29.000", "01:00:00:00.000"]
    assert cells[3][0] == "01:00:00:02.000"  # frame 4 had no face: skipped, the gap kept
    assert all(c[1] == "61" and len(c) == len(NAMES) for c in cells)
    back = read_csv(path)
    present = take.face_present
    np.testing.assert_allclose(back.t, take.t[present] - take.t[1], atol=1e-6)
    np.testing.assert_allclose(back.blendshapes[:, 0], take.blendshapes[present, 0], atol=1e-9)
    for a, b in zip(take.head_matrix[present, 0], back.head_matrix[:, 0]):  # scale dropped, rotation kept
        assert rotation_angle_deg(rotation_part(a), b[:3, :3]) < 1e-6
    assert back.meta["timecode_start"] == "00:59:59:28.000" and back.fps == 30


def test_livelink_take_writes_back_what_it_read(tmp_path):
    rows = [("00:00:59;28.250", {"JawOpen": 0.5, "HeadYaw": 0.1, "HeadPitch": -0.2, "HeadRoll": 0.05,
                                 "LeftEyeYaw": -0.03, "LeftEyePitch": 0.17, "LeftEyeRoll": -0.005,
                                 "RightEyeYaw": 0.03, "RightEyePitch": 0.171, "RightEyeRoll": 0.006}),
            ("00:01:00;02.250", {"TongueOut": 0.25, "HeadYaw": -0.4})]
    first = read_csv(llf_csv(tmp_path / "a.csv", rows))
    second = read_csv(write_csv(first, tmp_path / "b.csv", drop_frame=True))
    assert (tmp_path / "b.csv").read_text().splitlines()[1].startswith("00:00:59;28.250,61,")
    np.testing.assert_allclose(second.t, first.t, atol=1e-6)
    np.testing.assert_allclose(second.blendshapes, first.blendshapes, atol=1e-9)
    np.testing.assert_allclose(second.head_matrix, first.head_matrix, atol=1e-9)
    np.testing.assert_allclose(second.eye_angles, first.eye_angles, atol=1e-7)
    assert second.meta["timecode_start"] == "00:00:59;28.250"


@pytest.fixture(scope="module")
def tracked_take(sample_clip):
    from blender_facemesh.core.solve.smoothing import Smoothing
    from blender_facemesh.core.capture.sources import VideoFileSource
    from blender_facemesh.core.tracking.worker import WorkerSettings, track_take

    return track_take(VideoFileSource(sample_clip), WorkerSettings(smoothing=Smoothing.off()))


def test_exporter_round_trip_on_a_tracked_take(tracked_take, tmp_path):
    take = tracked_take
    path = write_csv(take, tmp_path / "sample.csv")
    assert path.read_text().splitlines()[0] == APP_HEADER
    back = read_csv(path)
    track = take.face_track()
    rows = np.flatnonzero(track["present"])
    assert len(rows) > 0.9 * len(take) and len(back) == len(rows)
    assert back.fps == take.fps == 30
    np.testing.assert_allclose(back.t, take.t[rows] - take.t[rows[0]], atol=1e-3)
    np.testing.assert_allclose(back.blendshapes[:, 0], np.nan_to_num(track["blendshapes"][rows]), atol=1e-9)
    worst = max(rotation_angle_deg(rotation_part(a), b[:3, :3])
                for a, b in zip(track["head_matrix"][rows], back.head_matrix[:, 0]))
    assert math.radians(worst) < 1e-6
    turn = max(rotation_angle_deg(np.eye(3), rotation_part(m)) for m in track["head_matrix"][rows])
    assert turn > 10  # the clip really turns the head, so the angles were exercised


def test_reading_in_chunks_reports_progress_and_can_be_cancelled(tmp_path, monkeypatch):
    """Rows are parsed a chunk at a time (the same take whatever the chunk size), progress
    rises towards 1, and an exception from the progress callback ends the reading (Esc in
    Blender's import)."""
    from blender_facemesh.core.formats import livelink

    rows = [(format_timecode(i / 60, 60), {"JawOpen": f"{(i % 7) / 7:.10f}", "HeadYaw": f"{i / 1e4:.10f}"})
            for i in range(250)]
    path = llf_csv(tmp_path / "a.csv", rows)
    whole = read_csv(path)
    monkeypatch.setattr(livelink, "_CHUNK_ROWS", 16)
    seen = []
    take = read_csv(path, progress=seen.append)
    np.testing.assert_array_equal(take.blendshapes, whole.blendshapes)
    np.testing.assert_array_equal(take.head_matrix, whole.head_matrix)
    np.testing.assert_array_equal(take.t, whole.t)
    assert len(seen) == 16 and seen == sorted(seen) and 0.8 < seen[-1] < 1.0

    def stop(p):
        if p > 0.5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_csv(path, progress=stop)
