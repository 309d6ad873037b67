import bpy

PRESET_ITEMS = [("AUTO", "Automatic", "Try every preset and keep the one that matches most shape keys"),
                ("ARKIT", "ARKit", "Apple's 52 names, in any spelling (eyeBlink_L, EyeBlinkLeft, ...)"),
                ("VRM", "VRM / VRoid", "VRM 1.0 expressions and VRM 0.x / VRoid blend shapes"),
                ("RPM", "Ready Player Me", "ARKit names plus mouthOpen / mouthSmile"),
                ("CC", "Character Creator", "Reallusion CC4 names (Eye_Blink_L, Mouth_Smile_L, ...)")]


def _target_face(context, name):
    from ..blender import options

    face = bpy.data.objects.get(name) if name else options.targets(context.scene)[0]
    if face is None:
        return None, "no target mesh: pick the face mesh in the Target section (or build the capture rig)"
    if face.type != "MESH" or face.data.shape_keys is None:
        return None, f"{face.name} has no shape keys: add ARKit-named shape keys or pick another mesh"
    return face, ""


class FACEMESH_OT_auto_map(bpy.types.Operator):
    """Match the target mesh's shape keys to the 52 tracked channels by name (any case,
    underscores, side suffixes), with presets for common character standards"""

    bl_idname = "facemesh.auto_map"
    bl_label = "Auto Map"
    bl_options = {"REGISTER", "UNDO"}

    preset: bpy.props.EnumProperty(name="Preset", items=PRESET_ITEMS, default="AUTO")
    face: bpy.props.StringProperty(name="Face Mesh", description="Target mesh; empty: the scene's target")

    def execute(self, context):
        from ..blender import options
        from ..core.animation.retarget import Mapping

        face, err = _target_face(context, self.face)
        if face is None:
            self.report({"ERROR"}, err)
            return {"CANCELLED"}
        names = [kb.name for kb in face.data.shape_keys.key_blocks]
        mapping = Mapping.auto_map(names, preset=self.preset)
        if not len(mapping):
            self.report({"ERROR"}, f"none of {face.name}'s {len(names) - 1} shape keys matches a tracked channel; "
                                   "try another preset or add mappings by hand")
            return {"CANCELLED"}
        s = context.scene.facemesh
        s.target_mesh = face
        options.fill_mapping_list(context.scene, mapping)
        text = f"{len(mapping.targets)} shape keys of {face.name} mapped ({mapping.preset})"
        if mapping.unmatched_targets:
            text += f"; not driven: {', '.join(mapping.unmatched_targets[:6])}"
            text += "..." if len(mapping.unmatched_targets) > 6 else ""
        self.report({"INFO"}, text)
        return {"FINISHED"}


class FACEMESH_OT_mapping_save(bpy.types.Operator):
    """Save the mapping list (gain, offset, clamp, on/off per channel) to a JSON file"""

    bl_idname = "facemesh.mapping_save"
    bl_label = "Save Mapping"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        from ..blender import options

        m = options.mapping(context.scene, None)
        if m is None or not len(m):
            self.report({"ERROR"}, "the mapping list is empty: run Auto Map first")
            return {"CANCELLED"}
        try:
            path = m.save(bpy.path.abspath(self.filepath))
        except OSError as exc:
            self.report({"ERROR"}, f"cannot write {self.filepath}: {exc.strerror}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"saved {len(m)} mappings to {path}")
        return {"FINISHED"}

    def invoke(self, context, event):
        if not self.filepath:
            self.filepath = "mapping.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class FACEMESH_OT_mapping_load(bpy.types.Operator):
    """Load a mapping list saved as JSON"""

    bl_idname = "facemesh.mapping_load"
    bl_label = "Load Mapping"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        from ..blender import options
        from ..core.animation.retarget import Mapping, MappingError

        try:
            m = Mapping.load(bpy.path.abspath(self.filepath))
        except MappingError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        options.fill_mapping_list(context.scene, m)
        face = options.targets(context.scene)[0]
        keys = face.data.shape_keys.key_blocks if face is not None and face.data.shape_keys else {}
        absent = [t for t in m.targets if t not in keys]
        text = f"loaded {len(m)} mappings"
        if absent:
            text += f"; the target has no {', '.join(absent[:4])}"
        self.report({"WARNING"} if absent else {"INFO"}, text)
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}
