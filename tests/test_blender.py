"""The Blender side with real Blender (the bpy module): rig building and baking a real take."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_facemesh.core.channels import ARKIT_NAMES  # noqa: E402
from blender_facemesh.core.filters import FilterSettings  # noqa: E402
from blender_facemesh.core.geometry import rotation_angle_deg  # noqa: E402
from blender_facemesh.core.sources import VideoFileSource  # noqa: E402
from blender_facemesh.core.synthetic import sample_clip_truth  # noqa: E402
from blender_facemesh.core.take import Take  # noqa: E402
from blender_facemesh.core.worker import CaptureWorker, WorkerSettings  # noqa: E402


@pytest.fixture(scope="module")
def addon():
    import blender_facemesh

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_facemesh.register()
    yield blender_facemesh
    blender_facemesh.unregister()


@pytest.fixture(scope="module")
def sample_take(sample_clip, tmp_path_factory):
    take = Take(30.0, 512, 512, source={"kind": "video", "name": str(sample_clip)})
    for s in CaptureWorker(VideoFileSource(sample_clip), WorkerSettings(filters=FilterSettings.off())).start():
        take.append(s)
    return take, take.save(tmp_path_factory.mktemp("take") / "sample.npz")


def _fcurves(id_data):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    adt = id_data.animation_data
    return action_get_channelbag_for_slot(adt.action, adt.action_slot).fcurves


def test_build_rig_creates_armature_and_face(addon, face_model):
    assert bpy.ops.facemesh.build_rig() == {"FINISHED"}
    rig, face = bpy.data.objects["FaceMesh Rig"], bpy.data.objects["FaceMesh Face"]
    assert {b.name for b in rig.data.bones} == {"neck", "head"}
    assert len(face.data.vertices) == 468 and len(face.data.polygons) == 898
    assert len(face.data.uv_layers) == 1
    names = [kb.name for kb in face.data.shape_keys.key_blocks]
    assert names == ["Basis", *ARKIT_NAMES]
    assert face.parent == rig and face.parent_bone == "head"
    # the face looks toward -Y (Blender's front view) with its nose in front
    co = np.array([v.co[:] for v in face.data.vertices])
    assert co[4, 1] == co[:, 1].min()


def test_bake_take_writes_the_take_into_fcurves(addon, sample_take):
    take, path = sample_take
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base, scene.frame_start = 30, 1.0, 1
    assert bpy.ops.facemesh.bake_take(filepath=str(path)) == {"FINISHED"}
    face, rig = bpy.data.objects["FaceMesh Face"], bpy.data.objects["FaceMesh Rig"]
    curves = _fcurves(face.data.shape_keys)
    n = len(take)
    assert len(curves) == 52 and all(len(fc.keyframe_points) == n for fc in curves)
    jaw = curves.find('key_blocks["jawOpen"].value')
    co = np.empty(2 * n, np.float32)
    jaw.keyframe_points.foreach_get("co", co)
    np.testing.assert_allclose(co[0::2], np.arange(1, n + 1))
    np.testing.assert_allclose(co[1::2], take.blendshapes[:, 0, ARKIT_NAMES.index("jawOpen")], atol=1e-5)
    # evaluated through Blender's animation system, not just stored
    k = n // 2
    scene.frame_set(1 + k)
    smile = take.blendshapes[k, 0, ARKIT_NAMES.index("mouthSmileLeft")]
    assert face.data.shape_keys.key_blocks["mouthSmileLeft"].value == pytest.approx(smile, abs=1e-5)
    head = _fcurves(rig)
    assert len(head) == 4 and all(len(fc.keyframe_points) == n for fc in head)
    # re-baking replaces the keys
    assert bpy.ops.facemesh.bake_take(filepath=str(path)) == {"FINISHED"}
    assert len(_fcurves(face.data.shape_keys)) == 52 and len(jaw.id_data.slots) >= 1
    assert all(len(fc.keyframe_points) == n for fc in _fcurves(face.data.shape_keys))


def test_head_bone_follows_the_known_rotation(addon, sample_take, sample_clip):
    take, path = sample_take
    truth = sample_clip_truth(sample_clip.parent)
    rig = bpy.data.objects["FaceMesh Rig"]
    pb = rig.pose.bones["head"]
    rest = truth.rotations[0]
    errs = []
    for k in range(0, len(take), 9):
        bpy.context.scene.frame_set(1 + k)
        got = np.array(pb.rotation_quaternion.to_matrix())
        # the truth's rotation relative to the first frame, in the bone's axes (bone Y = world Z)
        rel = truth.rotations[k] @ rest.T
        c = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]])     # camera -> Blender world
        b = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]])     # bone rest axes in world (columns)
        want = b.T @ (c @ rel @ c.T) @ b
        errs.append(rotation_angle_deg(got, want))
    assert np.mean(errs) < 2.5 and max(errs) < 5.0, errs


def test_bad_takes_and_targets_are_reported_not_raised_inside_blender(addon, sample_take, tmp_path):
    _take, path = sample_take
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00" * 100)
    face = bpy.data.objects["FaceMesh Face"]
    before = len(_fcurves(face.data.shape_keys))
    with pytest.raises(RuntimeError, match="cannot bake"):
        bpy.ops.facemesh.bake_take(filepath=str(junk))
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    with pytest.raises(RuntimeError, match="no shape keys"):
        bpy.ops.facemesh.bake_take(filepath=str(path), face=cube.name, rig="")
    with pytest.raises(RuntimeError, match="no target"):
        bpy.ops.facemesh.bake_take(filepath=str(path), face="nope", rig="nope")
    assert len(_fcurves(face.data.shape_keys)) == before
