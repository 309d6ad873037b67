"""Retargeting: name matching, presets per character dialect, apply, JSON files, eye angles."""

import json
import math

import numpy as np
import pytest

from blender_facemesh.core.channels import ARKIT_INDEX, ARKIT_NAMES
from blender_facemesh.core.animation.retarget import ChannelMapping, Mapping, MappingError, PRESETS, auto_map, normalize_name
from blender_facemesh.core.solve.eyes import eye_rotations

SAME = {
    "eyeblink|L": ["eyeBlinkLeft", "EyeBlink_L", "eyeBlink_L", "Eye_Blink_L", "eye_blink_left",
                   "EyeBlinkLeft", "eyeBlink.L", "L_eyeBlink", "EYEBLINK-L", " eye blink left ",
                   "blendShape1.eyeBlinkLeft", "A01_Eye_Blink_Left"],
    "eyeblink|R": ["eyeBlinkRight", "EyeBlink_R", "Eye_Blink_R", "eyeBlink.R", "R_eyeBlink"],
    "jaw|L": ["jawLeft", "Jaw_L", "Jaw_Left", "JawLeft", "jaw.L"],
    "mouth|R": ["mouthRight", "Mouth_R", "mouth_right"],
    "browinnerup": ["browInnerUp", "Brow_Inner_Up", "A01_Brow_Inner_Up"],
    "eyellook|R": ["Eye_L_Look_R"],
    "visemeaa": ["viseme_aa"],
    "basis": ["Basis"],
}


@pytest.mark.parametrize("key,names", SAME.items())
def test_normalize_name_table(key, names):
    assert {n: normalize_name(n) for n in names} == {n: key for n in names}


def test_normalized_arkit_names_are_unique_and_sides_do_not_leak_from_the_middle():
    assert len({normalize_name(n) for n in ARKIT_NAMES}) == 52
    assert normalize_name("eyeLookInLeft") == "eyelookin|L"
    assert normalize_name("Eye_L_Look_Up") == "eyellookup"  # an inner L is not a side
    assert normalize_name("Left") == "left"  # a lone side word is a name, not a side
    assert normalize_name("eyeBlink.L") != normalize_name("eyeBlink.R")


def test_arkit_names_map_to_themselves():
    m = auto_map(["Basis", *ARKIT_NAMES, "extraShape"])
    assert m.preset == "ARKIT"
    assert [(c.source, c.target) for c in m] == [(n, n) for n in ARKIT_NAMES]
    assert m.unmatched_sources == [] and m.unmatched_targets == ["extraShape"]
    assert "Basis" not in m.targets


CC4 = ["Basis", *[f"{b}_{s}" for s in "LR" for b in (
    "Brow_Raise_Inner", "Brow_Raise_Outer", "Brow_Drop", "Brow_Compress", "Eye_Blink", "Eye_Squint",
    "Eye_Wide", "Cheek_Raise", "Cheek_Puff", "Nose_Sneer", "Mouth_Smile", "Mouth_Frown",
    "Mouth_Stretch", "Mouth_Dimple", "Mouth_Press", "Mouth_Up_Upper", "Mouth_Down_Lower",
    "Mouth_Funnel_Up", "Mouth_Funnel_Down", "Mouth_Pucker_Up", "Mouth_Pucker_Down",
    "Mouth_Roll_In_Upper", "Mouth_Roll_In_Lower")],
    *[f"Eye_{e}_Look_{d}" for e in "LR" for d in ("L", "R", "Up", "Down")],
    "Jaw_Open", "Jaw_Forward", "Jaw_Backward", "Jaw_L", "Jaw_R", "Mouth_L", "Mouth_R",
    "Mouth_Close", "Mouth_Shrug_Upper", "Mouth_Shrug_Lower", "V_Open", "V_Explosive"]
VRM = ["Basis", "neutral", "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou",
       "ee", "oh", "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft",
       "lookRight"]
RPM = ["Basis", *ARKIT_NAMES, "mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp",
       "eyesLookDown",
       *["viseme_" + v for v in "sil PP FF TH DD kk CH SS nn RR aa E I O U".split()]]


