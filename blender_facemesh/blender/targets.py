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
from .keyframes import take_channelbag, write_curve


class TargetError(FacemeshError, ValueError):
    """A target that cannot take the animation; the message says how to fix it."""


def has_shape_keys(obj) -> bool:
    """A mesh with at least one shape key besides its Basis."""
    keys = obj.data.shape_keys if obj.type == "MESH" else None
    return keys is not None and len(keys.key_blocks) > 1


def require_shape_keys(faces) -> None:
    """TargetError naming the first of ``faces`` that has nothing to drive."""
    for face in faces:
        if not has_shape_keys(face):
            raise TargetError(f"{face.name} has no shape keys: add ARKit-named shape keys or pick another mesh")


class FaceWriter:
    """Mapped scores onto the shape keys of one or more meshes: every mesh that has a key of a
    mapped name gets it (head, teeth, tongue, lashes... move together)."""

    def __init__(self, faces, mapping):
        faces = [faces] if not isinstance(faces, (list, tuple)) else list(faces)
        if not faces:
            raise TargetError("no mesh with shape keys to drive: pick the character (or its face mesh)")
        require_shape_keys(faces)
        self.mapping, self.faces = mapping, faces
        self.compiled = mapping.compile()
        self.names = self.compiled.targets
        present = {n for f in faces for n in f.data.shape_keys.key_blocks.keys()}
        missing = [n for n in self.names if n not in present]
        if missing:
            where = faces[0].name if len(faces) == 1 else f"any of {', '.join(f.name for f in faces)}"
            raise TargetError(f"{where} has no shape key {missing[0]!r} that the mapping names; "
                              "run Auto Map again or edit the mapping")
        self.name = faces[0].name
        # per mesh: (mesh, Key, [(column in the mapped values, key block)])
        self.parts = []
        self._bulk = []  # per part: (columns, their key-block indices, a buffer of every key's value)
        for face in faces:
            keys = face.data.shape_keys
            cols = [(i, keys.key_blocks[n]) for i, n in enumerate(self.names) if n in keys.key_blocks]
            if cols:
                self.parts.append((face, keys, cols))
                index = {n: j for j, n in enumerate(keys.key_blocks.keys())}
                self._bulk.append((np.array([i for i, _ in cols]), np.array([index[b.name] for _, b in cols]),
                                   np.zeros(len(keys.key_blocks), np.float32)))
        self._names = [f.name for f in faces]
        self._stamp = self._signature()
        self.last = [None] * len(self.names)

    @property
    def meshes(self) -> list:
        return [p[0] for p in self.parts]

    def _signature(self):
        sig = []
        for name in self._names:
            obj = bpy.data.objects.get(name)
            keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
            if keys is None:
                return None
            # cheap enough for every tick: key blocks are allocated one by one, so only a removal
            # (the count changes) or a new Key data-block (undo) can free the ones held here
            sig.append((obj.as_pointer(), keys.as_pointer(), len(keys.key_blocks)))
        return tuple(sig)

    def still_valid(self) -> bool:
        """False once Blender freed or moved what this writer holds (deleted, undo, keys edited)."""
        try:
            return self._stamp is not None and self._signature() == self._stamp
        except ReferenceError:
            return False

    def apply(self, scores: np.ndarray) -> None:
        """One frame; a key whose value did not change is not written (RNA writes cost ~2 us)."""
        mapped = self.compiled(np.asarray(scores).reshape(-1)).round(4)
        values = mapped.tolist()
        last = self.last
        changed = [i for i, v in enumerate(values) if v != last[i] and v == v]  # changed, not NaN
        if not changed:
            return
        if len(changed) > _BULK_FROM:  # most keys move (every frame of a phone): one bulk write per mesh
            for (_face, keys, _cols), (cols, blocks, buf) in zip(self.parts, self._bulk):
                keys.key_blocks.foreach_get("value", buf)
                v = mapped[cols]
                ok = v == v
                buf[blocks[ok]] = v[ok]
                keys.key_blocks.foreach_set("value", buf)
                keys.user.update_tag()  # foreach_set skips the per-key update: tell the depsgraph once
        else:
            todo = set(changed)
            for _face, _keys, cols in self.parts:
                for i, block in cols:
                    if i in todo:
                        block.value = values[i]
        for i in changed:
            last[i] = values[i]

    def bake(self, frames: np.ndarray, scores: np.ndarray, action) -> int:
        """Into ``action`` (the take's), one slot per mesh's shape keys."""
        values = self.compiled(scores)
        n = 0
        for face, keys, cols in self.parts:
            bag = take_channelbag(keys, action)
            for i, _block in cols:
                path = f'key_blocks["{bpy.utils.escape_identifier(self.names[i])}"].value'
                n += write_curve(bag, path, 0, frames, values[:, i], "Shape Keys")
        return n


