"""Mapping by looking: the choice of keys from made-up score changes (no bpy), then real
Workbench renders of a real character (the bpy module) read by the real landmarker. The
character comes from ../shared/characters (FACEMESH_CHARACTERS or BLENDER_FACEMESH_CHARACTERS
to point elsewhere); the Blender tests skip where it or bpy is absent."""

import os
from pathlib import Path

import numpy as np
import pytest

from blender_facemesh.core.animation.probe import (FaceView, ProbeError, is_toggle, key_responses,
                                                   mapping_from_responses, transfer_correlation, tuned_gains)
from blender_facemesh.core.animation.retarget import ChannelMapping
from blender_facemesh.core.channels import ARKIT_INDEX, ARKIT_NAMES
from blender_facemesh.core.errors import FacemeshError


def _resp(**channels):
    d = np.zeros(len(ARKIT_NAMES))
    for k, v in channels.items():
        d[ARKIT_INDEX[k]] = v
    return d


# --- core: no bpy -----------------------------------------------------------------------------------

def _unsided(channel: str) -> str:
    return channel.replace("Left", "").replace("Right", "")


def test_each_channel_goes_to_the_key_that_raises_it_most_selectively():
    responses = {"Shout": _resp(jawOpen=0.7, mouthStretchLeft=0.45, mouthStretchRight=0.45, browInnerUp=0.4),
                 "MouthOpen": _resp(jawOpen=0.5, mouthLowerDownLeft=0.1),
                 "BothEyesClose": _resp(eyeBlinkLeft=0.8, eyeBlinkRight=0.75, eyeLookDownLeft=0.3),
                 "JawSide": _resp(jawLeft=0.5, jawRight=0.45),
                 "Twitch": _resp(noseSneerLeft=0.08)}
    got = mapping_from_responses(responses)
    pairs = {(c.source, c.target): c.gain for c in got}
    # the selective key wins the channel the loud one raises more; gain = 1 / response
    assert ("jawOpen", "MouthOpen") in pairs and pairs[("jawOpen", "MouthOpen")] == pytest.approx(2.0)
    assert ("jawOpen", "Shout") not in pairs
    # a key closing both eyes is driven by both sides
    assert pairs[("eyeBlinkLeft", "BothEyesClose")] == pytest.approx(1.25)
    assert ("eyeBlinkRight", "BothEyesClose") in pairs
    # jawLeft / jawRight are two directions, not one move on both sides
    assert [s for s, t in pairs if t == "JawSide"] == ["jawLeft"]
    # under min_response: nothing; each channel once; each key one channel or both sides of one
    assert not any(t == "Twitch" for _s, t in pairs)
    assert len({c.source for c in got}) == len(got)
    for key in {c.target for c in got}:
        srcs = [c.source for c in got if c.target == key]
        assert len(srcs) == 1 or (len(srcs) == 2 and len({_unsided(x) for x in srcs}) == 1), (key, srcs)
    assert all(1.0 <= g <= 2.0 for g in pairs.values())
    # a higher threshold drops the weak ones; nothing raised -> nothing mapped
    strict = {(c.source, c.target) for c in mapping_from_responses(responses, min_response=0.55)}
    assert ("jawOpen", "MouthOpen") not in strict and ("eyeBlinkLeft", "BothEyesClose") in strict
    assert mapping_from_responses({"Flat": _resp()}) == []
    # with one-eyed keys to choose, each side goes to its own eye's key, and the both-eyes key
    # is not driven from one side (a wink would close both of the character's eyes)
    responses["LeftEyeClose"] = _resp(eyeBlinkLeft=0.6, eyeBlinkRight=0.05, eyeSquintLeft=0.1)
    responses["RightEyeClose"] = _resp(eyeBlinkRight=0.55, eyeBlinkLeft=0.05)
    blink = {(c.source, c.target) for c in mapping_from_responses(responses) if c.source.startswith("eyeBlink")}
    assert blink == {("eyeBlinkLeft", "LeftEyeClose"), ("eyeBlinkRight", "RightEyeClose")}
    # toggles are not expressions
    assert is_toggle("HideBlush") and is_toggle("HdieEarRings") and is_toggle("Show_Glasses")
    assert not any(is_toggle(n) for n in ("h_expressions.Kiss_h", "MouthOpen", "eyeBlink_L", "look_down", "Shout"))


