"""Bulk keyframe writing through the slotted-action API (Blender 4.4+; 5.0 removed the rest)."""

from __future__ import annotations

import bpy
import numpy as np

_LINEAR = 1  # FCurve keyframe interpolation enum: CONSTANT 0, LINEAR 1, BEZIER 2


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
