"""Panels read state and call operators; they never do work themselves."""

import bpy


class _Panel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FaceMesh"


_camera_cache = {"at": -1e9, "list": None}


def _cameras():
    """The system's camera list, re-read at most every 5 s (the panel redraws often)."""
    import time

    from ..core.capture.sources import list_cameras

    now = time.monotonic()
    if now - _camera_cache["at"] > 5.0:
        _camera_cache["at"], _camera_cache["list"] = now, list_cameras()
    return _camera_cache["list"]


_shape_cache = {"key": None, "shape": None}


def _face_shape_info(performer_path):
    """The performer file's face shape, re-read only when the file changes."""
    import os

    path = bpy.path.abspath(performer_path) if performer_path else ""
    try:
        key = (path, os.path.getmtime(path)) if path else None
    except OSError:
        key = None
    if key != _shape_cache["key"]:
        shape = None
        if key is not None:
            from ..core import faceshape
            from ..core.solve.calibration import PerformerProfile
            from ..core.errors import FacemeshError

            try:
                shape = faceshape.of_profile(PerformerProfile.load(path))
            except FacemeshError:
                shape = None
        _shape_cache.update(key=key, shape=shape)
    return _shape_cache["shape"]


class FACEMESH_UL_mappings(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=item.source)
        row.label(text=item.target, icon="SHAPEKEY_DATA")
        sub = row.row(align=True)
        sub.scale_x = 0.6
        sub.prop(item, "gain", text="")


class FACEMESH_UL_takes(bpy.types.UIList):
    """Takes: the name can be edited in place (double-click); length, fps and source shown."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        row = layout.row(align=True)
        row.prop(item, "name", text="", emboss=False, icon="ACTION")
        sub = row.row(align=True)
        sub.alignment = "RIGHT"
        sub.label(text=f"{item.duration:.1f} s, {item.fps:.4g} fps, {item.source}")


class FACEMESH_UL_performers(bpy.types.UIList):
    """Performers: picture, name (editable), the character each drives, in view / frames."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        row = layout.row(align=True)
        img = bpy.data.images.get(item.thumbnail) if item.thumbnail else None
        if img is not None:
            row.template_icon(icon_value=layout.icon(img), scale=1.0)
        else:
            row.label(text="", icon="USER")
        row.prop(item, "name", text="", emboss=False)
        sub = row.row(align=True)
        sub.prop(item, "character", text="")
        if not item.character and index == 0:
            sub.label(text="(scene's)")
        state = "in view" if item.in_view else (f"{item.frames} fr" if item.frames else f"id {item.face_id}")
        row.label(text=state, icon="HIDE_OFF" if item.in_view else "NONE")


def _draw_performers(layout, s) -> None:
    """The performer list: who drives which character, live and when a take is baked."""
    box = layout.box()
    box.label(text="Performers (several faces or phones)", icon="COMMUNITY")
    row = box.row()
    row.template_list("FACEMESH_UL_performers", "", s, "performers", s, "performer_index", rows=2)
    col = row.column(align=True)
    col.operator("facemesh.performers_find", text="", icon="VIEWZOOM")
    col.operator("facemesh.performer_swap", text="", icon="ARROW_LEFTRIGHT")
    col.operator("facemesh.performer_remove", text="", icon="X")
    if 0 <= s.performer_index < len(s.performers):
        p = s.performers[s.performer_index]
        box.prop(p, "performer_path")
    if not len(s.performers):
        box.label(text="one face drives the scene's character; Find Performers lists a take's faces")


def _draw_unfinished(layout) -> None:
    """Recordings a crash left behind, each with Recover and Discard."""
    from ..blender import recovery

    if not recovery.found:
        return
    box = layout.box()
    box.label(text="Unfinished recording" + ("s" if len(recovery.found) > 1 else "") + " found", icon="ERROR")
    for u in recovery.found[:4]:
        col = box.column(align=True)
        col.label(text=u.describe()[:110])
        row = col.row(align=True)
        row.operator("facemesh.recording_recover", text="Recover", icon="RECOVER_LAST").journal = str(u.journal)
        row.operator("facemesh.recording_discard", text="Discard", icon="TRASH").journal = str(u.journal)


