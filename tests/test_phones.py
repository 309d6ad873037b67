"""iPhone apps as live sources: Live Link Face and iFacialMocap packets on a real UDP socket.

The phone is the one thing that cannot exist here: a sender thread on 127.0.0.1 stands in for
it (core/testing/phones.py), replaying a take as the app's packets at 60 fps with loss,
reordering and garbage mixed in by a seeded plan. The receiver, socket, worker thread, live
session and takes are the real ones.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from blender_facemesh.core.capture.phone import (PacketError, PhoneError, PhoneSettings, decode_ifacialmocap,
                                                 decode_livelink, encode_livelink, livelink_values,
                                                 parse_phone_input)
from blender_facemesh.core.formats.livelink import read_csv, write_csv_per_face
from blender_facemesh.core.rotations import rotation_angle_deg, rotation_part
from blender_facemesh.core.take import Take
from blender_facemesh.core.testing.phones import (Sender, ifacialmocap_packets, livelink_packets, mix,
                                                  phone_take)
from blender_facemesh.core.tracking.live import LiveSession
from blender_facemesh.core.tracking.phone import PhoneWorker


def record(plan_packets, protocol="livelink", allow=(), interval=1 / 60):
    """Run a live session on a fresh port while the packets are sent; poll like Blender's timer.
    Returns (recorded take or None, worker)."""
    worker = PhoneWorker(PhoneSettings(protocol, host="127.0.0.1", port=0, allow=allow))
    session = LiveSession(worker).start()
    session.start_recording()
    sender = Sender(plan_packets, worker.address).start()
    while sender._thread.is_alive():
        session.poll()
        time.sleep(interval)
    sender.join()
    deadline = time.monotonic() + 2.0
    while worker.counts.received < sender.sent and time.monotonic() < deadline:
        time.sleep(0.01)  # the last datagrams are in the socket: let the worker read them
    time.sleep(0.05)
    session.poll()
    return session.stop(), worker


def compare(recorded: Take, replayed: Take, kept: list[int]) -> dict:
    """The recorded take against the replayed frames it should hold; returns the largest errors."""
    idx = np.array(kept)
    src, got = replayed.face_track(0), recorded.face_track(0)
    assert len(recorded) == len(idx)
    assert (got["present"] == src["present"][idx]).all()
    on = src["present"][idx]
    return {
        "t": float(np.abs(recorded.t - (replayed.t[idx] - replayed.t[0])).max()),
        "scores": float(np.abs(got["blendshapes"][on] - src["blendshapes"][idx][on]).max()),
        "head_deg": max(rotation_angle_deg(rotation_part(a), rotation_part(b))
                        for a, b in zip(got["head_matrix"][on], src["head_matrix"][idx][on])),
        "position_cm": float(np.abs(got["head_matrix"][on][:, :3, 3] - src["head_matrix"][idx][on][:, :3, 3]).max()),
        "eyes": float(np.abs(got["eye_angles"][on] - src["eye_angles"][idx][on]).max()),
    }


def test_livelink_replay_with_loss_reordering_and_garbage_records_the_take():
    take = phone_take(150)
    plan = mix(livelink_packets(take, "Ana"), loss=0.05, reorder=0.05, garbage=0.15, seed=3)
    assert plan.lost and plan.dropped.get("late") and plan.dropped.get("malformed")
    recorded, worker = record(plan.packets)
    err = compare(recorded, take, plan.kept)
    # scores and eye angles are float32 in the packet and in the take: exact; times from the packets
    assert err["scores"] == 0 and err["eyes"] == 0 and err["t"] < 1e-6
    assert err["head_deg"] < 1e-4 and err["position_cm"] == 0
    assert worker.counts.dropped == plan.dropped
    assert worker.counts.missing == plan.lost
    assert worker.frames_dropped == plan.lost + sum(plan.dropped.values())
    assert recorded.meta["performers"] == {"0": "Ana"}
    assert not recorded.has("landmarks") and recorded.has("eye_angles")
    assert 59 < worker.source.info.fps < 61


def test_ifacialmocap_replay_records_scores_to_the_packets_precision():
    take = phone_take(120, seed=5)
    plan = mix(ifacialmocap_packets(take), "ifacialmocap", loss=0.05, garbage=0.15, seed=4)
    recorded, worker = record(plan.packets, "ifacialmocap")
    err = compare(recorded, take, plan.kept)
    assert err["scores"] <= 0.005 + 1e-6  # whole percent in the text
    assert err["head_deg"] < 1e-3 and err["position_cm"] < 1e-4
    assert worker.counts.dropped == plan.dropped
    # no times in the packets: arrival times, increasing, about the sending pace
    assert np.all(np.diff(recorded.t) > 0) and 0.8 / 60 < np.median(np.diff(recorded.t)) < 1.25 / 60


def test_two_phones_are_two_performers_each_with_their_own_face(tmp_path):
    a, b = phone_take(90, seed=1, gap=None), phone_take(90, seed=2, gap=(30, 40))
    pa, pb = livelink_packets(a, "Ana"), livelink_packets(b, "Ben", fps=60)
    interleaved = [p for pair in zip(pa, pb) for p in pair]
    worker = PhoneWorker(PhoneSettings("livelink", host="127.0.0.1", port=0))
    session = LiveSession(worker).start()
    session.start_recording()
    sender = Sender(interleaved, worker.address, rate=120).start()
    while sender._thread.is_alive():
        session.poll()
        time.sleep(1 / 60)
    time.sleep(0.1)
    session.poll()
    take = session.stop()
    assert take.meta["performers"] == {"0": "Ana", "1": "Ben"}
    assert np.all(np.diff(take.t) > 0)
    for fid, src in ((0, a), (1, b)):
        got, want = take.face_track(fid), src.face_track(0)
        assert np.array_equal(got["blendshapes"][got["present"]], want["blendshapes"][want["present"]])
        assert np.allclose(take.t[got["present"]] - take.t[got["present"]][0],
                           src.t[want["present"]] - src.t[want["present"]][0], atol=1e-5)
    # a Live Link CSV per performer, named after the phone, as the app records one per phone
    paths = write_csv_per_face(take, tmp_path / "scene.csv")
    assert [p.name for p in paths] == ["scene_Ana.csv", "scene_Ben.csv"]
    for path, src in zip(paths, (a, b)):
        want = src.face_track(0)
        back = read_csv(path)
        assert len(back) == int(want["present"].sum())
        assert np.abs(back.blendshapes[:, 0] - want["blendshapes"][want["present"]]).max() < 1e-6


def test_allow_list_refuses_other_senders():
    take = phone_take(30, gap=None)
    recorded, worker = record(livelink_packets(take), allow=("127.0.0.2",))
    assert recorded is None and worker.counts.dropped == {"refused": 30}
    recorded, worker = record(livelink_packets(take), allow=("127.0.0.1",))
    assert len(recorded) == 30 and not worker.counts.dropped


def test_port_in_use_is_a_clear_error_and_the_port_is_freed_when_the_capture_stops():
    worker = PhoneWorker(PhoneSettings("livelink", host="127.0.0.1", port=0)).start()
    port = worker.address[1]
    with pytest.raises(PhoneError, match=f"UDP port {port} is in use"):
        PhoneWorker(PhoneSettings("livelink", host="127.0.0.1", port=port)).start()
    worker.stop()
    again = PhoneWorker(PhoneSettings("livelink", host="127.0.0.1", port=port)).start()  # bound only while running
    again.stop()
    with pytest.raises(PhoneError, match="not an address of this computer"):
        PhoneWorker(PhoneSettings("livelink", host="203.0.113.9", port=0)).start()


def test_every_cut_and_random_packet_is_dropped_with_a_reason_never_raised_otherwise():
    good = encode_livelink("Ana", 1.5, livelink_values(np.full(52, 0.5), (0.1, 0.2, 0.3), np.zeros((2, 3))))
    f = decode_livelink(good)
    assert f.subject == "Ana" and abs(f.t - 1.5) < 1e-6 and np.allclose(f.scores, 0.5)
    header_only = encode_livelink("Ana", 1.5, None)
    assert decode_livelink(header_only).scores is None  # the app's "no face" packet
    for n in range(len(good)):
        if n == len(header_only):
            continue
        with pytest.raises(PacketError) as e:
            decode_livelink(good[:n])
        assert e.value.kind in ("truncated", "malformed")
    rng = np.random.default_rng(0)
    for _ in range(2000):
        junk = bytes(rng.integers(0, 256, int(rng.integers(0, 400)), np.uint8))
        for decode in (lambda d: decode_livelink(d), lambda d: decode_ifacialmocap(d, "x")):
            try:
                decode(junk)
            except PacketError:
                pass
    bad = bytearray(good)
    bad[-4:] = np.array([np.nan], ">f4").tobytes()
    with pytest.raises(PacketError, match="not finite"):
        decode_livelink(bytes(bad))


def test_ifacialmocap_text_from_the_apps_documentation_is_read():
    # the sample datagram on the app's developer page (scores cut to a few for the test, plus the rest at 0)
    text = ("mouthSmile_R-0|eyeLookOut_L-0|mouthUpperUp_L-11|eyeWide_R-0|mouthClose-8|mouthPucker-4|"
            "mouthRollLower-9|eyeBlink_R-7|eyeLookDown_L-17|cheekSquint_R-11|eyeBlink_L-7|tongueOut-0|jawRight-0|"
            "eyeLookIn_R-6|cheekSquint_L-11|mouthDimple_L-10|mouthPress_L-4|eyeSquint_L-11|mouthRight-0|"
            "mouthShrugLower-9|eyeLookUp_R-0|eyeLookOut_R-0|mouthPress_R-5|cheekPuff-2|jawForward-11|"
            "mouthLowerDown_L-9|mouthFrown_L-6|mouthShrugUpper-26|browOuterUp_L-4|browInnerUp-20|mouthDimple_R-10|"
            "browDown_R-0|mouthUpperUp_R-10|mouthRollUpper-8|mouthFunnel-12|mouthStretch_R-21|mouthFrown_R-13|"
            "eyeLookDown_R-17|jawOpen-12|jawLeft-0|browDown_L-0|mouthSmile_L-0|noseSneer_R-18|mouthLowerDown_R-8|"
            "noseSneer_L-21|eyeWide_L-0|mouthStretch_L-21|browOuterUp_R-4|eyeLookIn_L-4|eyeSquint_R-11|"
            "eyeLookUp_L-0|mouthLeft-1|=head#-21.488958,-6.038993,-6.6019735,-0.030653415,-0.10287084,-0.6584072|"
            "rightEye#6.0297494,2.4403017,0.25649446|leftEye#6.034903,-1.6660284,-0.17520553|")
    f = decode_ifacialmocap(text.encode(), "192.168.1.20")
    from blender_facemesh.core.channels import ARKIT_INDEX

    assert f.scores[ARKIT_INDEX["mouthShrugUpper"]] == pytest.approx(0.26)
    assert f.scores[ARKIT_INDEX["noseSneerLeft"]] == pytest.approx(0.21)
    assert f.scores[ARKIT_INDEX["mouthLeft"]] == pytest.approx(0.01)
    assert np.allclose(f.position_cm, [-3.0653415, -10.287084, -65.84072])  # metres in, cm out
    assert f.subject == "iFacialMocap 192.168.1.20"
    lost = decode_ifacialmocap(("trackingStatus-0|" + text).encode())
    assert lost.scores is None
    with pytest.raises(PacketError, match="no '='"):
        decode_ifacialmocap(b"mouthSmile_R-0|eyeLookOut_L-0|")


@pytest.mark.parametrize("text, protocol, host, port, phone", [
    ("livelink", "livelink", "0.0.0.0", None, ""),
    ("livelink:12000", "livelink", "0.0.0.0", 12000, ""),
    ("livelink:192.168.1.5:12000", "livelink", "192.168.1.5", 12000, ""),
    ("ifacialmocap:192.168.1.20", "ifacialmocap", "0.0.0.0", None, "192.168.1.20"),
])
def test_phone_inputs_are_read_from_what_the_user_types(text, protocol, host, port, phone):
    s = parse_phone_input(text)
    assert (s.protocol, s.host, s.port, s.phone) == (protocol, host, port, phone)
    assert parse_phone_input("camera:0") is None and parse_phone_input("clip.mp4") is None
    with pytest.raises(PhoneError, match="1 to 65535"):
        parse_phone_input("livelink:99999")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_track_records_a_phone_stream_into_a_take(tmp_path):
    take = phone_take(90)
    out = tmp_path / "phone.npz"
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "blender_facemesh", "track", f"livelink:127.0.0.1:{port}",
                             "-o", str(out), "--duration", "3", "--quiet"], stderr=subprocess.PIPE, text=True)
    seen = []
    while not any("listening for" in ln for ln in seen) and len(seen) < 20:
        seen.append(proc.stderr.readline())  # notes may come first (an older unfinished recording)
    assert "listening for Live Link Face on UDP port" in seen[-1], seen
    Sender(livelink_packets(take, "Ana"), ("127.0.0.1", port)).start().join()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = Take.load(out)
    assert len(got) == 90 and got.meta["performers"] == {"0": "Ana"} and got.fps == 60
    assert np.array_equal(got.face_track(0)["present"], take.face_track(0)["present"])
    assert "Traceback" not in err


def test_cli_phone_port_in_use_is_one_line(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        r = subprocess.run([sys.executable, "-m", "blender_facemesh", "track",
                            f"livelink:127.0.0.1:{s.getsockname()[1]}", "-o", str(tmp_path / "x.npz")],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "is in use" in errors[0]
    assert not (tmp_path / "x.npz").exists()
    assert not list(tmp_path.glob("*.recording"))  # nothing was recorded: no journal left behind