def test_responses_skip_faceless_renders_and_a_faceless_rest_is_an_error():
    base = np.full(52, 0.1)
    per = {"A": np.full(52, 0.3), "B": np.full(52, np.nan)}
    r = key_responses(base, per)
    assert list(r) == ["A"] and r["A"] == pytest.approx(np.full(52, 0.2))
    with pytest.raises(ProbeError, match="no face found") as e:
        key_responses(np.full(52, np.nan), per)
    assert isinstance(e.value, FacemeshError) and "\n" not in str(e.value)


def test_correlation_and_gains_from_measured_ranges():
    t = np.linspace(0, 6, 60)
    perf = np.zeros((60, 52))
    perf[:, ARKIT_INDEX["jawOpen"]] = 0.4 + 0.4 * np.sin(t)
    perf[:, ARKIT_INDEX["mouthPucker"]] = 0.3 + 0.2 * np.sin(2 * t)
    char = perf.copy()
    char[:, ARKIT_INDEX["jawOpen"]] = 0.2 + 0.1 * np.sin(t)      # follows, but opens a quarter as far
    char[:, ARKIT_INDEX["mouthPucker"]] = 0.3 - 0.2 * np.sin(2 * t)  # the wrong way round
    char[5] = np.nan                                              # a render with no face: dropped
    corr = transfer_correlation(perf, char)
    assert corr["jawOpen"] == pytest.approx(1.0) and corr["mouthPucker"] == pytest.approx(-1.0)
    assert np.isnan(corr["eyeBlinkLeft"])                         # moves on neither side
    gains = tuned_gains(perf, char, [ChannelMapping("jawOpen", "Open", gain=0.5),
                                     ChannelMapping("jawOpen", "Wide", gain=2.0),
                                     ChannelMapping("eyeBlinkLeft", "Blink")])
    assert gains[("jawOpen", "Open")] == pytest.approx(2.0)       # 0.5 x 4
    assert gains[("jawOpen", "Wide")] == pytest.approx(4.0)       # 8, clipped to 4
    assert ("eyeBlinkLeft", "Blink") not in gains                  # no range to match: kept


# --- Blender: real renders, real landmarker ------------------------------------------------------------

VALID = "valid_Black_M_2_Casual.glb"
KEYS = ("h_expressions.LeyeClose_h", "h_expressions.ReyeClose_h", "h_expressions.MouthOpen_h",
        "h_expressions.LsmileClose_h", "h_expressions.RsmileClose_h", "h_expressions.Kiss_h")
OPEN = "h_expressions.MouthOpen_h"


def _characters_dir() -> Path | None:
    for var in ("FACEMESH_CHARACTERS", "BLENDER_FACEMESH_CHARACTERS"):
        if os.environ.get(var):
            return Path(os.environ[var])
    return Path(__file__).resolve().parents[1].parent / "shared" / "characters"


@pytest.fixture(scope="module")
def valid(addon, face_model):
    """VALID's avatar, imported into a fresh file: its body mesh keeps a handful of keys and
    the teeth none (the test stays short)."""
    bpy = pytest.importorskip("bpy")
    path = _characters_dir() / VALID
    if not path.is_file():
        pytest.skip(f"{path} not present (set FACEMESH_CHARACTERS to ../shared/characters)")
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    body = bpy.data.objects["H_DDS_HighRes"]
    for kb in list(body.data.shape_keys.key_blocks)[1:]:
        if kb.name not in KEYS:
            body.shape_key_remove(kb)
    bpy.data.objects["h_TeethDown"].shape_key_clear()
    return bpy.context.scene, bpy.data.objects["Reference"], body


