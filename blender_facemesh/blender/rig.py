"""The capture rig: an armature (neck, head) and the 468-vertex canonical face with ARKit shape keys."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..core.camera import CAMERA_TO_BLENDER
from ..core.channels import ARKIT_NAMES

RIG_NAME = "FaceMesh Rig"
FACE_NAME = "FaceMesh Face"
NECK, HEAD, EYE_L, EYE_R = "neck", "head", "eye.L", "eye.R"
HEAD_BASE_Z = 1.55  # metres: a standing adult's neck top, so the rig sits where characters do
FACE_OFFSET_Z = 0.08  # the canonical origin (head centre, behind the eyes) above the head bone's base
# eye corners in the canonical mesh (performer's left eye = +x, like the character's left)
EYE_CORNERS = {EYE_L: (362, 263), EYE_R: (33, 133)}
EYEBALL_DEPTH = 0.012  # metres behind the corners' midpoint: an adult eyeball's centre


def canonical_to_blender(vertices_cm: np.ndarray) -> np.ndarray:
    """Canonical face (cm, +Y up, +Z toward the viewer) -> Blender metres (+Z up, facing -Y)."""
    return (np.asarray(vertices_cm) @ CAMERA_TO_BLENDER.T) * 0.01


def build_rig(context, model) -> tuple[bpy.types.Object, bpy.types.Object]:
    """Create the armature (neck, head, eyes) and the face mesh parented to the head bone;
    returns (rig, face)."""
    scene = context.scene
    verts = canonical_to_blender(model.canonical_vertices)
    face_origin = np.array([0.0, 0.0, HEAD_BASE_Z + FACE_OFFSET_Z])
    arm = bpy.data.armatures.new(RIG_NAME)
    rig = bpy.data.objects.new(RIG_NAME, arm)
    scene.collection.objects.link(rig)
    # edit bones need edit mode on the armature object
    view_layer = context.view_layer
    view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    neck = arm.edit_bones.new(NECK)
    neck.head, neck.tail = (0, 0, HEAD_BASE_Z - 0.12), (0, 0, HEAD_BASE_Z)
    head = arm.edit_bones.new(HEAD)
    head.head, head.tail = (0, 0, HEAD_BASE_Z), (0, 0, HEAD_BASE_Z + 0.2)
    head.parent = neck
    head.use_connect = True
    for name, (a, b) in EYE_CORNERS.items():
        centre = face_origin + (verts[a] + verts[b]) / 2 + (0.0, EYEBALL_DEPTH, 0.0)
        eye = arm.edit_bones.new(name)
        eye.head, eye.tail = tuple(centre), tuple(centre + (0.0, -0.02, 0.0))
        eye.parent = head
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in rig.pose.bones:
        pb.rotation_mode = "QUATERNION"

    mesh = bpy.data.meshes.new(FACE_NAME)
    mesh.from_pydata([tuple(v) for v in verts], [], [tuple(int(i) for i in t) for t in model.triangles])
    uv = mesh.uv_layers.new(name="UVMap")
    loop_vi = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loop_vi)
    uv.data.foreach_set("uv", model.uvs[loop_vi].astype(np.float32).ravel())
    mesh.update()
    face = bpy.data.objects.new(FACE_NAME, mesh)
    scene.collection.objects.link(face)
    face.shape_key_add(name="Basis", from_mix=False)
    for name in ARKIT_NAMES:
        face.shape_key_add(name=name, from_mix=False)
    # parent to the head bone and place the face on it: the canonical origin (the head's centre,
    # about 4 cm behind the eyes) sits FACE_OFFSET_Z above the head bone's base
    face.parent = rig
    face.parent_type = "BONE"
    face.parent_bone = HEAD
    context.view_layer.update()
    face.matrix_world = Matrix.Translation(tuple(face_origin))
    return rig, face
