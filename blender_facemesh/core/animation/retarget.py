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
    """Left and Right entries from one template: {Side} = Left/Right, {s} = L/R, {o} = opposite."""
    out = {}
    for side, s, o in (("Left", "L", "R"), ("Right", "R", "L")):
        fmt = lambda c: c.format(Side=side, s=s, o=o)  # noqa: E731
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
    "jawOpen": ["aa", "A", "Fcl_MTH_A"],
    "mouthFunnel": ["ou", "U", "Fcl_MTH_U"],
    "mouthPucker": ["ou", "U", "Fcl_MTH_U"],
    **_both("mouthStretch{Side}", "ee", "E", "Fcl_MTH_E"),
    **_both("mouthSmile{Side}", "happy", "joy", "Fcl_ALL_Joy"),
    **_both("mouthFrown{Side}", "sad", "sorrow", "Fcl_ALL_Sorrow"),
    **_both("browDown{Side}", "angry", "Fcl_ALL_Angry"),
    **_both("eyeWide{Side}", "surprised", "Fcl_ALL_Surprised"),
    **_both("cheekSquint{Side}", "relaxed", "fun", "Fcl_ALL_Fun"),
    **_both("eyeLookUp{Side}", "lookUp"),
    **_both("eyeLookDown{Side}", "lookDown"),
    "eyeLookOutLeft": ["lookLeft"], "eyeLookInRight": ["lookLeft"],  # the character's left
    "eyeLookInLeft": ["lookRight"], "eyeLookOutRight": ["lookRight"],
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
}
# Names a preset recognises without driving them; they only break ties when AUTO picks a preset.
_KNOWN = {
    "RPM": ["viseme_" + v for v in "sil PP FF TH DD kk CH SS nn RR aa E I O U".split()],
    "VRM": ["neutral", "ih", "oh", "I", "O", "Fcl_MTH_I", "Fcl_MTH_O", "Fcl_ALL_Neutral"],
}


@cache
def _preset_keys(preset: str) -> frozenset:
    names = list(_KNOWN.get(preset, []))
    for cands in PRESETS[preset].values():
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
    unmatched_targets: list[str] = field(default_factory=list)

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
    def auto_map(cls, target_names, preset: str = "AUTO") -> "Mapping":
        """Match every ARKit channel to the character's keys; "AUTO" keeps the best preset.

        Per channel: a key with the same normalised name first, else the preset's candidates
        in order. AUTO picks the preset driving the most keys, ties going to the one that
        recognises more of the character's names, then to PRESETS order (ARKIT first).
        """
        names = [str(n) for n in target_names]
        if preset == "AUTO":
            built = [cls._build(names, p) for p in PRESETS]
            known = [sum(normalize_name(n) in _preset_keys(p) for n in names) for p in PRESETS]
            return max(zip(built, known), key=lambda bk: (len(bk[0].targets), bk[1]))[0]
        if preset not in PRESETS:
            raise MappingError(f"unknown preset {preset!r}; choose AUTO or one of {list(PRESETS)}")
        return cls._build(names, preset)

    @classmethod
    def _build(cls, names: list[str], preset: str) -> "Mapping":
        by_key: dict[str, list[str]] = {}
        for n in names:
            if not _is_basis(n):
                by_key.setdefault(normalize_name(n), []).append(n)

        def find(cand: str) -> str | None:  # one key per candidate; an exact spelling wins
            hits = by_key.get(normalize_name(cand))
            return (cand if cand in hits else hits[0]) if hits else None

        channels, unmatched = [], []
        for src in ARKIT_NAMES:
            found = [t] if (t := find(src)) else []
            for cand in ([] if found else PRESETS[preset].get(src, [])):
                found = [t for t in map(find, cand if isinstance(cand, tuple) else (cand,)) if t]
                if found:
                    break
            channels += [ChannelMapping(src, t) for t in dict.fromkeys(found)]
            if not found:
                unmatched.append(src)
        used = {c.target for c in channels}
        rest = [n for n in names if n not in used and not _is_basis(n)]
        return cls(channels, preset, unmatched, rest)

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
                "unmatched_targets": list(self.unmatched_targets)}

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
        for key in ("unmatched_sources", "unmatched_targets"):
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


def auto_map(target_names, preset: str = "AUTO") -> Mapping:
    """Module-level alias of `Mapping.auto_map`."""
    return Mapping.auto_map(target_names, preset)


# --- eyes ----------------------------------------------------------------------------------------