def _head_view(rig) -> FaceView:
    """From the bones: the eyes (pose, world: the rest pose is in cm under a 0.01 scale) and
    the head. After the glTF import the character faces -Y; left eye x right... gives forward."""
    mw = np.array(rig.matrix_world)
    head = mw @ np.array(rig.pose.bones["Head"].matrix)
    eyes = [(mw @ np.array(rig.pose.bones[n].matrix))[:3, 3] for n in ("LeftEye", "RightEye")]
    up = np.array([0.0, 0.0, 1.0])
    left = eyes[0] - eyes[1]
    forward = np.cross(left, up)
    forward /= np.linalg.norm(forward)
    assert forward == pytest.approx([0, -1, 0], abs=0.05)
    mid = (eyes[0] + eyes[1]) / 2
    assert head[2, 3] < mid[2]  # the head bone starts below the eyes
    return FaceView(mid - 0.05 * up, forward, up, 0.13)


def _state(scene, body):
    import bpy

    sh, r = scene.display.shading, scene.render
    return dict(camera=scene.camera, engine=r.engine, res=(r.resolution_x, r.resolution_y, r.resolution_percentage),
                path=r.filepath, fmt=(r.image_settings.file_format, r.image_settings.color_mode),
                transparent=r.film_transparent, shading=(sh.light, sh.color_type), view=scene.view_settings.view_transform,
                frame=scene.frame_current, objects=set(bpy.data.objects.keys()), cameras=set(bpy.data.cameras.keys()),
                values=[kb.value for kb in body.data.shape_keys.key_blocks], pin=body.show_only_shape_key,
                action=body.data.shape_keys.animation_data.action)


def test_the_character_is_mapped_by_looking_and_the_scene_is_put_back(valid):
    import bpy

    from blender_facemesh.blender.probe import render_frames, render_keys
    from blender_facemesh.core.animation.probe import scores_of_images

    scene, rig, body = valid
    # a scene the user set up otherwise: their camera, engine, output; keys set and animated
    user_cam = bpy.data.objects.new("UserCam", bpy.data.cameras.new("UserCam"))
    scene.collection.objects.link(user_cam)
    scene.camera = user_cam
    scene.render.engine = "BLENDER_EEVEE" if "BLENDER_EEVEE" in {e.identifier for e in
                                                                 scene.render.bl_rna.properties["engine"].enum_items} else "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1280, 720, 50
    scene.render.filepath = "//user_output_"
    scene.render.image_settings.file_format = "JPEG"
    scene.render.film_transparent = False
    scene.display.shading.light, scene.display.shading.color_type = "MATCAP", "OBJECT"
    keys = body.data.shape_keys.key_blocks
    keys["h_expressions.Kiss_h"].value = 0.3
    # the mouth is keyed open at frame 10 (and shut at 1): the key renders must not show it
    keys[OPEN].value = 0.0
    keys[OPEN].keyframe_insert("value", frame=1)
    keys[OPEN].value = 1.0
    keys[OPEN].keyframe_insert("value", frame=10)
    scene.frame_set(10)
    assert keys[OPEN].value == pytest.approx(1.0)
    before = _state(scene, body)

    view = _head_view(rig)
    base, imgs = render_keys(scene, [body, bpy.data.objects["h_TeethDown"]], list(KEYS), view, size=320)
    assert _state(scene, body) == before
    assert set(imgs) == set(KEYS) and base.shape == (320, 320, 3) and base.dtype == np.uint8
    # the key renders differ from the rest where the face moves, and only a little elsewhere
    assert all(np.abs(imgs[k].astype(int) - base).max() > 40 for k in KEYS)

    frames = render_frames(scene, [1, 10], view, size=320)
    assert _state(scene, body) == before

    scores = scores_of_images([base] + [imgs[k] for k in KEYS] + frames)
    assert not np.isnan(scores).any(), "the face should be found in every Workbench render of VALID"
    responses = key_responses(scores[0], dict(zip(KEYS, scores[1:len(KEYS) + 1])))
    j = ARKIT_INDEX["jawOpen"]
    assert responses[OPEN][j] > 0.2
    assert responses["h_expressions.LeyeClose_h"][ARKIT_INDEX["eyeBlinkLeft"]] > 0.15
    assert responses["h_expressions.ReyeClose_h"][ARKIT_INDEX["eyeBlinkRight"]] > 0.15
    assert responses["h_expressions.Kiss_h"][ARKIT_INDEX["mouthPucker"]] > 0.2
    mapping = {(c.source, c.target) for c in mapping_from_responses(responses)}
    assert ("jawOpen", OPEN) in mapping
    assert ("mouthPucker", "h_expressions.Kiss_h") in mapping
    blink = {t for s, t in mapping if s.startswith("eyeBlink")}
    assert blink and blink <= {"h_expressions.LeyeClose_h", "h_expressions.ReyeClose_h"}
    # the animation plays in render_frames: the mouth is open at frame 10, shut at 1
    f1, f10 = scores[len(KEYS) + 1:]
    assert f10[j] - f1[j] > 0.2

    # an error half way (here from the progress callback) puts everything back too
    def fail(_share):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        render_keys(scene, [body], list(KEYS), view, size=96, on_progress=fail)
    assert _state(scene, body) == before
    with pytest.raises(ProbeError, match="parallel"):
        render_frames(scene, [1], FaceView(view.center, view.up, view.up, view.height))
    assert _state(scene, body) == before