_BULK_FROM = 12  # changed keys past which foreach_set beats one RNA write each


def _orthonormal(m: np.ndarray) -> np.ndarray:
    u, _s, vt = np.linalg.svd(m)
    r = u @ vt
    return r if np.linalg.det(r) > 0 else u @ np.diag([1.0, 1.0, -1.0]) @ vt


def _unrotated(pb, driven: set) -> np.ndarray:
    """Armature-space matrix of a pose bone as it would stand with none of the driven bones
    rotated: its nearest undriven ancestor as posed now, the rest of the chain at rest (the
    neck's last preview pose must not tilt the head's frame)."""
    anc = pb.parent
    while anc is not None and anc.name in driven:
        anc = anc.parent
    local = np.array(pb.bone.matrix_local)
    if anc is None:
        return local
    return np.array(anc.matrix) @ np.linalg.inv(np.array(anc.bone.matrix_local)) @ local


class RigWriter:
    """Head, neck and eye rotations onto an armature's pose bones. Rotations come in the
    character's own facing frame (left, back, up; as core.bake computes them for a character
    facing -Y) and ``facing`` (3x3, columns in world axes) says where that frame is in the
    world: so the armature object's rotation, the armature's internal axes (Y-up FBX data) and
    the bones' rolls do not change what the viewer sees."""

    def __init__(self, rig, bones: dict, facing=None):
        if rig.type != "ARMATURE":
            raise TargetError(f"{rig.name} is not an armature")
        if not bones.get("head") or bones["head"] not in rig.pose.bones:
            raise TargetError(f"{rig.name} has no bone named {bones.get('head')!r}: set the head bone")
        self.rig, self.name = rig, rig.name
        self.bones = {role: name for role, name in bones.items() if name and name in rig.pose.bones}
        facing = np.eye(3) if facing is None else np.asarray(facing, np.float64)
        mw = np.array(rig.matrix_world)
        # rest[role]: the bone's world orientation with no rotation of its own (its parents as they
        # stand now), in the facing frame; move[role]: facing-frame metres -> the bone's location
        self.rest, self.move, self._rest_q, self._pose_bones = {}, {}, {}, {}
        driven = set(self.bones.values())
        for role, name in self.bones.items():
            pb = rig.pose.bones[name]
            c = mw @ _unrotated(pb, driven)
            self.rest[role] = r = facing.T @ _orthonormal(c[:3, :3])
            self.move[role] = np.linalg.inv(c[:3, :3]) @ facing
            self._rest_q[role] = Matrix(r.tolist()).to_quaternion()
            self._pose_bones[role] = pb
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
                pb.location = (self.move[role] @ loc[0]).tolist()

    def bake(self, frames: np.ndarray, channels: dict, action) -> int:
        bag = take_channelbag(self.rig, action)
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
                local = loc @ self.move[role].T
                for i in range(3):
                    n += write_curve(bag, f"{base}.location", i, frames, local[:, i], name)
        return n
