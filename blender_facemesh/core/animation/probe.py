"""Mapping by looking, and checking how well an expression transfers (no bpy here).

For keys whose names match nothing, the Blender side (``blender.probe``) renders the character's
face once with every key at 0 and once per key at 1.0; the face landmarker reads the renders
(``scores_of_images``) and each key is mapped from the ARKit channel(s) it raises
(``key_responses``, ``mapping_from_responses``). After a bake, renders of a few baked frames are
read the same way and compared with the performer's scores: the correlation per channel says how
closely the character follows (``transfer_correlation``), and the ratio of ranges gives each
channel the gain that makes the character reach the performer's range (``tuned_gains``).

The landmarker runs wherever the caller runs ``scores_of_images``: in Blender, on a background
thread (``core.tracking.live.BackgroundJob``), never on the main thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..channels import ARKIT_INDEX, ARKIT_NAMES
from ..errors import FacemeshError
from .retarget import ChannelMapping

MIN_RESPONSE = 0.12   # a key must raise a channel's score by this much to be driven by it
DOMINANT = 0.6        # ... and by at least this share of the most it raises any channel
BOTH_SIDES = 0.7      # a key raising a channel's other side this much (share) is driven by both
NOISE = 0.03          # score changes under this are the landmarker's noise, not the key
GAIN_RANGE = (1.0, 2.0)         # mapping gains: 1 / response, clipped
TUNED_GAIN_RANGE = (0.25, 4.0)  # tuned gains, clipped

# how much a response counts when choosing (not in the gain): the landmarker reads eyelid moves
# as gaze (a raised cheek "looks down"), and a key that opens the jaw raises mouthLowerDown on
# both sides about as much as jawOpen, which is the one to drive it from
CHANNEL_WEIGHT = {**{n: 0.7 for n in ARKIT_NAMES if n.startswith("eyeLook")},
                  **{n: 1.1 for n in ("jawOpen", "mouthPucker", "mouthFunnel", "mouthClose")}}

# words of key names that switch parts on and off (godette's HideBlush, HdieEarRings...)
_TOGGLE_WORDS = {"hide", "hdie", "hidden", "show", "toggle", "visible", "visibility", "on", "off"}
# left/right channel names that are two directions, not one move on both sides
_NOT_PAIRS = {"mouth", "jaw"}


class ProbeError(FacemeshError):
    """Looking at the character failed; the message says what to check."""


@dataclass
class FaceView:
    """Where the character's face is, for the probe camera (world axes, metres)."""
    center: np.ndarray     # (3,) the middle of the face (between eyes and mouth), on or just behind it
    forward: np.ndarray    # (3,) unit, the way the face looks
    up: np.ndarray         # (3,) unit, from chin to brow
    height: float          # the face's size along up (chin to brow, about)