def test_map_by_looking_on_the_picked_character(valid):
    """The operators' path: the character as ``character.pick`` resolves it, where to look
    from its keyed vertices, a look the landmarker finds the face in, then the mapping."""
    from blender_facemesh.blender import character as C
    from blender_facemesh.blender.probe import face_view, map_by_looking
    from blender_facemesh.core.animation.character import BoneInfo, find_bones

    scene, rig, body = valid
    ch = C.Character(rig, rig, [body])
    ch.bones = find_bones([BoneInfo(b.name, b.parent.name if b.parent else None) for b in rig.data.bones], {})
    C._look(ch)
    view = face_view(ch)
    assert view.forward == pytest.approx([0, -1, 0], abs=0.05)
    assert 1.55 < view.center[2] < 1.68 and 0.06 < view.height < 0.25
    objects = set(scene.objects.keys())
    mapping, added, silent = map_by_looking(scene, ch)
    assert set(scene.objects.keys()) == objects
    assert ("jawOpen", OPEN) in {(c.source, c.target) for c in mapping.channels}
    assert added[OPEN] == "jawOpen" and set(added) | set(silent) == set(KEYS)
    assert mapping.preset == "LOOKED" and "jawOpen" not in mapping.unmatched_sources


def test_a_face_facing_away_is_not_found(valid):
    from blender_facemesh.blender.probe import LOOKS, find_look

    scene, rig, body = valid
    v = _head_view(rig)
    with pytest.raises(ProbeError, match="no face"):
        find_look(scene, [body], FaceView(v.center, -v.forward, v.up, v.height), looks=LOOKS[:2])


def test_a_video_output_is_put_back(valid):
    """Blender 5.0 keeps the image/video choice apart from the format; both come back."""
    from blender_facemesh.blender.probe import render_frames

    scene, rig, body = valid
    im = scene.render.image_settings
    if not hasattr(im, "media_type"):
        pytest.skip("Blender before 5.0: no media type")
    im.media_type = "VIDEO"
    scene.render.ffmpeg.format = "MPEG4"
    before = (im.media_type, im.file_format, im.color_mode, scene.render.ffmpeg.format)
    (img,) = render_frames(scene, [scene.frame_current], _head_view(rig), size=64)
    assert img.shape == (64, 64, 3)
    assert (im.media_type, im.file_format, im.color_mode, scene.render.ffmpeg.format) == before