def test_cc4_names_pick_cc_and_split_one_channel_into_four_keys():
    m = auto_map(CC4)
    src = m.by_source()
    assert m.preset == "CC"
    assert src["eyeBlinkLeft"] == ["Eye_Blink_L"] and src["jawOpen"] == ["Jaw_Open"]
    assert sorted(src["mouthFunnel"]) == ["Mouth_Funnel_Down_L", "Mouth_Funnel_Down_R",
                                          "Mouth_Funnel_Up_L", "Mouth_Funnel_Up_R"]
    assert src["browInnerUp"] == ["Brow_Raise_Inner_L", "Brow_Raise_Inner_R"]
    assert src["eyeLookOutLeft"] == ["Eye_L_Look_L"]
    assert src["eyeLookInRight"] == ["Eye_R_Look_L"]
    assert src["jawLeft"] == ["Jaw_L"] and src["mouthLeft"] == ["Mouth_L"]
    assert m.unmatched_sources == ["tongueOut"]
    assert set(m.unmatched_targets) == {"Brow_Compress_L", "Brow_Compress_R", "Jaw_Backward",
                                        "V_Open", "V_Explosive"}


def test_vrm_names_pick_vrm_and_combine_smiles():
    m = auto_map(VRM)
    src = m.by_source()
    assert m.preset == "VRM"
    assert src["eyeBlinkLeft"] == ["blinkLeft"] and src["eyeBlinkRight"] == ["blinkRight"]
    assert src["jawOpen"] == ["aa"] and src["mouthPucker"] == ["ou"]
    assert src["mouthSmileLeft"] == src["mouthSmileRight"] == ["happy"]
    assert src["eyeLookOutLeft"] == src["eyeLookInRight"] == ["lookLeft"]
    assert "blink" in m.unmatched_targets  # blinkLeft/Right exist, so blink is not doubled
    s = np.zeros((2, 52))
    s[0, ARKIT_INDEX["mouthSmileLeft"]], s[0, ARKIT_INDEX["mouthSmileRight"]] = 0.3, 0.8
    s[1, ARKIT_INDEX["mouthSmileRight"]] = np.nan
    names, v = m.apply(s)
    assert v[:, names.index("happy")].tolist() == [0.8, 0.0]


def test_vrm0_and_vroid_spellings_also_match():
    src = auto_map(["Blink_L", "Blink_R", "Joy", "Fcl_MTH_A", "Fcl_EYE_Close_L"]).by_source()
    assert src["eyeBlinkLeft"] == ["Blink_L"] and src["jawOpen"] == ["Fcl_MTH_A"]
    assert src["mouthSmileLeft"] == ["Joy"]


def test_rpm_names_pick_rpm_and_fall_back_only_where_arkit_key_is_missing():
    m = auto_map(RPM)
    assert m.preset == "RPM"
    assert m.by_source()["jawOpen"] == ["jawOpen"]  # not also mouthOpen: that opens twice
    old = auto_map([n for n in RPM if n not in ("jawOpen", "mouthSmileLeft", "mouthSmileRight")])
    assert old.preset == "RPM"
    assert old.by_source()["jawOpen"] == ["mouthOpen"]
    assert old.by_source()["mouthSmileRight"] == ["mouthSmile"]


def test_explicit_preset_and_unknown_preset():
    assert auto_map(CC4, preset="ARKIT").by_source().get("mouthFunnel") is None
    with pytest.raises(MappingError, match="unknown preset"):
        auto_map(CC4, preset="MAYA")
    assert set(PRESETS) >= {"ARKIT", "VRM", "RPM", "CC"}