class FACEMESH_PT_capture(_Panel, bpy.types.Panel):
    bl_label = "Capture"

    def draw(self, context):
        from ..blender import live
        from ..blender.live import PREVIEW_IMAGE

        s = context.scene.facemesh
        layout = self.layout
        st = live.status()
        _draw_unfinished(layout)
        col = layout.column()
        col.enabled = not st["running"]
        col.prop(s, "source")
        if s.source == "CAMERA":
            col.prop(s, "camera_index")
            cams = _cameras()
            if cams is not None:
                sub = col.column(align=True)
                sub.scale_y = 0.7
                for i, name in cams or [(-1, "no camera found")]:
                    sub.label(text=f"{i}: {name}" if i >= 0 else name)
        elif s.source in ("LIVELINK", "IFACIALMOCAP"):
            col.prop(s, "phone_port")
            col.prop(s, "phone_listen")
            col.prop(s, "phone_allow")
            if s.source == "IFACIALMOCAP":
                col.prop(s, "phone_address")
        else:
            col.prop(s, "video_path")
        if s.source not in ("LIVELINK", "IFACIALMOCAP"):
            col.prop(s, "num_faces")
        if s.source == "VIDEO":
            row = col.row(align=True)
            row.prop(s, "frame_start")
            row.prop(s, "frame_end")
            row = col.row(align=True)
            row.prop(s, "match_scene", toggle=True)
            row.prop(s, "add_sound", toggle=True)
            row.prop(s, "add_reference", toggle=True)
            op = layout.operator("facemesh.process_video", icon="FILE_MOVIE")
            op.filepath, op.frame_start, op.frame_end = s.video_path, s.frame_start, s.frame_end if s.frame_end else -1
            op.match_scene, op.add_sound, op.add_reference = s.match_scene, s.add_sound, s.add_reference
        elif st["running"]:
            row = layout.row(align=True)
            row.operator("facemesh.capture_stop", icon="PAUSE")
            row.prop(s, "recording", toggle=True, icon="REC")
        else:
            row = layout.row(align=True)
            row.operator("facemesh.capture_start", icon="PLAY")
            row.prop(s, "recording", toggle=True, icon="REC")
        if st["running"]:
            box = layout.box()
            box.label(text=f"{st['fps']:.0f} fps, {st['latency_ms']:.0f} ms latency, {st['dropped']} dropped")
            box.label(text="face found" if st["face"] else "no face", icon="CHECKMARK" if st["face"] else "ERROR")
            box.label(text=f"delegate: {st['delegate'] or '...'}")
            if st.get("packets"):
                box.label(text=st["packets"][:100])
            if st["delegate_reason"]:
                box.label(text=st["delegate_reason"][:80])
            if st["recording"]:
                box.label(text=f"recording: {st['recorded']} frames", icon="REC")
                if st["journal"] and st["journal"] != "on":
                    box.label(text=st["journal"][:100], icon="ERROR")
        _draw_performers(layout, s)
        if s.source != "VIDEO":
            from ..blender.options import preferences
            from ..properties import draw_smoothing

            prefs = preferences(context)
            if prefs is not None:  # the live rig's smoothing (machine-wide, in the preferences)
                draw_smoothing(layout.box(), prefs.live_smoothing, "Live Smoothing")
        if st["message"]:
            layout.label(text=st["message"][:120], icon="INFO")
        img = bpy.data.images.get(PREVIEW_IMAGE)
        if img is not None:
            layout.template_icon(icon_value=layout.icon(img), scale=8.0)


class FACEMESH_PT_performer(_Panel, bpy.types.Panel):
    bl_label = "Performer"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.facemesh
        layout = self.layout
        layout.prop(s, "performer_path")
        layout.prop(s, "use_calibration")
        row = layout.row(align=True)
        row.prop(s, "neutral_seconds")
        op = row.operator("facemesh.calibrate_neutral", text="Neutral (live)")
        op.mode = "NEUTRAL"
        op = layout.operator("facemesh.calibrate_neutral", text="Range from Last Take")
        op.mode, op.filepath = "RANGE", s.last_take
        box = layout.box()
        box.label(text="Face shape (steadier head pose)")
        row = box.row(align=True)
        row.operator("facemesh.calibrate_shape", text="From Live Capture").filepath = ""
        row.operator("facemesh.calibrate_shape", text="From File...", icon="FILEBROWSER").filepath = s.video_path
        shape = _face_shape_info(s.performer_path)
        box.prop(s, "use_face_shape")
        if shape is None:
            box.label(text="not calibrated: the average face is used")
        else:
            from ..core import faceshape

            for problem in faceshape.quality_problems(shape)[:2]:
                box.label(text=f"not used: {problem}"[:110], icon="ERROR")
            box.label(text=f"reprojection {shape.reprojection_px:.2f} px, fov {shape.fov_deg:.0f} deg")
            box.label(text=f"yaw {shape.yaw_range_deg[0]:.0f}..{shape.yaw_range_deg[1]:.0f} deg, "
                           f"pitch {shape.pitch_range_deg[0]:.0f}..{shape.pitch_range_deg[1]:.0f} deg covered")


_character_cache = {"key": None, "character": None}


def _found_character(scene):
    """The character as the add-on resolves it, re-resolved only when the picks change (the
    panel redraws often; resolving reads every key's vertices)."""
    s = scene.facemesh
    key = tuple((o.name, o.as_pointer()) if o is not None else None
                for o in (s.character, s.target_mesh, s.target_rig))
    key += (s.head_bone, s.neck_bone, s.eye_left_bone, s.eye_right_bone, len(bpy.data.objects))
    if key != _character_cache["key"]:
        from ..blender import options

        try:
            ch = options.character(scene)
        except ReferenceError:
            ch = None
        _character_cache.update(key=key, character=ch)
    return _character_cache["character"]


