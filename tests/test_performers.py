"""Several performers: a two-face clip (two generated test faces side by side, the right one
leaving the picture for a second) drives two characters, live and baked, each with its own keys;
face ids are kept across the gap; assignments can be swapped; phones are performers by name.
Real MediaPipe, real Blender (bpy)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_facemesh.core.capture.landmarker import LandmarkerSettings  # noqa: E402
from blender_facemesh.core.capture.sources import SimulatedLiveSource, VideoFileSource  # noqa: E402
from blender_facemesh.core.solve.smoothing import Smoothing  # noqa: E402
from blender_facemesh.core.testing.synthetic import two_face_clip  # noqa: E402
from blender_facemesh.core.tracking.worker import WorkerSettings, track_take  # noqa: E402


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory, face_model):
    truth = two_face_clip(tmp_path_factory.mktemp("two") / "two.mp4")
    take = track_take(VideoFileSource(truth.path), WorkerSettings(
        landmarker=LandmarkerSettings(num_faces=2), smoothing=Smoothing.off()))
    return truth, take, take.save(truth.path.with_suffix(".npz"))


def _two_rigs(face_model):
    from blender_facemesh.blender.rig import build_rig

    a, _ = build_rig(bpy.context, face_model)
    b, _ = build_rig(bpy.context, face_model)
    b.location.x += 1.0
    return a, b


def _head_turns(scene, rig, frames) -> tuple[float, float]:
    """(range of the head's turn about the vertical, range of its nod) in degrees over the frames,
    from the baked bones as Blender evaluates them."""
    from mathutils import Vector

    from blender_facemesh.blender.character import resolve

    head = resolve(rig).bones.get("head")
    yaw, pitch = [], []
    for f in frames:
        scene.frame_set(f)
        pb = rig.pose.bones[head]
        r = (pb.matrix @ pb.bone.matrix_local.inverted()).to_3x3()
        fwd = r @ Vector((0.0, -1.0, 0.0))  # the character faces -Y
        yaw.append(math.degrees(math.atan2(fwd[0], -fwd[1])))
        pitch.append(math.degrees(math.atan2(fwd[2], math.hypot(fwd[0], fwd[1]))))
    return float(np.ptp(yaw)), float(np.ptp(pitch))


def test_the_two_face_clip_keeps_both_ids_across_the_gap(two_faces):
    truth, take, _ = two_faces
    counts = take.face_counts()
    assert sorted(counts) == [0, 1], counts  # the right face came back as itself, not as a newcomer
    right = take.face_track(1)
    xs = take.landmarks[take.face_ids == 1][:, :468, 0].mean(axis=1)
    assert xs.min() > 0.5 and take.landmarks[take.face_ids == 0][:, :468, 0].mean(axis=1).max() < 0.5
    back = np.flatnonzero(truth.right_present)
    assert right["present"][back].mean() > 0.8 and not right["present"][~truth.right_present].any()


def test_find_performers_then_bake_drives_each_character_and_swap_changes_who(scene, two_faces, face_model):
    truth, take, path = two_faces
    rig_a, rig_b = _two_rigs(face_model)
    s = scene.facemesh
    scene.frame_end = len(take)
    assert bpy.ops.facemesh.performers_find(filepath=str(path)) == {"FINISHED"}
    assert [p.face_id for p in s.performers] == [0, 1]
    assert s.performers[0].frames == len(take) and s.performers[1].frames < len(take)
    for p in s.performers:  # a picture of each face, from the take's video
        img = bpy.data.images.get(p.thumbnail)
        assert img is not None and tuple(img.size) == (64, 64)
    s.performers[0].character, s.performers[1].character = rig_a, rig_b
    assert bpy.ops.facemesh.bake_take(filepath=str(path)) == {"FINISHED"}
    frames = range(1, len(take) + 1)
    a_yaw, a_pitch = _head_turns(scene, rig_a, frames)
    b_yaw, b_pitch = _head_turns(scene, rig_b, frames)
    # the left face turns +-20 deg, the right one nods +-15 deg: each character follows its own
    assert a_yaw > 25 and a_pitch < 8, (a_yaw, a_pitch)
    assert b_pitch > 18 and b_yaw < 8, (b_yaw, b_pitch)
    assert rig_a.animation_data.action == rig_b.animation_data.action  # one take, one action, a slot each
    assert rig_a.animation_data.action_slot != rig_b.animation_data.action_slot

    assert bpy.ops.facemesh.performer_swap(first=0, second=1) == {"FINISHED"}
    assert s.performers[0].character == rig_b and s.performers[1].character == rig_a
    assert bpy.ops.facemesh.bake_take(filepath=str(path)) == {"FINISHED"}
    a_yaw, a_pitch = _head_turns(scene, rig_a, frames)
    b_yaw, b_pitch = _head_turns(scene, rig_b, frames)
    assert a_pitch > 18 and a_yaw < 8 and b_yaw > 25 and b_pitch < 8


def test_two_performers_on_one_character_is_reported(scene, two_faces, face_model):
    _, _, path = two_faces
    rig_a, _ = _two_rigs(face_model)
    s = scene.facemesh
    bpy.ops.facemesh.performers_find(filepath=str(path))
    s.performers[0].character = s.performers[1].character = rig_a
    with pytest.raises(RuntimeError, match="both drive"):
        bpy.ops.facemesh.bake_take(filepath=str(path))


def test_live_two_faces_drive_two_characters(scene, two_faces, face_model):
    from blender_facemesh.blender import live

    truth, _, _ = two_faces
    rig_a, rig_b = _two_rigs(face_model)
    s = scene.facemesh
    s.num_faces = 2
    turned = {}
    live.start(bpy.context, SimulatedLiveSource(truth.path))
    try:
        for _ in range(3000):
            if live.tick() is None:
                break
            if len(s.performers) == 2 and not s.performers[0].character:
                s.performers[0].character, s.performers[1].character = rig_a, rig_b
                live.refresh_drivers()
            for name, rig in (("a", rig_a), ("b", rig_b)):
                q = rig.pose.bones["head"].rotation_quaternion
                turned.setdefault(name, []).append(tuple(q))
            threading.Event().wait(0.01)
    finally:
        live.stop()
    assert [p.face_id for p in s.performers] == [0, 1]
    assert all(p.in_view is not None for p in s.performers)
    a, b = (np.array(turned[k]) for k in ("a", "b"))
    # both heads moved live, each its own way (not copies of one another)
    assert np.ptp(a, axis=0).max() > 0.05 and np.ptp(b, axis=0).max() > 0.05
    assert np.abs(a - b).max() > 0.05


def test_a_live_frame_moving_most_keys_reaches_the_evaluated_mesh(scene, face_model):
    """Phones move every key every frame: those frames are written in bulk (foreach_set), which
    skips RNA's per-key updates; the mesh must still deform."""
    from blender_facemesh.blender import live
    from blender_facemesh.blender.rig import build_rig

    _rig, face = build_rig(bpy.context, face_model)
    for p in face.data.shape_keys.key_blocks["jawOpen"].data:
        p.co.z -= 0.01
    drivers = live._drivers(scene)

    def evaluated():
        obj = face.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mesh = obj.to_mesh()
        out = np.array([v.co[:] for v in mesh.vertices])
        obj.to_mesh_clear()
        return out

    before = evaluated()
    drivers[None].face.apply(np.full(52, 0.5))
    assert face.data.shape_keys.key_blocks["jawOpen"].value == pytest.approx(0.5)
    assert np.abs(evaluated() - before).max() > 0.003


def test_calibration_is_per_performer(scene, two_faces, tmp_path):
    from blender_facemesh.core.solve.calibration import PerformerProfile

    from blender_facemesh.core.take import Take

    _, _, clip_take = two_faces
    take = Take.load(clip_take)  # each face held still for its first 20 frames: a neutral stretch
    for slot in range(take.face_ids.shape[1]):
        take.head_matrix[:20, slot] = take.head_matrix[0, slot]
    path = take.save(tmp_path / "still.npz")
    s = scene.facemesh
    s.performer_path = str(tmp_path / "scene_performer.json")
    bpy.ops.facemesh.performers_find(filepath=str(path))
    s.performer_index = 1
    assert bpy.ops.facemesh.calibrate_neutral(filepath=str(path), mode="NEUTRAL", duration=0.6) == {"FINISHED"}
    own = s.performers[1].performer_path
    assert own and "Face_1" in own and not (tmp_path / "scene_performer.json").exists()
    right = PerformerProfile.load(bpy.path.abspath(own))
    s.performer_index = 0  # the first performer, without a file of its own: the scene's file
    assert bpy.ops.facemesh.calibrate_neutral(filepath=str(path), mode="NEUTRAL", duration=0.6) == {"FINISHED"}
    left = PerformerProfile.load(tmp_path / "scene_performer.json")
    assert not s.performers[0].performer_path
    # each neutral is its own face's: the two faces sit on either side of the picture
    assert not np.allclose(np.asarray(left.head_rest), np.asarray(right.head_rest))
