"""The character the user picked, and everything found from it: the meshes with shape keys,
the armature, its head, neck and eye bones, which keys deform anything, and which way the
character faces in the world.

The user picks one object (``scene.facemesh.character``): an armature, a mesh, or an empty
above the character's meshes. Without a pick the older per-target fields and then the
capture rig are used, so existing files keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from ..core.animation.character import BoneInfo, FoundBones, find_bones
from .rig import FACE_NAME, RIG_NAME
from .targets import has_shape_keys

MOVE_EPS = 1e-5  # metres (in the mesh's own units): a key moving no vertex further is empty


@dataclass
class Character:
    root: object                       # what the user picked (or the fallback)
    rig: object | None = None          # the armature, if any
    meshes: list = field(default_factory=list)   # mesh objects with shape keys, the main one first
    bones: FoundBones = field(default_factory=FoundBones)
    moving: set = field(default_factory=set)     # names of keys that deform something on any mesh
    facing: np.ndarray = field(default_factory=lambda: np.eye(3))  # columns: left, back, up (world)
    facing_from: str = "world"         # "eyes", "face" (the keyed vertices' normals) or "world"
    face_center: np.ndarray | None = None  # world, the middle of the keyed vertices
    face_height: float = 0.0           # metres, the keyed vertices' extent along up

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def key_names(self) -> list[str]:
        """Every mesh's key names, in order of first appearance (the Basis keys left out)."""
        names = {}
        for m in self.meshes:
            keys = m.data.shape_keys
            for kb in list(keys.key_blocks)[1:] if keys is not None else ():
                names.setdefault(kb.name, None)
        return list(names)

    def summary(self) -> str:
        """One line for reports: what the add-on will drive."""
        parts = []
        if self.meshes:
            parts.append(f"{len(self.meshes)} mesh{'es' if len(self.meshes) != 1 else ''} with shape keys "
                         f"({', '.join(m.name for m in self.meshes[:4])}{'...' if len(self.meshes) > 4 else ''})")
        if self.rig is not None:
            found = ", ".join(f"{r.replace('_', ' ')} {n}" for r, n in self.bones.bones.items())
            parts.append(f"armature {self.rig.name}: {found or 'no head bone found'}")
        return f"{self.name}: " + ("; ".join(parts) if parts else "nothing to drive")


def _descendants(obj):
    out, todo = [], list(obj.children)
    while todo:
        o = todo.pop(0)
        out.append(o)
        todo.extend(o.children)
    return out


def _armature_of(obj):
    """The armature a mesh is bound to: its Armature modifier's, else an armature parent."""
    for m in getattr(obj, "modifiers", ()):
        if m.type == "ARMATURE" and m.object is not None:
            return m.object
    p = obj.parent
    while p is not None:
        if p.type == "ARMATURE":
            return p
        p = p.parent
    return None


def bound_meshes(rig) -> list:
    """Meshes with shape keys that the armature moves: modifier users and descendants."""
    found = [o for o in _descendants(rig) if o.type == "MESH"]
    found += [o for o in bpy.data.objects if o.type == "MESH" and o not in found and _armature_of(o) == rig]
    return [o for o in found if has_shape_keys(o)]


def _main_first(meshes: list) -> list:
    """The mesh with the most keys first: it is the one the panel names."""
    return sorted(meshes, key=lambda m: -len(m.data.shape_keys.key_blocks))


def pick(scene) -> Character | None:
    """The scene's character, resolved now (cheap enough for a bake or a capture start; the
    panel caches it)."""
    s = scene.facemesh
    overrides = {"head": s.head_bone, "neck": s.neck_bone, "eye_left": s.eye_left_bone,
                 "eye_right": s.eye_right_bone}
    return resolve(getattr(s, "character", None), s.target_rig, s.target_mesh, overrides, fallback=True)


