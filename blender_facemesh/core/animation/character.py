"""Finding a character's head, neck and eye bones by name and by hierarchy (no bpy here).

Rigs name these bones in a dozen dialects: Rigify (`head`, `DEF-spine.006`, `ORG-eye.L`),
Mixamo (`mixamorig:Head`), Ready Player Me / Unity humanoid (`Head`, `LeftEye`), VRoid
(`J_Bip_C_Head`, `J_Adj_L_FaceEye`), CC3/CC4 (`CC_Base_Head`, `CC_Base_L_Eye`), Daz Genesis
(`head`, `neckUpper`, `lEye`), Unreal / MetaHuman (`head`, `neck_01`, `FACIAL_L_Eye`), glTF
exports with a suffix (`head_Armature`). A bone's name is reduced to its words (prefixes and
suffixes of those dialects removed, side words split off), then the hierarchy decides: the
eyes are below the head, the neck is above it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROLES = ("head", "neck", "eye_left", "eye_right")

# dialect prefixes/suffixes that carry no meaning for the role (lower-case, matched at the ends)
_PREFIXES = ("mixamorig", "cc_base_", "j_bip_c_", "j_bip_", "j_adj_", "j_sec_", "bip01_", "bip001_",
             "bip01 ", "bip001 ", "def-", "org-", "mch-", "facial_", "rig_", "b_", "bn_", "jnt_", "c_")
_SUFFIXES = ("_armature", "_jnt", "_bone", "_def", "_bind")
_PREFERENCE = ("", "org-", "def-", "mch-")  # a control bone, then what Rigify's layers call it
_SIDE = {"l": "L", "left": "L", "r": "R", "right": "R"}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_NOT_EYE = {"lid", "lids", "brow", "brows", "lash", "lashes", "target", "socket", "lidup", "liddown",
            "upper", "lower", "blink", "look", "aim", "ctrl", "control", "track"}
_NOT_HEAD = {"top", "end", "nub", "tip", "tail", "null", "ctrl", "control", "mch", "tweak", "ik", "fk"}


@dataclass
class BoneInfo:
    name: str
    parent: str | None = None


@dataclass
class FoundBones:
    """What was found, and why, for the panel and the first bake's report."""
    bones: dict = field(default_factory=dict)      # role -> bone name
    how: dict = field(default_factory=dict)        # role -> "name" | "hierarchy"

    def get(self, role: str) -> str | None:
        return self.bones.get(role)


def bone_words(name: str) -> tuple[list[str], str, str]:
    """(words, side "L"/"R"/"", the dialect prefix that was removed)."""
    raw = str(name).strip()
    low = raw.lower()
    if ":" in raw:  # Maya/Mixamo namespaces: mixamorig:Head, mixamorig1:Head
        raw = raw.rsplit(":", 1)[1]
        low = raw.lower()
    prefix = ""
    for p in _PREFIXES:
        if low.startswith(p) and len(low) > len(p):
            prefix, raw, low = p, raw[len(p):], low[len(p):]
            break
    for s in _SUFFIXES:
        if low.endswith(s) and len(low) > len(s):
            raw, low = raw[: -len(s)], low[: -len(s)]
    words = [w.lower() for part in re.split(r"[\s_.\-:|]+", raw) for w in _WORD.findall(part)]
    side = ""
    for i in (len(words) - 1, 0):
        if len(words) > 1 and words[i] in _SIDE:
            side = _SIDE[words.pop(i)]
            break
    if not side:  # VRoid's J_Adj_L_FaceEye, CC's L_Eye after the prefix
        for i, w in enumerate(words[:-1]):
            if w in _SIDE:
                side = _SIDE[words.pop(i)]
                break
    return words, side, prefix


def _role_of(name: str) -> tuple[str | None, int]:
    """The role a bone's name suggests, and a rank (lower is better) among same-role names."""
    words, side, prefix = bone_words(name)
    rank = _PREFERENCE.index(prefix) if prefix in _PREFERENCE else 1
    if not words:
        return None, 0
    joined = "".join(words)
    if words[0] == "head" and not (set(words[1:]) & _NOT_HEAD) and len(words) <= 2:
        return "head", rank + (len(words) - 1) * 2
    if words[0] == "neck" and not (set(words[1:]) & _NOT_HEAD):
        return "neck", rank
    if side and ("eye" in words or joined in ("eye", "faceeye", "eyeball")) and not (set(words) & _NOT_EYE):
        return ("eye_left" if side == "L" else "eye_right"), rank + (0 if joined in ("eye", "eyeball") else 1)
    return None, 0


def find_bones(bones: list[BoneInfo], overrides: dict | None = None) -> FoundBones:
    """Head, neck and eyes of a rig. ``overrides``: role -> bone name the user set (kept when
    the bone exists; an empty value means automatic)."""
    by_name = {b.name: b for b in bones}
    found = FoundBones()
    for role, name in (overrides or {}).items():
        if name and name in by_name:
            found.bones[role], found.how[role] = name, "set"

    candidates: dict[str, list[tuple[int, int, str]]] = {r: [] for r in ROLES}
    for order, b in enumerate(bones):
        role, rank = _role_of(b.name)
        if role:
            candidates[role].append((rank, order, b.name))

    def ancestors(name):
        seen = []
        p = by_name[name].parent if name in by_name else None
        while p and p in by_name and p not in seen:
            seen.append(p)
            p = by_name[p].parent
        return seen

    if "head" not in found.bones and candidates["head"]:
        # a head with eyes below it beats one without (Rigify's ORG/DEF copies have none)
        def score(c):
            below = sum(c[2] in ancestors(e[2]) for r in ("eye_left", "eye_right") for e in candidates[r])
            return (-below, c[0], c[1])
        found.bones["head"], found.how["head"] = min(candidates["head"], key=score)[2], "name"
    head = found.bones.get("head")
    for role in ("eye_left", "eye_right"):
        if role in found.bones:
            continue
        cands = sorted(candidates[role])
        if head:  # eyes are below the head
            cands = [c for c in cands if head in ancestors(c[2])]
        if cands:
            found.bones[role], found.how[role] = cands[0][2], "name"
    if "neck" not in found.bones and head:
        up = ancestors(head)
        necks = [c for c in sorted(candidates["neck"]) if c[2] in up]
        if necks:  # the neck bone nearest the head (neck_02 over neck_01, neckUpper over neckLower)
            found.bones["neck"] = min(necks, key=lambda c: up.index(c[2]))[2]
            found.how["neck"] = "name"
        elif up:
            found.bones["neck"], found.how["neck"] = up[0], "hierarchy"
    return found
