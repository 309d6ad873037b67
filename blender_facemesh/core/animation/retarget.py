"""Retargeting: our 52 ARKit-ordered scores onto a character's own shape keys, and eye angles.

Characters name their shape keys in many dialects (ARKit, Character Creator, VRM/VRoid, Ready
Player Me). Matching goes through `normalize_name`, so case, separators and the spelling of the
side (Left/_L/.L/L_) do not matter, then through per-dialect candidate lists (`PRESETS`). A
`Mapping` is a plain list of source -> target pairs with gain/offset/clamp, many-to-many, saved
as JSON so a user's hand-tuned mapping survives between sessions. Never imports bpy.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import FacemeshError
from ..channels import ARKIT_INDEX, ARKIT_NAMES
from ..files import read_json, write_text_atomic

FORMAT = "blender_facemesh.mapping"
VERSION = 1


class MappingError(FacemeshError, ValueError):
    """A mapping that cannot be built or read; the message is one line naming the problem."""


# --- names ---------------------------------------------------------------------------------------

_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}
_INDEX_PREFIX = re.compile(r"^[A-Za-z]?\d+[\s_.\-]+")  # CC's "A01_Brow_Inner_Up" numbering
_SEP = re.compile(r"[\s_.\-:|]+")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_A-Za-z]+")


def normalize_name(name: str) -> str:
    """A matching key: lower-case words joined, plus "|L"/"|R" for a side word at either end.

    eyeBlinkLeft, EyeBlink_L, Eye_Blink_L, eye_blink_left, "eyeBlink.L", "L_eyeBlink" all give
    "eyeblink|L". A side word counts only at the start or end, so ARKit's jawLeft/mouthLeft
    (directions, not sides) become "jaw|L"/"mouth|L" -- and Jaw_L, JawLeft match them, because
    both sides of every comparison go through this same function. A namespace such as Maya's
    "blendShape1.eyeBlinkLeft" is dropped when the part after the last dot is a real word.
    """
    name = str(name).strip()
    *head, tail = re.split(r"[.:|]", name)
    if head and len(re.findall(r"[^\W\d_]", tail)) >= 2 and tail.lower() not in _SIDES:
        name = tail
    name = _INDEX_PREFIX.sub("", name)
    words = [w.lower() for part in _SEP.split(name) for w in _WORD.findall(part)]
    side = ""
    if len(words) > 1 and words[-1] in _SIDES:
        side = _SIDES[words.pop()]
    elif len(words) > 1 and words[0] in _SIDES:
        side = _SIDES[words.pop(0)]
    return "".join(words) + (f"|{side}" if side else "")


def _is_basis(name: str) -> bool:
    return normalize_name(name) in ("basis", "")


# --- presets -------------------------------------------------------------------------------------
# PRESETS[preset][arkit_name] is an ordered list of candidates; a candidate is one target name or
# a tuple of names driven together (CC splits mouthFunnel into four keys). The first candidate
# the character has wins, so a fallback such as RPM's mouthOpen is used only where jawOpen is
# missing: driving both would open the mouth twice.

def _both(src: str, *cands) -> dict:
    """Left and Right entries from one template: {Side} = Left/Right, {s} = L/R, {o} = the
    opposite letter, {OSide} = the opposite word."""
    out = {}
    for side, s, o, oside in (("Left", "L", "R", "Right"), ("Right", "R", "L", "Left")):
        fmt = lambda c: c.format(Side=side, s=s, o=o, OSide=oside)  # noqa: E731
        out[src.format(Side=side)] = [tuple(map(fmt, c)) if isinstance(c, tuple) else fmt(c)
                                      for c in cands]
    return out


def _lr(fmt: str) -> tuple:
    return (fmt.format(s="L"), fmt.format(s="R"))


_CC = {  # Character Creator 4 "Extended" facial profile
    **_both("browDown{Side}", "Brow_Drop_{s}"),
    "browInnerUp": [_lr("Brow_Raise_Inner_{s}")],
    **_both("browOuterUp{Side}", "Brow_Raise_Outer_{s}"),
    "cheekPuff": [_lr("Cheek_Puff_{s}")],
    **_both("cheekSquint{Side}", "Cheek_Raise_{s}"),
    **_both("eyeBlink{Side}", "Eye_Blink_{s}"),
    **_both("eyeLookDown{Side}", "Eye_{s}_Look_Down"),
    **_both("eyeLookUp{Side}", "Eye_{s}_Look_Up"),
    **_both("eyeLookIn{Side}", "Eye_{s}_Look_{o}"),
    **_both("eyeLookOut{Side}", "Eye_{s}_Look_{s}"),
    **_both("eyeSquint{Side}", "Eye_Squint_{s}"),
    **_both("eyeWide{Side}", "Eye_Wide_{s}"),
    "jawForward": ["Jaw_Forward"], "jawLeft": ["Jaw_L"], "jawRight": ["Jaw_R"],
    "jawOpen": ["Jaw_Open"], "mouthClose": ["Mouth_Close"],
    "mouthFunnel": [_lr("Mouth_Funnel_Up_{s}") + _lr("Mouth_Funnel_Down_{s}")],
    "mouthPucker": [_lr("Mouth_Pucker_Up_{s}") + _lr("Mouth_Pucker_Down_{s}")],
    "mouthLeft": ["Mouth_L"], "mouthRight": ["Mouth_R"],
    **_both("mouthSmile{Side}", "Mouth_Smile_{s}"),
    **_both("mouthFrown{Side}", "Mouth_Frown_{s}"),
    **_both("mouthDimple{Side}", "Mouth_Dimple_{s}"),
    **_both("mouthStretch{Side}", "Mouth_Stretch_{s}"),
    **_both("mouthPress{Side}", "Mouth_Press_{s}"),
    **_both("mouthLowerDown{Side}", "Mouth_Down_Lower_{s}"),
    **_both("mouthUpperUp{Side}", "Mouth_Up_Upper_{s}"),
    "mouthRollLower": [_lr("Mouth_Roll_In_Lower_{s}")],
    "mouthRollUpper": [_lr("Mouth_Roll_In_Upper_{s}")],
    "mouthShrugLower": ["Mouth_Shrug_Lower"], "mouthShrugUpper": ["Mouth_Shrug_Upper"],
    **_both("noseSneer{Side}", "Nose_Sneer_{s}"),
    "tongueOut": ["Tongue_Out"],
}

_VRM = {  # VRM 1.0 expression names, then VRM 0.x clip names, then VRoid's Fcl_ mesh keys
    **_both("eyeBlink{Side}", "blink{Side}", "Fcl_EYE_Close_{s}", "blink", "Fcl_EYE_Close"),
    **_both("mouthSmile{Side}", "happy", "joy", "Fcl_MTH_Joy", "Fcl_ALL_Joy"),
    **_both("mouthFrown{Side}", "sad", "sorrow", "Fcl_MTH_Sorrow", "Fcl_ALL_Sorrow"),
    **_both("browDown{Side}", "angry", "Fcl_BRW_Angry", "Fcl_ALL_Angry"),
    "browInnerUp": ["Fcl_BRW_Sorrow"],
    **_both("browOuterUp{Side}", "Fcl_BRW_Surprised"),
    **_both("eyeWide{Side}", "surprised", "Fcl_EYE_Surprised", "Fcl_ALL_Surprised"),
    **_both("cheekSquint{Side}", "relaxed", "fun", "Fcl_ALL_Fun"),
    **_both("eyeLookUp{Side}", "lookUp"),
    **_both("eyeLookDown{Side}", "lookDown"),
    "eyeLookOutLeft": ["lookLeft"], "eyeLookInRight": ["lookLeft"],  # the character's left
    "eyeLookInLeft": ["lookRight"], "eyeLookOutRight": ["lookRight"],
}

_UNIFIED = {  # VRChat's Unified Expressions (VRCFaceTracking) where they differ from ARKit's
    **_both("eyeBlink{Side}", "EyeClosed{Side}"),
    **_both("browDown{Side}", "BrowLowerer{Side}"),
    "browInnerUp": [("BrowInnerUpLeft", "BrowInnerUpRight")],
    "cheekPuff": [("CheekPuffLeft", "CheekPuffRight")],
    "mouthClose": ["MouthClosed"],
    "mouthFunnel": [("LipFunnelUpperLeft", "LipFunnelUpperRight", "LipFunnelLowerLeft", "LipFunnelLowerRight")],
    "mouthPucker": [("LipPuckerUpperLeft", "LipPuckerUpperRight", "LipPuckerLowerLeft", "LipPuckerLowerRight"),
                    ("LipPuckerLeft", "LipPuckerRight")],
    "mouthRollUpper": [("LipSuckUpperLeft", "LipSuckUpperRight")],
    "mouthRollLower": [("LipSuckLowerLeft", "LipSuckLowerRight")],
    **_both("mouthSmile{Side}", "MouthCornerPull{Side}"),
    **_both("mouthFrown{Side}", "MouthCornerSlant{Side}"),
    "mouthShrugUpper": ["MouthRaiserUpper"], "mouthShrugLower": ["MouthRaiserLower"],
}

_MH = "CTRL_expressions_"
_METAHUMAN = {  # MetaHuman's facial control curves, as their morph targets are named
    **_both("eyeBlink{Side}", _MH + "eyeBlink{s}"),
    **_both("eyeWide{Side}", _MH + "eyeWiden{s}"),
    **_both("eyeSquint{Side}", _MH + "eyeSquintInner{s}"),
    **_both("eyeLookUp{Side}", _MH + "eyeLookUp{s}"),
    **_both("eyeLookDown{Side}", _MH + "eyeLookDown{s}"),
    **_both("eyeLookIn{Side}", _MH + "eyeLook{OSide}{s}"),
    **_both("eyeLookOut{Side}", _MH + "eyeLook{Side}{s}"),
    **_both("browDown{Side}", _MH + "browDown{s}"),
    "browInnerUp": [(_MH + "browRaiseInL", _MH + "browRaiseInR")],
    **_both("browOuterUp{Side}", _MH + "browRaiseOuter{s}"),
    **_both("cheekSquint{Side}", _MH + "eyeCheekRaise{s}"),
    "cheekPuff": [(_MH + "mouthCheekBlowL", _MH + "mouthCheekBlowR")],
    **_both("noseSneer{Side}", _MH + "noseWrinkle{s}"),
    "jawOpen": [_MH + "jawOpen"], "jawForward": [_MH + "jawFwd"],
    "jawLeft": [_MH + "jawLeft"], "jawRight": [_MH + "jawRight"],
    "mouthLeft": [_MH + "mouthLeft"], "mouthRight": [_MH + "mouthRight"],
    **_both("mouthSmile{Side}", _MH + "mouthCornerPull{s}"),
    **_both("mouthFrown{Side}", _MH + "mouthCornerDepress{s}"),
    **_both("mouthStretch{Side}", _MH + "mouthStretch{s}"),
    **_both("mouthDimple{Side}", _MH + "mouthDimple{s}"),
    **_both("mouthPress{Side}", (_MH + "mouthPressU{s}", _MH + "mouthPressD{s}")),
    **_both("mouthUpperUp{Side}", _MH + "mouthUpperLipRaise{s}"),
    **_both("mouthLowerDown{Side}", _MH + "mouthLowerLipDepress{s}"),
    "mouthFunnel": [tuple(_MH + f"mouthFunnel{x}" for x in ("UL", "UR", "DL", "DR"))],
    "mouthPucker": [tuple(_MH + f"mouthLipsPurse{x}" for x in ("UL", "UR", "DL", "DR"))],
    "mouthRollUpper": [(_MH + "mouthUpperLipRollInL", _MH + "mouthUpperLipRollInR")],
    "mouthRollLower": [(_MH + "mouthLowerLipRollInL", _MH + "mouthLowerLipRollInR")],
    "tongueOut": [_MH + "tongueOut"],
}

# Visemes, for characters made for lip sync. The tracker gives no visemes, so the mouth channels
# stand in (docs/retargeting.md): the open jaw is "aa", the funnel "oh", the pucker "ou", the
# stretch "ee", the smile "ih", pressed lips "PP". Last resort, after every expression preset.
VISEMES = {
    "jawOpen": ["aa", "ah", "A", "Fcl_MTH_A", "viseme_aa"],
    "mouthFunnel": ["oh", "O", "Fcl_MTH_O", "viseme_O"],
    "mouthPucker": ["ou", "uu", "U", "Fcl_MTH_U", "viseme_U"],
    **_both("mouthStretch{Side}", "ee", "E", "Fcl_MTH_E", "viseme_E"),
    **_both("mouthSmile{Side}", "ih", "I", "Fcl_MTH_I", "viseme_I"),
    **_both("mouthPress{Side}", "viseme_PP", "PP"),
}

_RPM_FALLBACK = {  # Ready Player Me: ARKit names, plus older keys for avatars without them
    "jawOpen": ["mouthOpen", "viseme_aa"],
    **_both("mouthSmile{Side}", "mouthSmile"),
    **_both("eyeBlink{Side}", "eyesClosed"),
    **_both("eyeLookUp{Side}", "eyesLookUp"),
    **_both("eyeLookDown{Side}", "eyesLookDown"),
    "mouthFunnel": ["viseme_O"], "mouthPucker": ["viseme_U"],
}

PRESETS: dict[str, dict[str, list]] = {
    "ARKIT": {n: [n] for n in ARKIT_NAMES},
    "RPM": {n: [n] + _RPM_FALLBACK.get(n, []) for n in ARKIT_NAMES},
    "CC": _CC,
    "VRM": _VRM,
    "UNIFIED": _UNIFIED,
    "METAHUMAN": _METAHUMAN,
}
# Names a preset recognises without driving them; they only break ties when AUTO picks a preset.
_KNOWN = {
    "RPM": ["viseme_" + v for v in "sil PP FF TH DD kk CH SS nn RR aa E I O U".split()],
    "VRM": ["neutral", "aa", "ih", "ou", "ee", "oh", "A", "I", "U", "E", "O", "Fcl_MTH_I", "Fcl_MTH_O", "Fcl_ALL_Neutral", "Fcl_MTH_Neutral",
            "Fcl_EYE_Natural", "Fcl_BRW_Fun", "Fcl_BRW_Joy", "Fcl_MTH_Up", "Fcl_MTH_Down", "Fcl_MTH_Small",
            "Fcl_MTH_Large", "Fcl_EYE_Joy", "Fcl_EYE_Fun", "Fcl_EYE_Angry", "Fcl_EYE_Sorrow"],
}


@cache
def _preset_keys(preset: str) -> frozenset:
    names = list(_KNOWN.get(preset, []))
    for cands in (PRESETS.get(preset) or VISEMES).values():
        for c in cands:
            names += list(c) if isinstance(c, tuple) else [c]
    return frozenset(map(normalize_name, names))


# --- mapping -------------------------------------------------------------------------------------

@dataclass
class ChannelMapping:
    """One ARKit channel driving one target key: value = clip(gain*score + offset, min, max)."""
    source: str
    target: str
    gain: float = 1.0
    offset: float = 0.0
    clamp_min: float = 0.0
    clamp_max: float = 1.0
    enabled: bool = True

    def __post_init__(self):
        if self.source not in ARKIT_INDEX:
            raise MappingError(f"unknown source channel {self.source!r} (not an ARKit name)")
        if not self.target:
            raise MappingError(f"channel {self.source} has an empty target name")
        if self.clamp_min > self.clamp_max:
            raise MappingError(f"{self.source} -> {self.target}: clamp_min > clamp_max")


_FIELDS = {f.name: f.type for f in fields(ChannelMapping)}


@dataclass
class Mapping:
    """Source -> target pairs (many-to-many), with what auto-matching left over for the UI."""
    channels: list[ChannelMapping] = field(default_factory=list)
    preset: str = "CUSTOM"
    unmatched_sources: list[str] = field(default_factory=list)
    unmatched_targets: list[str] = field(default_factory=list)  # the character's keys left undriven
    empty_targets: list[str] = field(default_factory=list)      # keys that deform nothing (driven only as a last resort)

    def __iter__(self):
        return iter(self.channels)

    def __len__(self) -> int:
        return len(self.channels)

    @property
    def targets(self) -> list[str]:
        """Target keys fed by at least one enabled channel, in first-use order."""
        return list(dict.fromkeys(c.target for c in self.channels if c.enabled))

    def by_source(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for c in self.channels:
            out.setdefault(c.source, []).append(c.target)
        return out

    # --- matching ------------------------------------------------------------------------------

    @classmethod
    def auto_map(cls, target_names, preset: str = "AUTO", moving=None) -> "Mapping":
        """Match every ARKit channel to the character's keys; "AUTO" uses every preset.

        Per channel: a key with the same normalised name first, else the preset's candidates
        in order, else (AUTO) the other presets' and then the visemes (``VISEMES``). AUTO
        tries the presets in the order of how many of the character's names each recognises
        (ties in PRESETS order, ARKIT first) and reports the first as the preset.
        ``moving``: the names of the keys that deform something; when given, a key outside
        it is chosen only where no candidate deforms anything (all are in ``empty_targets``).
        """
        names = [str(n) for n in target_names]
        if preset == "AUTO":
            known = {p: sum(normalize_name(n) in _preset_keys(p) for n in names) for p in PRESETS}
            order = sorted(PRESETS, key=lambda p: -known[p])  # stable: ties keep PRESETS order
            return cls._build(names, [PRESETS[p] for p in order] + [VISEMES], order[0], moving)
        if preset not in PRESETS:
            raise MappingError(f"unknown preset {preset!r}; choose AUTO or one of {list(PRESETS)}")
        return cls._build(names, [PRESETS[preset]], preset, moving)

    @classmethod
    def _build(cls, names: list[str], presets: list[dict], label: str, moving=None) -> "Mapping":
        moving = None if moving is None else set(moving)
        by_key: dict[str, list[str]] = {}
        for n in names:
            if not _is_basis(n):
                by_key.setdefault(normalize_name(n), []).append(n)
        empty = set() if moving is None else {n for n in names if n not in moving}

        def find(cand: str, allow_empty: bool) -> str | None:  # one key per candidate; an exact spelling wins
            hits = by_key.get(normalize_name(cand)) or []
            if not allow_empty:
                hits = [h for h in hits if h not in empty]
            return (cand if cand in hits else hits[0]) if hits else None

        def search(src: str, allow_empty: bool) -> list[str]:
            if t := find(src, allow_empty):
                return [t]
            for cand in (c for p in presets for c in p.get(src, [])):
                found = [t for c in (cand if isinstance(cand, tuple) else (cand,)) if (t := find(c, allow_empty))]
                if found:
                    return found
            return []

        channels, unmatched = [], []
        for src in ARKIT_NAMES:
            # a key that deforms nothing only where no candidate deforms anything
            found = search(src, False) or (search(src, True) if empty else [])
            channels += [ChannelMapping(src, t) for t in dict.fromkeys(found)]
            if not found:
                unmatched.append(src)
        used = {c.target for c in channels}
        rest = [n for n in names if n not in used and not _is_basis(n)]
        return cls(channels, label, unmatched, rest, [n for n in names if n in empty and not _is_basis(n)])

    # --- evaluation ----------------------------------------------------------------------------

    def apply(self, scores) -> tuple[list[str], np.ndarray]:
        """(N, 52) ARKit scores -> (target names, (N, T) values); several sources -> max.

        NaN scores stay NaN unless another source of the same key has a value. Keys fed only
        by disabled channels are left out, so the caller leaves them untouched.
        """
        compiled = self.compile()
        return compiled.targets, compiled(scores)

    def compile(self) -> "CompiledMapping":
        """The mapping as index and coefficient arrays, for calling every frame (live)."""
        return CompiledMapping(self)

    # --- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "preset": self.preset,
                "channels": [asdict(c) for c in self.channels],
                "unmatched_sources": list(self.unmatched_sources),
                "unmatched_targets": list(self.unmatched_targets),
                "empty_targets": list(self.empty_targets)}

    @classmethod
    def from_dict(cls, d) -> "Mapping":
        if not isinstance(d, dict):
            raise MappingError("expected a JSON object at the top level")
        if d.get("format") != FORMAT:
            raise MappingError(f"not a blender_facemesh mapping (format {d.get('format')!r})")
        v = d.get("version")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise MappingError(f"bad mapping version {v!r}")
        if v > VERSION:
            raise MappingError(f"mapping version {v} is newer than this add-on reads ({VERSION})")
        chans = d.get("channels")
        if not isinstance(chans, list):
            raise MappingError("'channels' must be a list")
        lists = {}
        for key in ("unmatched_sources", "unmatched_targets", "empty_targets"):
            lst = d.get(key, [])
            if not isinstance(lst, list) or not all(isinstance(x, str) for x in lst):
                raise MappingError(f"'{key}' must be a list of names")
            lists[key] = lst
        preset = d.get("preset", "CUSTOM")
        if not isinstance(preset, str):
            raise MappingError("'preset' must be a string")
        return cls([_channel_from_dict(c, i) for i, c in enumerate(chans)], preset, **lists)

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically (a crash mid-write leaves the old file)."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n", mkdir=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Mapping":
        return read_json(path, MappingError, "mapping file", cls.from_dict)


def _channel_from_dict(c, i: int) -> ChannelMapping:
    if not isinstance(c, dict):
        raise MappingError(f"channel {i} must be an object")
    if unknown := sorted(set(c) - set(_FIELDS)):
        raise MappingError(f"channel {i}: unknown field(s) {unknown}")
    for key in ("source", "target"):
        if not isinstance(c.get(key), str) or not c[key]:
            raise MappingError(f"channel {i}: '{key}' must be a non-empty string")
    kw = {}
    for key in ("gain", "offset", "clamp_min", "clamp_max"):
        if key in c:
            x = c[key]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise MappingError(f"channel {i}: '{key}' must be a finite number, got {x!r}")
            kw[key] = float(x)
    if "enabled" in c:
        if not isinstance(c["enabled"], bool):
            raise MappingError(f"channel {i}: 'enabled' must be true or false")
        kw["enabled"] = c["enabled"]
    try:
        return ChannelMapping(c["source"], c["target"], **kw)
    except MappingError as exc:
        raise MappingError(f"channel {i}: {exc}") from None


class CompiledMapping:
    """A Mapping frozen into arrays: each call is a handful of numpy operations."""

    def __init__(self, mapping: Mapping):
        chans = [c for c in mapping.channels if c.enabled]
        self.targets = mapping.targets
        tpos = {t: i for i, t in enumerate(self.targets)}
        tidx = np.array([tpos[c.target] for c in chans], dtype=np.int64)
        order = np.argsort(tidx, kind="stable")
        chans = [chans[i] for i in order]
        col = lambda a: np.array([getattr(c, a) for c in chans], np.float64)  # noqa: E731
        self.src = np.array([ARKIT_INDEX[c.source] for c in chans], dtype=np.int64)
        self.gain, self.offset = col("gain"), col("offset")
        self.lo, self.hi = col("clamp_min"), col("clamp_max")
        self.starts = np.searchsorted(tidx[order], np.arange(len(self.targets)))

    def __call__(self, scores) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        single = s.ndim == 1
        s = np.atleast_2d(s)
        if s.ndim != 2 or s.shape[1] != len(ARKIT_NAMES):
            raise ValueError(f"scores must be (frames, {len(ARKIT_NAMES)}), got {s.shape}")
        if not len(self.src):
            out = np.zeros((len(s), 0))
        else:
            v = np.clip(s[:, self.src] * self.gain + self.offset, self.lo, self.hi)
            out = np.fmax.reduceat(v, self.starts, axis=1)
        return out[0] if single else out


def auto_map(target_names, preset: str = "AUTO", moving=None) -> Mapping:
    """Module-level alias of `Mapping.auto_map`."""
    return Mapping.auto_map(target_names, preset, moving)


# --- eyes ----------------------------------------------------------------------------------------