def resolve(root, target_rig=None, target_mesh=None, bone_overrides: dict | None = None,
            fallback: bool = False) -> Character | None:
    """A character from the object the user picked (its armature, mesh or the empty above its
    meshes): its keyed meshes, armature and bones. ``target_*`` override what is found; with
    ``fallback``, the capture rig stands in when nothing is picked. Another performer's
    character is resolved the same way, without the scene's overrides."""
    rig, meshes = None, []
    if root is not None:
        if root.type == "ARMATURE":
            rig = root
        elif root.type == "MESH":
            rig = _armature_of(root)
            meshes = [root] if has_shape_keys(root) else []
        if rig is not None:
            meshes += [m for m in bound_meshes(rig) if m not in meshes]
        meshes += [o for o in _descendants(root) if o.type == "MESH" and has_shape_keys(o) and o not in meshes]
    # the per-target fields override (and, without a character, they are the character)
    if target_rig is not None and target_rig.type == "ARMATURE":
        rig = target_rig
    if target_mesh is not None and target_mesh.type == "MESH":
        meshes = [target_mesh] + [m for m in meshes if m is not target_mesh]
    if fallback and root is None and not meshes and rig is None:
        face, fallback_rig = bpy.data.objects.get(FACE_NAME), bpy.data.objects.get(RIG_NAME)
        meshes = [face] if face is not None and face.type == "MESH" else []
        rig = fallback_rig if fallback_rig is not None and fallback_rig.type == "ARMATURE" else None
    if root is None and not meshes and rig is None:
        return None
    if root is None:
        root = target_rig if target_rig is not None else (meshes[0] if meshes else rig)
    main = [m for m in meshes if m is target_mesh]
    ch = Character(root, rig, main + _main_first([m for m in meshes if m not in main]))
    if rig is not None:
        ch.bones = find_bones([BoneInfo(b.name, b.parent.name if b.parent else None) for b in rig.data.bones],
                              bone_overrides or {})
    _look(ch)
    return ch


def _key_moves(mesh) -> tuple[set, np.ndarray]:
    """(names of keys that move a vertex, how far the keys move each vertex at most)."""
    keys = mesh.data.shape_keys
    n = len(mesh.data.vertices)
    basis = np.empty(3 * n, np.float32)
    keys.reference_key.data.foreach_get("co", basis)
    co = np.empty_like(basis)
    moving, amount = set(), np.zeros(n)
    for kb in list(keys.key_blocks)[1:]:
        if kb.mute:
            continue
        kb.data.foreach_get("co", co)
        d = np.abs(co - basis).reshape(n, 3).max(axis=1)
        if (d > MOVE_EPS).any():
            moving.add(kb.name)
            np.maximum(amount, d, out=amount)
    return moving, amount


def _world_points(mesh, index: np.ndarray):
    """World positions and normals of some vertices, as Blender shows them (armature deform and
    all); the undeformed mesh when a modifier changes the vertex count."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    ev = mesh.evaluated_get(depsgraph)
    data = ev.data if len(ev.data.vertices) == len(mesh.data.vertices) else mesh.data
    n = len(data.vertices)
    co = np.empty(3 * n, np.float32)
    data.vertices.foreach_get("co", co)
    nor = np.empty(3 * n, np.float32)
    data.vertices.foreach_get("normal", nor)
    m = np.array(ev.matrix_world if data is ev.data else mesh.matrix_world)
    p = co.reshape(n, 3)[index] @ m[:3, :3].T + m[:3, 3]
    nr = nor.reshape(n, 3)[index] @ np.linalg.inv(m[:3, :3])  # normals transform by the inverse transpose
    return p, nr


def _look(ch: Character) -> None:
    """Which keys move, where the face is and which way it faces (world)."""
    up = np.array([0.0, 0.0, 1.0])
    points, normals = [], []
    for mesh in ch.meshes:
        if not has_shape_keys(mesh):
            continue
        moving, amount = _key_moves(mesh)
        ch.moving |= moving
        idx = np.flatnonzero(amount > MOVE_EPS)
        if len(idx):
            p, nr = _world_points(mesh, idx)
            nr /= np.maximum(np.linalg.norm(nr, axis=1, keepdims=True), 1e-12)
            points.append(p)
            normals.append(nr * (amount[idx] / amount[idx].max())[:, None])  # what moves most is the face's front
    left = None
    eyes = [ch.bones.get("eye_left"), ch.bones.get("eye_right")]
    if ch.rig is not None and all(eyes):
        mw = np.array(ch.rig.matrix_world)
        pos = [mw[:3, :3] @ np.array(ch.rig.pose.bones[e].head) + mw[:3, 3] for e in eyes]
        side = pos[0] - pos[1]
        side -= side.dot(up) * up
        if np.linalg.norm(side) > 1e-6:
            left, ch.facing_from = side / np.linalg.norm(side), "eyes"
    if points:
        p = np.concatenate(points)
        ch.face_center = np.median(p, axis=0)
        h = p @ up
        ch.face_height = float(np.percentile(h, 98) - np.percentile(h, 2))
        if left is None:
            fwd = np.concatenate(normals).mean(axis=0)
            fwd -= fwd.dot(up) * up
            if np.linalg.norm(fwd) > 0.02:
                fwd /= np.linalg.norm(fwd)
                left, ch.facing_from = np.cross(up, fwd), "face"
    if left is not None:
        ch.facing = np.column_stack([left, np.cross(up, left), up])  # left, back, up


def forward(ch: Character) -> np.ndarray:
    """The world direction the character looks in."""
    return -ch.facing[:, 1]