def test_apply_gain_offset_clamp_disabled_and_max():
    i = ARKIT_INDEX
    m = Mapping([ChannelMapping("jawOpen", "A", gain=2.0),
                 ChannelMapping("mouthFunnel", "B", offset=-0.5, clamp_min=-1.0),
                 ChannelMapping("mouthPucker", "B", gain=0.5),
                 ChannelMapping("eyeBlinkLeft", "C", enabled=False),
                 ChannelMapping("eyeBlinkRight", "A", clamp_max=0.25)])
    s = np.zeros((3, 52), np.float32)
    s[:, i["jawOpen"]] = [0.2, 0.7, np.nan]
    s[:, i["mouthFunnel"]] = [0.1, 0.9, np.nan]
    s[:, i["mouthPucker"]] = [0.0, 0.2, np.nan]
    s[:, i["eyeBlinkRight"]] = [0.1, 0.9, 0.5]
    names, v = m.apply(s)
    assert names == ["A", "B"]  # C has only a disabled source: left untouched
    np.testing.assert_allclose(v[:, 0], [0.4, 1.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(v[:2, 1], [0.0, 0.4], atol=1e-6)  # max(-0.4, 0), max(0.4, 0.1)
    assert math.isnan(v[2, 1])  # every source NaN: NaN
    big = np.random.default_rng(0).random((5000, 52))
    assert m.apply(big)[1].shape == (5000, 2)
    assert m.apply(big[0])[1].shape == (2,)


def test_json_round_trip(tmp_path):
    m = auto_map(CC4)
    m.channels[0].gain, m.channels[1].enabled, m.channels[2].offset = 1.5, False, -0.1
    path = m.save(tmp_path / "cc.json")
    back = Mapping.load(path)
    assert back == m and back.preset == "CC"
    assert json.loads(path.read_text())["format"] == "blender_facemesh.mapping"


@pytest.mark.parametrize("text,why", [
    ("{not json", "not readable JSON"),
    ('{"format": "blender_facemesh.take", "version": 1, "channels": []}', "not a blender_facemesh"),
    ('{"format": "blender_facemesh.mapping", "version": 9, "channels": []}', "newer"),
    ('{"format": "blender_facemesh.mapping", "version": 1, "channels": {}}', "must be a list"),
    ('{"format": "blender_facemesh.mapping", "version": 1, "channels": '
     '[{"source": "eyeBlinkMiddle", "target": "x"}]}', "unknown source channel"),
    ('{"format": "blender_facemesh.mapping", "version": 1, "channels": '
     '[{"source": "jawOpen", "target": "x", "gain": "2"}]}', "'gain' must be a finite number"),
    ('{"format": "blender_facemesh.mapping", "version": 1, "channels": '
     '[{"source": "jawOpen", "target": 3}]}', "'target' must be a non-empty string"),
    ('{"format": "blender_facemesh.mapping", "version": 1, "channels": '
     '[{"source": "jawOpen", "target": "x", "enabled": 1}]}', "'enabled' must be true or false"),
    ("[1, 2]", "JSON object"),
])
def test_bad_files_raise_mapping_error_naming_the_file(tmp_path, text, why):
    path = tmp_path / "broken_map.json"
    path.write_text(text)
    with pytest.raises(MappingError, match=why) as info:
        Mapping.load(path)
    msg = str(info.value)
    assert "broken_map.json" in msg and "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(MappingError, match="does not exist"):
        Mapping.load(tmp_path / "nope.json")


def test_eye_rotations_signs_and_limits():
    i = ARKIT_INDEX
    s = np.zeros((4, 52))
    s[0, [i["eyeLookOutLeft"], i["eyeLookInRight"]]] = 1.0  # both eyes to the performer's left
    s[1, [i["eyeLookInLeft"], i["eyeLookOutRight"]]] = 1.0  # both to the right
    s[2, [i["eyeLookUpLeft"], i["eyeLookUpRight"]]] = 1.0
    s[3, [i["eyeLookDownLeft"], i["eyeLookDownRight"]]] = 0.5
    r = eye_rotations(s, max_yaw_deg=30, max_pitch_up_deg=25, max_pitch_down_deg=30)
    assert r.shape == (4, 2, 2)
    np.testing.assert_allclose(r[0], [[math.radians(30), 0], [math.radians(30), 0]])
    np.testing.assert_allclose(r[1, :, 0], [-math.radians(30)] * 2)
    np.testing.assert_allclose(r[2, :, 1], [math.radians(25)] * 2)
    np.testing.assert_allclose(r[3, :, 1], [-math.radians(15)] * 2)
    s[0, i["eyeLookOutLeft"]] = np.nan
    assert np.isnan(eye_rotations(s)[0, 0, 0]) and not np.isnan(eye_rotations(s)[0, 1, 0])


# --- finding a character's bones and keys -----------------------------------------------------

def _chain(*names):
    from blender_facemesh.core.animation.character import BoneInfo

    out, parent = [], None
    for n in names:
        if isinstance(n, tuple):  # siblings under the last bone
            out += [BoneInfo(x, parent) for x in n]
        else:
            out.append(BoneInfo(n, parent))
            parent = n
    return out


@pytest.mark.parametrize("bones, want", [
    (_chain("mixamorig:Hips", "mixamorig:Neck", "mixamorig:Head", ("mixamorig:HeadTop_End", "mixamorig:LeftEye", "mixamorig:RightEye")),
     ("mixamorig:Head", "mixamorig:Neck", "mixamorig:LeftEye", "mixamorig:RightEye")),
    (_chain("Hips", "Spine", "Neck", "Head", ("HeadTop_End", "LeftEye", "RightEye")), ("Head", "Neck", "LeftEye", "RightEye")),
    (_chain("J_Bip_C_Hips", "J_Bip_C_Neck", "J_Bip_C_Head", ("J_Adj_L_FaceEye", "J_Adj_R_FaceEye", "J_Sec_Hair1_01")),
     ("J_Bip_C_Head", "J_Bip_C_Neck", "J_Adj_L_FaceEye", "J_Adj_R_FaceEye")),
    (_chain("CC_Base_Hip", "CC_Base_NeckTwist01", "CC_Base_NeckTwist02", "CC_Base_Head", ("CC_Base_L_Eye", "CC_Base_R_Eye")),
     ("CC_Base_Head", "CC_Base_NeckTwist02", "CC_Base_L_Eye", "CC_Base_R_Eye")),
    (_chain("hip", "neckLower", "neckUpper", "head", ("lEye", "rEye", "upperFaceRig")), ("head", "neckUpper", "lEye", "rEye")),
    (_chain("pelvis", "neck_01", "neck_02", "head", ("FACIAL_L_Eye", "FACIAL_R_Eye")), ("head", "neck_02", "FACIAL_L_Eye", "FACIAL_R_Eye")),
    (_chain("root", "DEF-spine.004", "neck", "head", ("ORG-eye.L", "ORG-eye.R", "MCH-eye.L", "lid.T.L")),
     ("head", "neck", "ORG-eye.L", "ORG-eye.R")),
    (_chain("chest_Armature", "neck_Armature", "head_Armature", ("brow1.l_Armature",)), ("head_Armature", "neck_Armature", None, None)),
    (_chain("spine", "upper_chest", "Head", ("Eye_L", "Eye_R")), ("Head", "upper_chest", "Eye_L", "Eye_R")),
], ids=["mixamo", "rpm", "vroid", "cc4", "daz", "unreal", "rigify", "gltf-suffix", "neck-by-hierarchy"])
def test_head_neck_and_eyes_are_found_in_every_dialect(bones, want):
    from blender_facemesh.core.animation.character import find_bones

    found = find_bones(bones)
    assert tuple(found.get(r) for r in ("head", "neck", "eye_left", "eye_right")) == want


def test_bone_overrides_win_only_when_the_bone_exists():
    from blender_facemesh.core.animation.character import find_bones

    bones = _chain("Neck", "Head", ("LeftEye", "RightEye", "Jaw"))
    assert find_bones(bones, {"head": "Jaw", "neck": ""}).get("head") == "Jaw"
    assert find_bones(bones, {"head": "head"}).get("head") == "Head"  # an old default that is not there


def test_a_key_that_deforms_nothing_loses_to_one_that_works():
    names = ["Basis", *ARKIT_NAMES, "Fcl_MTH_A", "Fcl_EYE_Close_L", "Fcl_EYE_Close_R"]
    moving = set(names) - {"jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "tongueOut"}
    m = auto_map(names, moving=moving).by_source()
    assert m["jawOpen"] == ["Fcl_MTH_A"] and m["eyeBlinkLeft"] == ["Fcl_EYE_Close_L"]
    assert m["tongueOut"] == ["tongueOut"]  # nothing else to drive it: an empty key is still better than none
    assert auto_map(names, moving=moving).empty_targets == ["eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "tongueOut"]


def test_more_naming_schemes_and_visemes():
    from blender_facemesh.core.animation.retarget import VISEMES

    unified = ["EyeClosedLeft", "EyeClosedRight", "JawOpen", "MouthCornerPullLeft", "BrowLowererLeft"]
    m = auto_map(unified).by_source()
    assert m["eyeBlinkLeft"] == ["EyeClosedLeft"] and m["mouthSmileLeft"] == ["MouthCornerPullLeft"]
    mh = ["CTRL_expressions_jawOpen", "CTRL_expressions_eyeBlinkL", "CTRL_expressions_eyeLookRightL"]
    m = auto_map(mh).by_source()
    assert m["eyeBlinkLeft"] == ["CTRL_expressions_eyeBlinkL"] and m["eyeLookInLeft"] == ["CTRL_expressions_eyeLookRightL"]
    vowels = auto_map(["Basis", "aa", "ih", "ou", "ee", "oh"]).by_source()
    assert vowels["jawOpen"] == ["aa"] and vowels["mouthFunnel"] == ["oh"] and vowels["mouthPucker"] == ["ou"]
    assert auto_map(["jawOpen", "viseme_aa"]).by_source()["jawOpen"] == ["jawOpen"]  # visemes only as a last resort
    assert "jawOpen" in VISEMES
