"""The user's targets as writers: a face mesh's shape keys and an armature's bones.

Both the live preview (one frame per timer tick) and baking (whole curves) go through these,
so live and baked results agree. Everything is resolved once (key blocks, pose bones, rest
axes) because the live path runs every tick.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix, Quaternion

from ..core.errors import FacemeshError
from ..core.rotations import matrix_to_quaternion, quaternion_to_matrix
from .keyframes import ensure_channelbag, write_curve


class TargetError(FacemeshError, ValueError):
    """A target that cannot take the animation; the message says how to fix it."""


class FaceWriter:
    """Mapped scores onto a mesh's shape keys."""

    def __init__(self, face, mapping):
        keys = face.data.shape_keys if face.type == "MESH" else None
        if keys is None or len(keys.key_blocks) < 2:
            raise TargetError(f"{face.name} has no shape keys: add ARKit-named shape keys or pick another mesh")
        self.face, self.mapping, self.keys, self.name = face, mapping, keys, face.name
        self.compiled = mapping.compile()
        self.names = self.compiled.targets
        missing = [n for n in self.names if n not in keys.key_blocks]
        if missing:
            raise TargetError(f"{face.name} has no shape key {missing[0]!r} that the mapping names; "
                              "run Auto Map again or edit the mapping")
        self.blocks = [keys.key_blocks[n] for n in self.names]
        self._stamp = self._signature()

        self.last = [None] * len(self.blocks)

    def _signature(self):
        obj = bpy.data.objects.get(self.name)
        keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
        if keys is None:
            return None
        # cheap enough for every tick: key blocks are allocated one by one, so only a removal
        # (the count changes) or a new Key data-block (undo) can free the ones held here
        return obj.as_pointer(), keys.as_pointer(), len(keys.key_blocks)

    def still_valid(self) -> bool:
        """False once Blender freed or moved what this writer holds (deleted, undo, keys edited)."""
        try:
            return self._stamp is not None and self._signature() == self._stamp
        except ReferenceError:
            return False

    def apply(self, scores: np.ndarray) -> None:
        """One frame; a key whose value did not change is not written (RNA writes cost ~2 us)."""
        values = self.compiled(np.asarray(scores).reshape(-1)).round(4).tolist()
        last = self.last
        for i, v in enumerate(values):
            if v != last[i] and v == v:  # changed, not NaN
                self.blocks[i].value = last[i] = v

    def bake(self, frames: np.ndarray, scores: np.ndarray, action_name: str) -> int:
        names, values = self.mapping.apply(scores)
        bag = ensure_channelbag(self.keys, f"{action_name} (shape keys)")
        n = 0
        for name, col in zip(names, values.T):
            path = f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'
            n += write_curve(bag, path, 0, frames, col, "Shape Keys")
        return n


class RigWriter:
    """Head, neck and eye rotations onto an armature's pose bones. Rotations come in the
    character's axes (armature space: -Y forward, +Z up), as core.bake computes them."""

    def __init__(self, rig, bones: dict):
        if rig.type != "ARMATURE":
            raise TargetError(f"{rig.name} is not an armature")
        if not bones.get("head") or bones["head"] not in rig.pose.bones:
            raise TargetError(f"{rig.name} has no bone named {bones.get('head')!r}: set the head bone")
        self.rig, self.name = rig, rig.name
        self.bones = {role: name for role, name in bones.items() if name and name in rig.pose.bones}
        # armature space, not world: the rotation is the character's own (facing its -Y), so a
        # character turned or placed anywhere in the scene nods and rolls the right way
        self.rest, self._rest_q, self._pose_bones = {}, {}, {}
        for role, name in self.bones.items():
            r = np.array(rig.data.bones[name].matrix_local.to_3x3())
            self.rest[role] = r = r / np.linalg.norm(r, axis=0, keepdims=True)
            self._rest_q[role] = Matrix(r.tolist()).to_quaternion()
            self._pose_bones[role] = pb = rig.pose.bones[name]
            pb.rotation_mode = "QUATERNION"
        self._stamp = self._signature()

    def _signature(self):
        obj = bpy.data.objects.get(self.name)
        if obj is None or obj.type != "ARMATURE":
            return None
        head = obj.pose.bones.get(self.bones["head"])
        return obj.as_pointer(), obj.pose.as_pointer(), len(obj.pose.bones), head.as_pointer() if head else 0

    def still_valid(self) -> bool:
        try:
            return self._stamp is not None and self._signature() == self._stamp
        except ReferenceError:
            return False

    @property
    def has_neck(self) -> bool:
        return "neck" in self.bones

    def _local(self, role: str, quats: np.ndarray) -> np.ndarray:
        r = self.rest[role]
        out = np.empty_like(quats)
        for i, q in enumerate(quats):
            out[i] = np.nan if np.isnan(q).any() else matrix_to_quaternion(r.T @ quaternion_to_matrix(q) @ r)
        return out

    def apply(self, channels: dict) -> None:
        """One frame: ``channels`` as from core.bake.rig_channels with N = 1. Uses mathutils
        (C) rather than numpy: this runs every timer tick."""
        for role, (quats, loc) in channels.items():
            pb = self._pose_bones.get(role)
            q = quats[0].tolist()
            if pb is None or q[0] != q[0]:
                continue
            rest = self._rest_q[role]
            pb.rotation_quaternion = rest.conjugated() @ Quaternion(q) @ rest
            if loc is not None:
                pb.location = (self.rest[role].T @ loc[0]).tolist()

    def bake(self, frames: np.ndarray, channels: dict, action_name: str) -> int:
        bag = ensure_channelbag(self.rig, f"{action_name} (pose)")
        n = 0
        for role, (quats, loc) in channels.items():
            if role not in self.bones:
                continue
            name = self.bones[role]
            base = f'pose.bones["{bpy.utils.escape_identifier(name)}"]'
            q = self._local(role, quats)
            for i in range(4):
                n += write_curve(bag, f"{base}.rotation_quaternion", i, frames, q[:, i], name)
            if loc is not None:
                local = loc @ self.rest[role]  # rows: rest.T @ loc
                for i in range(3):
                    n += write_curve(bag, f"{base}.location", i, frames, local[:, i], name)
        return n
