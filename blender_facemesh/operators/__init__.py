"""Operators, one job per module; registered in order, unregistered in reverse."""

from .auto_map import FACEMESH_OT_auto_map, FACEMESH_OT_mapping_load, FACEMESH_OT_mapping_save
from .bake_take import FACEMESH_OT_bake_take
from .build_rig import FACEMESH_OT_build_rig
from .calibrate_neutral import FACEMESH_OT_calibrate_neutral
from .calibrate_shape import FACEMESH_OT_calibrate_shape
from .capture import FACEMESH_OT_capture_start, FACEMESH_OT_capture_stop
from .livelink import FACEMESH_OT_export_livelink, FACEMESH_OT_import_livelink
from .performers import FACEMESH_OT_performer_remove, FACEMESH_OT_performer_swap, FACEMESH_OT_performers_find
from .probe import FACEMESH_OT_check_transfer, FACEMESH_OT_map_by_looking
from .process_video import FACEMESH_OT_process_video
from .recovery import FACEMESH_OT_recording_discard, FACEMESH_OT_recording_recover
from .takes import FACEMESH_OT_take_bake, FACEMESH_OT_take_delete, FACEMESH_OT_take_use

classes = (FACEMESH_OT_build_rig, FACEMESH_OT_bake_take, FACEMESH_OT_capture_start, FACEMESH_OT_capture_stop,
           FACEMESH_OT_process_video, FACEMESH_OT_calibrate_neutral, FACEMESH_OT_auto_map,
           FACEMESH_OT_mapping_save, FACEMESH_OT_mapping_load, FACEMESH_OT_take_bake, FACEMESH_OT_take_delete,
           FACEMESH_OT_take_use, FACEMESH_OT_map_by_looking, FACEMESH_OT_check_transfer,
           FACEMESH_OT_import_livelink, FACEMESH_OT_export_livelink, FACEMESH_OT_calibrate_shape,
           FACEMESH_OT_recording_recover, FACEMESH_OT_recording_discard, FACEMESH_OT_performers_find,
           FACEMESH_OT_performer_swap, FACEMESH_OT_performer_remove)


def register():
    import bpy

    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    import bpy

    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
