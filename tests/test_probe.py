"""Mapping by looking and the transfer check: real renders (Workbench, the bpy module), the
real landmarker on them, a real character (../shared/characters; skipped when absent)."""

import numpy as np
import pytest

from blender_facemesh.core.animation.probe import (is_toggle, mapping_from_responses, transfer_correlation,
                                                   tuned_gains)
from blender_facemesh.core.animation.retarget import ChannelMapping
from blender_facemesh.core.channels import ARKIT_INDEX, ARKIT_NAMES


def _resp(**channels):
    d = np.zeros(len(ARKIT_NAMES))
    for k, v in channels.items():
        d[ARKIT_INDEX[k]] = v
    return d


def test_each_channel_goes_to_the_key_that_raises_it_most_selectively():
    responses = {"Shout": _resp(jawOpen=0.7, mouthStretchLeft=0.4, browInnerUp=0.3),
                 "MouthOpen": _resp(jawOpen=0.5),
                 "BothEyesClose": _resp(eyeBlinkLeft=0.8, eyeBlinkRight=0.75),
                 "Twitch": _resp(noseSneerLeft=0.05)}
    pairs = {(c.source, c.target): c.gain for c in mapping_from_responses(responses)}
    assert ("jawOpen", "MouthOpen") in pairs and pairs[("jawOpen", "MouthOpen")] == pytest.approx(2.0)
    assert ("eyeBlinkLeft", "BothEyesClose") in pairs and ("eyeBlinkRight", "BothEyesClose") in pairs
    assert not any(t == "Twitch" for _s, t in pairs)  # under the response threshold
    assert all(1.0 <= g <= 2.0 for g in pairs.values())
    assert is_toggle("HideBlush") and is_toggle("HdieEarRings") and not is_toggle("h_expressions.Kiss_h")


def test_correlation_and_gains_from_measured_ranges():
    t = np.linspace(0, 6, 60)
    perf = np.zeros((60, 52))
    perf[:, ARKIT_INDEX["jawOpen"]] = 0.4 + 0.4 * np.sin(t)
    char = perf.copy()
    char[:, ARKIT_INDEX["jawOpen"]] = 0.2 + 0.1 * np.sin(t)  # follows, but opens a quarter as far
    corr = transfer_correlation(perf, char)
    assert corr["jawOpen"] == pytest.approx(1.0) and np.isnan(corr["eyeBlinkLeft"])
    gains = tuned_gains(perf, char, [ChannelMapping("jawOpen", "Open", gain=1.5)])
    assert gains[("jawOpen", "Open")] == pytest.approx(1.5 * 4.0)


KEEP = ("h_expressions.MouthOpen_h", "h_expressions.LeyeClose_h", "h_expressions.ReyeClose_h",
        "h_expressions.LsmileClose_h", "h_expressions.RsmileClose_h", "h_expressions.Kiss_h",
        "h_expressions.LbrowUp_h", "h_expressions.RbrowUp_h")


def test_an_unknown_naming_character_is_mapped_by_looking(scene, sample_take):
    bpy = pytest.importorskip("bpy")
    from test_characters import load

    _take, path = sample_take
    load("valid_Black_M_2_Casual.glb")
    # a dozen keys keep the test short (every key: about 100 renders, 40 s)
    bpy.data.objects.remove(bpy.data.objects["h_TeethDown"])
    body = bpy.data.objects["H_DDS_HighRes"]
    for kb in list(body.data.shape_keys.key_blocks)[1:]:
        if kb.name not in KEEP:
            body.shape_key_remove(kb)
    scene.facemesh.character = bpy.data.objects["Reference"]
    camera_before, engine_before = scene.camera, scene.render.engine
    objects_before = set(bpy.data.objects.keys())
    values_before = [kb.value for kb in body.data.shape_keys.key_blocks]
    assert bpy.ops.facemesh.map_by_looking() == {"FINISHED"}
    pairs = {(m.source, m.target) for m in scene.facemesh.mappings}
    assert ("jawOpen", "h_expressions.MouthOpen_h") in pairs
    blink = {t for s, t in pairs if s.startswith("eyeBlink")}
    assert blink and blink <= {"h_expressions.LeyeClose_h", "h_expressions.ReyeClose_h"}
    # the scene is as it was: camera, engine, objects, key values
    assert scene.camera == camera_before and scene.render.engine == engine_before
    assert set(bpy.data.objects.keys()) == objects_before
    assert [kb.value for kb in body.data.shape_keys.key_blocks] == values_before
    # baked, the character's mouth follows the performer's
    assert bpy.ops.facemesh.bake_take(filepath=str(path)) == {"FINISHED"}
    assert bpy.ops.facemesh.check_transfer(frames=8) == {"FINISHED"}
    measured = {t.name: t.reason for t in scene.facemesh.transfer}
    assert "jawOpen" in measured
