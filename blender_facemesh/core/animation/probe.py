"""Mapping by looking, and checking how well an expression transfers (no bpy here).

For keys whose names match nothing, the Blender side renders the character's face with each key
at 1.0; the face landmarker reads the renders and each key is mapped from the ARKit channels it
raises. After a bake, renders of a few baked frames are read the same way and compared with
the performer's scores: the correlation per channel says how closely the character follows,
and the ratio of ranges gives each channel the gain that makes the character reach the
performer's range. The landmarker runs wherever the caller runs these functions: in Blender,
on a background thread (``core.tracking.live.BackgroundJob``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..channels import ARKIT_INDEX, ARKIT_NAMES
from ..errors import FacemeshError
from .retarget import ChannelMapping

MIN_RESPONSE = 0.12   # a key must raise a channel's score by this much to drive it
MAX_GAIN = 2.0        # more turns a performer's resting score (a slight squint) into a closed eye
MAIN_EFFECT = 0.6     # a key is driven only from channels it raises at least this share of its strongest rise
_TOGGLE = re.compile(r"(?i)^(hide|hdie|show|toggle|visib|on|off)[\W_A-Z]|^(hide|show)$")


class ProbeError(FacemeshError):
    """Looking at the character failed; the message says what to check."""


@dataclass
class FaceView:
    """Where the character's face is, for the probe camera (world axes, metres)."""
    center: np.ndarray     # (3,) the middle of the face
    forward: np.ndarray    # (3,) unit, the way the face looks
    up: np.ndarray         # (3,) unit
    height: float          # the face's size along up


def is_toggle(name: str) -> bool:
    """Keys that switch parts on and off (HideBlush, ShowGlasses) are not expressions."""
    return bool(_TOGGLE.match(str(name)))


def scores_of_images(images, model_path=None) -> np.ndarray:
    """(M, 52) ARKit scores of still images (RGB uint8), NaN rows where no face was found."""
    from ..capture.landmarker import Landmarker, LandmarkerSettings

    out = np.full((len(images), len(ARKIT_NAMES)), np.nan)
    with Landmarker(LandmarkerSettings(model_path=model_path, delegate="CPU")) as lm:
        for i, rgb in enumerate(images):
            # a second apart: VIDEO mode tracks between frames, and these are separate stills
            faces = lm.detect(np.ascontiguousarray(rgb[..., :3]), float(i)).faces
            if faces:
                out[i] = faces[0].blendshapes
    return out


def key_responses(base: np.ndarray, per_key: dict) -> dict:
    """Key name -> (52,) change of every score when the key is at 1.0 (keys whose render had
    no face are left out)."""
    base = np.asarray(base, np.float64)
    if np.isnan(base).any():
        raise ProbeError("no face found in the render of the character at rest: check that the character "
                         "has a face with eyes and a mouth and faces the way its eye bones (or face) point")
    return {k: np.asarray(v, np.float64) - base for k, v in per_key.items() if not np.isnan(v).any()}


def _pair(channel: str) -> str | None:
    """The channel without its side (eyeBlinkLeft -> eyeBlink), None for a channel with none."""
    for side in ("Left", "Right"):
        if channel.endswith(side):
            return channel[: -len(side)]
    return None


def mapping_from_responses(responses: dict, min_response: float = MIN_RESPONSE,
                           skip=()) -> list[ChannelMapping]:
    """Each key driven by the channel it is most about; each channel drives at most one key.
    A pair (channel, key) scores the channel's rise times its share of the key's strongest
    rise and by the square root of its share of all the key's rises, so a key is matched first
    to its main effect (a shout is an open jaw before it is a smile) and a clean key beats a
    mixed one. A key that raises a left/right pair about equally (both eyes closing) is driven by
    both sides (max). Gain = 1 / response, so the key reaches 1.0 when the performer's score
    reaches what the key produced (clipped to 1..2). ``skip``: channels that must not drive
    keys (eyeLook while the eye bones take the gaze); they do not count as a key's effect."""
    skip_idx = [ARKIT_INDEX[n] for n in skip]
    pairs = []
    for key, d in responses.items():
        up = np.clip(d, 0.0, None)
        up[skip_idx] = 0.0
        top, total = up.max(), up.sum()
        # only a key's main effects: its side effects (a shout also reads as a smile) would
        # stack several keys on one movement of the performer
        for c in np.flatnonzero((up >= min_response) & (up >= MAIN_EFFECT * top)):
            pairs.append((up[c] * up[c] / top * np.sqrt(up[c] / total), key, ARKIT_NAMES[c], up[c]))
    pairs.sort(key=lambda p: -p[0])
    used_ch, used_key, out = set(), {}, []
    for _score, key, ch, resp in pairs:
        if ch in used_ch:
            continue
        if key in used_key and (_pair(ch) is None or _pair(ch) != _pair(used_key[key])):
            continue  # a key is driven by one channel, or by both sides of one (a key closing both eyes)
        used_ch.add(ch)
        used_key.setdefault(key, ch)
        out.append(ChannelMapping(ch, key, gain=float(np.clip(1.0 / resp, 1.0, MAX_GAIN))))
    return out


def transfer_correlation(performer: np.ndarray, character: np.ndarray, min_std: float = 0.02) -> dict:
    """Channel -> Pearson correlation of the character's scores (read from renders) with the
    performer's over the same frames; NaN where either barely moves."""
    p = np.asarray(performer, np.float64)
    c = np.asarray(character, np.float64)
    ok = ~(np.isnan(p).any(axis=1) | np.isnan(c).any(axis=1))
    p, c = p[ok], c[ok]
    out = {}
    for i, name in enumerate(ARKIT_NAMES):
        if len(p) < 3 or p[:, i].std() < min_std or c[:, i].std() < min_std:
            out[name] = float("nan")
        else:
            out[name] = float(np.corrcoef(p[:, i], c[:, i])[0, 1])
    return out


def tuned_gains(performer: np.ndarray, character: np.ndarray, channels) -> dict:
    """(source, target) -> a gain that makes the character's score range (5th to 95th
    percentile, as the landmarker reads it) match the performer's; clipped to 0.25..4 times
    the old gain. Channels that did not move on either side keep their gain."""
    p = np.asarray(performer, np.float64)
    c = np.asarray(character, np.float64)
    ok = ~(np.isnan(p).any(axis=1) | np.isnan(c).any(axis=1))
    p, c = p[ok], c[ok]
    out = {}
    for m in channels:
        i = ARKIT_INDEX[m.source]
        if len(p) < 3:
            continue
        rp = np.percentile(p[:, i], 95) - np.percentile(p[:, i], 5)
        rc = np.percentile(c[:, i], 95) - np.percentile(c[:, i], 5)
        if rp < 0.05 or rc < 0.02:
            continue
        out[(m.source, m.target)] = float(m.gain * np.clip(rp / rc, 0.25, 4.0))
    return out