def _words(name: str) -> list[str]:
    """'HideHairBalls' -> ['hide', 'hair', 'balls']; 'h_expressions.Kiss_h' -> ['h', 'expressions', 'kiss', 'h']."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", str(name))]


def is_toggle(name: str) -> bool:
    """Keys that switch parts on and off (HideBlush, ShowGlasses, Toggle_Hat) are not expressions."""
    return any(w in _TOGGLE_WORDS for w in _words(name))


# --- reading the renders ------------------------------------------------------------------------

def scores_of_images(images, model_path=None, delegate: str = "CPU") -> np.ndarray:
    """(M, 52) ARKit scores of still images (RGB or RGBA uint8, any size), NaN rows where no face
    was found. Each image is read on its own, from the face detector's crop: a blank frame in
    between makes the landmarker forget the last face (in VIDEO mode it otherwise starts from
    the previous image's landmarks, and the same render reads up to 0.17 differently).
    Runs MediaPipe: call it off Blender's main thread (``BackgroundJob``)."""
    from ..capture.landmarker import Landmarker, LandmarkerSettings

    images = [np.asarray(im) for im in images]
    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[2] not in (3, 4) or im.dtype != np.uint8 or min(im.shape[:2]) < 32:
            raise ProbeError(f"image {i} is not an RGB picture (got {im.dtype} {im.shape}): "
                             "pass (height, width, 3) uint8 renders")
    out = np.full((len(images), len(ARKIT_NAMES)), np.nan)
    if not images:
        return out
    with Landmarker(LandmarkerSettings(model_path=model_path, delegate=delegate)) as lm:
        for i, im in enumerate(images):
            rgb = np.ascontiguousarray(im[:, :, :3])
            lm.detect(np.zeros_like(rgb), 2.0 * i)  # no face: the next image starts afresh
            faces = lm.detect(rgb, 2.0 * i + 1.0).faces
            if faces:
                out[i] = faces[0].blendshapes
    return out


def key_responses(base, per_key: dict) -> dict:
    """Key name -> (52,) change of every score when the key is at 1.0 (the key's render minus
    the render at rest). Keys whose render had no face are left out."""
    base = np.asarray(base, np.float64)
    if base.shape != (len(ARKIT_NAMES),):
        raise ValueError(f"base must be ({len(ARKIT_NAMES)},) scores, got {base.shape}")
    if np.isnan(base).any():
        raise ProbeError("no face found in the render of the character's face at rest: check that the "
                         "character has a human-like face with eyes and a mouth, textured or lit, facing "
                         "the way its eyes (or keyed vertices) point")
    out = {}
    for k, v in per_key.items():
        v = np.asarray(v, np.float64)
        if not np.isnan(v).any():
            out[k] = v - base
    return out


def _side(channel: str) -> tuple[str, str] | None:
    """eyeBlinkLeft -> ('eyeBlink', 'Left'); None for channels without a side, or whose two
    'sides' are two directions (mouthLeft / mouthRight)."""
    for side in ("Left", "Right"):
        if channel.endswith(side) and channel[: -len(side)] not in _NOT_PAIRS:
            return channel[: -len(side)], side
    return None


def _other_side(channel: str) -> str | None:
    s = _side(channel)
    return None if s is None else s[0] + ("Right" if s[1] == "Left" else "Left")


def mapping_from_responses(responses: dict, min_response: float = MIN_RESPONSE, dominant: float = DOMINANT,
                           both_sides: float = BOTH_SIDES, skip=()) -> list[ChannelMapping]:
    """ARKit channel -> key, from each key's score changes (``key_responses``); greedy.

    - A key can be driven by a channel it raises by at least ``min_response`` and by at least
      ``dominant`` of the most it raises any channel (a shout that mostly opens the jaw is not
      driven by the lip stretch that comes with it).
    - Pairs are taken best first, by response x selectivity (the response's share of everything
      the key raises): a key that moves one thing beats a key that moves that and much else.
      Responses are weighted for this (``CHANNEL_WEIGHT``): gaze counts less (the landmarker
      reads eyelids as gaze), jawOpen and the lip shapes without a side a little more.
    - Each channel drives at most one key; each key is driven by one channel, or by both sides
      of one: a key that raises the other side at least ``both_sides`` as much (closing both
      eyes: eyeBlinkLeft and eyeBlinkRight) is driven by both sides or not at all, since from
      one side a wink would close both of the character's eyes; where a one-eyed key is more
      selective for a side, it wins that side and the both-eyes key stays undriven. The add-on
      combines several sources of a key by max.
    - gain = 1 / response, clipped to 1..2: the key reaches 1.0 when the performer's score
      reaches what the key produced in the render (more turned a performer's resting squint
      into a closed eye on VALID).
    - ``skip``: channels that drive no key (eyeLook while the eye bones take the gaze); they do
      not count among a key's effects either.
    """
    weight = np.array([CHANNEL_WEIGHT.get(n, 1.0) for n in ARKIT_NAMES])
    weight[[ARKIT_INDEX[n] for n in skip]] = 0.0
    cands = []
    for key, d in responses.items():
        up = np.clip(np.asarray(d, np.float64), 0.0, None) * (weight > 0)
        w = up * weight
        top = w.max(initial=0.0)
        if up.max(initial=0.0) < min_response:
            continue
        total = w[up >= NOISE].sum()
        for c in np.flatnonzero((up >= min_response) & (w >= dominant * top)):
            cands.append((w[c] * w[c] / total, str(key), ARKIT_NAMES[c], float(up[c])))
    cands.sort(key=lambda p: (-p[0], p[1], p[2]))
    used: set[str] = set()      # channels
    driven: set[str] = set()    # keys
    out = []
    for _score, key, ch, resp in cands:
        if ch in used or key in driven:
            continue
        claim = [(ch, resp)]
        other = _other_side(ch)
        if other is not None:
            r = float(np.asarray(responses[key], np.float64)[ARKIT_INDEX[other]])
            if r >= min_response and r >= both_sides * resp:  # the key moves both sides
                if other in used:
                    continue  # both sides or neither: one side would move both of the character's
                claim.append((other, r))
        for c, r in claim:
            used.add(c)
            out.append(ChannelMapping(c, key, gain=float(np.clip(1.0 / r, *GAIN_RANGE))))
        driven.add(key)
    order = {n: i for i, n in enumerate(ARKIT_NAMES)}
    return sorted(out, key=lambda c: order[c.source])


# --- checking a transfer ---------------------------------------------------------------------------

def _paired(performer, character) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(performer, np.float64)
    c = np.asarray(character, np.float64)
    if p.ndim != 2 or p.shape != c.shape or p.shape[1] != len(ARKIT_NAMES):
        raise ValueError(f"performer and character must both be (frames, {len(ARKIT_NAMES)}), "
                         f"got {p.shape} and {c.shape}")
    ok = ~(np.isnan(p).any(axis=1) | np.isnan(c).any(axis=1))
    return p[ok], c[ok]


def transfer_correlation(performer, character, min_std: float = 0.02) -> dict:
    """Channel -> Pearson correlation of the character's scores (read from renders of the baked
    frames) with the performer's on the same frames; rows with a NaN on either side are left
    out, and a channel is NaN where either side barely moves (std under ``min_std``) or fewer
    than 3 frames are left."""
    p, c = _paired(performer, character)
    out = {}
    for i, name in enumerate(ARKIT_NAMES):
        if len(p) < 3 or p[:, i].std() < min_std or c[:, i].std() < min_std:
            out[name] = float("nan")
        else:
            out[name] = float(np.corrcoef(p[:, i], c[:, i])[0, 1])
    return out


def tuned_gains(performer, character, mapping_channels, min_range: float = 0.05) -> dict:
    """(source, target) -> a new gain that makes the character's score range (95th minus 5th
    percentile, as the landmarker reads the renders) match the performer's: old gain x
    performer range / character range, clipped to 0.25..4. Channels whose source barely moves
    in the performer (range under ``min_range``), or that the character does not show at all,
    are left out (keep their gain); so is every channel with fewer than 3 usable frames."""
    p, c = _paired(performer, character)
    out = {}
    if len(p) < 3:
        return out
    for m in mapping_channels:
        if not getattr(m, "enabled", True):
            continue
        i = ARKIT_INDEX[m.source]
        rp = np.percentile(p[:, i], 95) - np.percentile(p[:, i], 5)
        rc = np.percentile(c[:, i], 95) - np.percentile(c[:, i], 5)
        if rp < min_range or rc < 0.4 * min_range:
            continue
        out[(m.source, m.target)] = float(np.clip(m.gain * rp / rc, *TUNED_GAIN_RANGE))
    return out