class FACEMESH_PT_target(_Panel, bpy.types.Panel):
    bl_label = "Character"

    def draw(self, context):
        s = context.scene.facemesh
        layout = self.layout
        layout.prop(s, "character")
        if s.character is None:
            layout.operator("facemesh.build_rig", icon="ARMATURE_DATA")
        ch = _found_character(context.scene)
        box = layout.box()
        if ch is None:
            box.label(text="pick your character (its armature, or its mesh)", icon="INFO")
        else:
            col = box.column(align=True)
            col.scale_y = 0.8
            for m in ch.meshes:
                n = len(m.data.shape_keys.key_blocks) - 1 if m.data.shape_keys else 0
                col.label(text=f"{m.name}: {n} shape keys", icon="SHAPEKEY_DATA")
            if ch.rig is not None:
                for role in ("head", "neck", "eye_left", "eye_right"):
                    bone = ch.bones.get(role)
                    col.label(text=f"{role.replace('_', ' ')}: {bone or 'not found'}",
                              icon="BONE_DATA" if bone else "ERROR")
            col.label(text=f"facing from {ch.facing_from}", icon="ORIENTATION_VIEW")
        col = layout.column(align=True)
        col.prop(s, "gaze")
        col.prop(s, "eye_range")
        layout.prop(s, "neck_share", slider=True)
        layout.prop(s, "use_location")
        sub = layout.column(align=True)
        sub.label(text="Overrides (empty: found automatically)")
        sub.prop(s, "target_mesh")
        sub.prop(s, "target_rig")
        rig = ch.rig if ch is not None else None
        if rig is not None:
            for name in ("head_bone", "neck_bone", "eye_left_bone", "eye_right_bone"):
                sub.prop_search(s, name, rig.data, "bones")


class FACEMESH_UL_undriven(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0):
        row = layout.row(align=True)
        row.label(text=item.name, icon="SHAPEKEY_DATA")
        row.label(text=item.reason)


class FACEMESH_PT_mapping(_Panel, bpy.types.Panel):
    bl_label = "Mapping"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.facemesh
        layout = self.layout
        row = layout.row(align=True)
        row.operator_menu_enum("facemesh.auto_map", "preset", text="Auto Map")
        row.operator("facemesh.mapping_load", text="", icon="FILEBROWSER")
        row.operator("facemesh.mapping_save", text="", icon="FILE_TICK")
        row = layout.row(align=True)
        row.operator("facemesh.map_by_looking", icon="HIDE_OFF")
        row.operator("facemesh.check_transfer", icon="GRAPH")
        if s.mapping_preset:
            layout.label(text=f"preset: {s.mapping_preset}")
        layout.template_list("FACEMESH_UL_mappings", "", s, "mappings", s, "mapping_index", rows=6)
        if len(s.undriven):
            layout.label(text=f"not driven: {len(s.undriven)} keys")
            layout.template_list("FACEMESH_UL_undriven", "", s, "undriven", s, "undriven_index", rows=3)
        if len(s.transfer):
            layout.label(text="transfer (correlation with the performer)")
            layout.template_list("FACEMESH_UL_undriven", "transfer", s, "transfer", s, "transfer_index", rows=3)
        if 0 <= s.mapping_index < len(s.mappings):
            item = s.mappings[s.mapping_index]
            col = layout.column(align=True)
            col.prop(item, "gain")
            col.prop(item, "offset")
            row = col.row(align=True)
            row.prop(item, "clamp_min")
            row.prop(item, "clamp_max")


class FACEMESH_PT_bake(_Panel, bpy.types.Panel):
    bl_label = "Bake"

    def draw(self, context):
        s = context.scene.facemesh
        layout = self.layout
        layout.prop(s, "missing")
        layout.prop(s, "fit_shapes")
        from ..properties import draw_smoothing

        box = layout.box()
        draw_smoothing(box, s.smoothing, "Smoothing")
        box.label(text="Takes keep raw values: change this and bake the take again", icon="INFO")
        if s.replay_error_mm >= 0:
            layout.label(text=f"shape-key replay error: {s.replay_error_mm:.2f} mm RMS")
        layout.prop(s, "take_dir")
        row = layout.row()
        row.template_list("FACEMESH_UL_takes", "", s, "takes", s, "take_index", rows=4)
        col = row.column(align=True)
        col.operator("facemesh.take_delete", text="", icon="X")
        col.operator("facemesh.bake_take", text="", icon="FILEBROWSER").filepath = ""
        row = layout.row(align=True)
        row.operator("facemesh.take_bake", icon="KEYINGSET")
        row.operator("facemesh.take_use", text="Use Action", icon="ACTION")
        row = layout.row(align=True)
        row.operator("facemesh.import_livelink", text="Import CSV", icon="IMPORT")
        row.operator("facemesh.export_livelink", text="Export CSV", icon="EXPORT")
