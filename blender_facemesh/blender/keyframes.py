"""Bulk keyframe writing through the slotted-action API (Blender 4.4+; 5.0 removed the rest)."""

from __future__ import annotations

import bpy
import numpy as np

_LINEAR = 1  # FCurve keyframe interpolation enum: CONSTANT 0, LINEAR 1, BEZIER 2


TAKE_PROP = "facemesh_take"  # on an action: the take it was baked from (the user's own actions lack it)


def take_action(take_name: str):
    """The take's own action: made on the first bake, reused (and refilled) by re-bakes. A fake
    user keeps it in the file while another take's action is on the character."""
    for action in bpy.data.actions:
        if action.get(TAKE_PROP) == take_name:
            return action
    action = bpy.data.actions.new(f"FaceMesh {take_name}")
    action[TAKE_PROP] = take_name
    action.use_fake_user = True
    return action


def take_actions() -> dict:
    """take name -> its action, for the take list."""
    return {a[TAKE_PROP]: a for a in bpy.data.actions if a.get(TAKE_PROP)}


def _slot_for(action, id_data):
    for slot in action.slots:
        if slot.target_id_type == id_data.id_type and slot.name_display == id_data.name:
            return slot
    return action.slots.new(id_type=id_data.id_type, name=id_data.name)


def keep_in_nla(adt) -> None:
    """Move the ID's current action, if it is the user's own, onto an NLA track of its own: it
    keeps playing under the take and its keys are not touched."""
    old = adt.action
    if old is None or old.get(TAKE_PROP):
        return
    if any(strip.action == old for track in adt.nla_tracks for strip in track.strips):
        adt.action = None  # already in the NLA (glTF imports put every animation there too)
        return
    slot = adt.action_slot
    track = adt.nla_tracks.new()
    track.name = f"{old.name} (kept)"
    strip = track.strips.new(old.name, int(old.frame_range[0]), old)
    if slot is not None and getattr(strip, "action_slot", None) != slot:
        try:
            strip.action_slot = slot
        except (AttributeError, TypeError):  # older Blender: the strip picks the slot itself
            pass
    adt.action = None


def assign_action(id_data, action):
    """Put ``action`` on the ID through its own slot (the user's action kept in the NLA)."""
    adt = id_data.animation_data or id_data.animation_data_create()
    if adt.action != action:
        keep_in_nla(adt)
        adt.action = action
    slot = _slot_for(action, id_data)
    if adt.action_slot != slot:
        adt.action_slot = slot
    return slot


def take_channelbag(id_data, action):
    """The take action's channels for this ID, emptied: a re-bake replaces them whole."""
    slot = assign_action(id_data, action)
    bag = _channelbag(action, slot)
    bag.fcurves.clear()
    return bag


def ensure_channelbag(id_data, action_name: str):
    """The channelbag that animates ``id_data``: creates animation data, action and slot as needed."""
    adt = id_data.animation_data or id_data.animation_data_create()
    if adt.action is None:
        adt.action = bpy.data.actions.new(action_name)
    action = adt.action
    slot = adt.action_slot
    if slot is None:
        slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        adt.action_slot = slot
    return _channelbag(action, slot)


def _channelbag(action, slot):
    try:  # Blender 5.0+
        from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
    except ImportError:  # 4.4 / 4.5: by hand, through layer and strip
        layer = action.layers[0] if action.layers else action.layers.new("Layer")
        strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
        return strip.channelbag(slot, ensure=True)
    return action_ensure_channelbag_for_slot(action, slot)


def _new_fcurve(channelbag, data_path: str, index: int, group: str):
    """5.0 takes the group by name; 4.4/4.5 need the group made and assigned by hand."""
    try:
        return channelbag.fcurves.new(data_path, index=index, group_name=group)
    except TypeError:
        fc = channelbag.fcurves.new(data_path, index=index)
        if group:
            fc.group = channelbag.groups.get(group) or channelbag.groups.new(group)
        return fc


def write_curve(channelbag, data_path: str, index: int, frames: np.ndarray, values: np.ndarray,
                group: str = "") -> int:
    """Replace the F-curve (data_path, index) with keys at ``frames``; NaN values are skipped.
    Returns the number of keys written."""
    old = channelbag.fcurves.find(data_path, index=index)
    if old is not None:
        channelbag.fcurves.remove(old)  # re-baking replaces, never piles keys up
    keep = ~np.isnan(values)
    n = int(keep.sum())
    if n == 0:
        return 0
    fc = _new_fcurve(channelbag, data_path, index, group)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames[keep]
    co[1::2] = values[keep]
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("interpolation", np.full(n, _LINEAR, dtype=np.int32))
    fc.update()
    return n
