"""Write a take onto the capture rig (or any mesh with ARKit-named shape keys and a head bone)."""

from __future__ import annotations

import bpy
import numpy as np

from ..core.bake import take_to_curves
from ..core.channels import ARKIT_NAMES
from ..core.geometry import matrix_to_quaternion, quaternion_to_matrix
from .keyframes import ensure_channelbag, write_curve


def bone_local_quaternions(rig, bone_name: str, world_quats: np.ndarray) -> np.ndarray:
    """Rotations given in Blender world axes -> the pose bone's own rest axes."""
    rest = np.array((rig.matrix_world.to_3x3() @ rig.data.bones[bone_name].matrix_local.to_3x3()))
    rest /= np.linalg.norm(rest, axis=0, keepdims=True)
    out = np.empty_like(world_quats)
    for i, q in enumerate(world_quats):
        out[i] = np.nan if np.isnan(q).any() else matrix_to_quaternion(rest.T @ quaternion_to_matrix(q) @ rest)
    return out


def bake_take(context, take, face=None, rig=None, head_bone: str = "head", face_id=None,
              missing: str = "HOLD", action_name: str = "FaceMesh Take") -> dict:
    """Bulk-write the take's keys; returns counts for the report. Raises ValueError on bad targets."""
    scene = context.scene
    fps = scene.render.fps / scene.render.fps_base
    curves = take_to_curves(take, fps, scene.frame_start, face_id, missing)
    written = {"shape_keys": 0, "head": 0, "frames": len(curves.frames)}
    if face is not None:
        keys = face.data.shape_keys if face.type == "MESH" else None
        if keys is None:
            raise ValueError(f"{face.name} has no shape keys to animate")
        names = {kb.name for kb in keys.key_blocks}
        bag = ensure_channelbag(keys, f"{action_name} (shape keys)")
        for c, name in enumerate(ARKIT_NAMES):
            if name in names:
                path = f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'
                written["shape_keys"] += write_curve(bag, path, 0, curves.frames, curves.blendshapes[:, c], "Shape Keys")
    if rig is not None:
        if head_bone not in rig.pose.bones:
            raise ValueError(f"{rig.name} has no bone named {head_bone!r}")
        rig.pose.bones[head_bone].rotation_mode = "QUATERNION"
        q = bone_local_quaternions(rig, head_bone, curves.head_quaternion)
        bag = ensure_channelbag(rig, f"{action_name} (head)")
        path = f'pose.bones["{bpy.utils.escape_identifier(head_bone)}"].rotation_quaternion'
        for i in range(4):
            written["head"] += write_curve(bag, path, i, curves.frames, q[:, i], head_bone)
    return written
