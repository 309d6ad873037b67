import bpy

PRESET_ITEMS = [("AUTO", "Automatic", "Try every preset and keep the one that matches most shape keys"),
                ("ARKIT", "ARKit", "Apple's 52 names, in any spelling (eyeBlink_L, EyeBlinkLeft, ...)"),
                ("VRM", "VRM / VRoid", "VRM 1.0 expressions and VRM 0.x / VRoid blend shapes"),
                ("RPM", "Ready Player Me", "ARKit names plus mouthOpen / mouthSmile"),
                ("CC", "Character Creator", "Reallusion CC4 names (Eye_Blink_L, Mouth_Smile_L, ...)"),
                ("UNIFIED", "Unified Expressions", "VRChat face-tracking names (EyeClosedLeft, MouthCornerPullLeft, ...)"),
                ("METAHUMAN", "MetaHuman", "MetaHuman control curves (CTRL_expressions_jawOpen, ...)")]


def _character(context, name):
    """The character whose keys are mapped: the scene's, or the named mesh (which becomes the
    scene's face mesh override)."""
    from ..blender import options

    s = context.scene.facemesh
    if name:
        face = bpy.data.objects.get(name)
        if face is None or face.type != "MESH" or face.data.shape_keys is None:
            what = face.name if face is not None else name
            return None, f"{what} has no shape keys: add ARKit-named shape keys or pick another mesh"
        s.target_mesh = face
    ch = options.character(context.scene)
    if ch is None:
        return None, "no character: pick your character in the Character panel (or build the capture rig)"
    if not ch.meshes:
        return None, f"{ch.name} has no mesh with shape keys: add ARKit-named shape keys or pick another character"
    return ch, ""


class FACEMESH_OT_auto_map(bpy.types.Operator):
    """Match the character's shape keys (on all its meshes) to the 52 tracked channels by name
    (any case, underscores, side suffixes), with presets for common character standards; keys
    that deform nothing are passed over"""

    bl_idname = "facemesh.auto_map"
    bl_label = "Auto Map"
    bl_options = {"REGISTER", "UNDO"}

    preset: bpy.props.EnumProperty(name="Preset", items=PRESET_ITEMS, default="AUTO")
    face: bpy.props.StringProperty(name="Face Mesh", description="Mesh to map; empty: the scene's character")

    def execute(self, context):
        from ..blender import options
        from ..core.animation.retarget import Mapping

        ch, err = _character(context, self.face)
        if ch is None:
            self.report({"ERROR"}, err)
            return {"CANCELLED"}
        names = ch.key_names
        mapping = Mapping.auto_map(names, preset=self.preset, moving=ch.moving)
        if not len(mapping):
            self.report({"ERROR"}, f"none of {ch.name}'s {len(names)} shape keys matches a tracked channel; "
                                   "try Map by Looking, another preset, or add mappings by hand")
            return {"CANCELLED"}
        options.fill_mapping_list(context.scene, mapping)
        text = (f"{len(mapping.targets)} shape keys of {ch.name} mapped ({mapping.preset}) on "
                f"{len(ch.meshes)} mesh{'es' if len(ch.meshes) != 1 else ''}")
        n_undriven = len(context.scene.facemesh.undriven)
        if n_undriven:
            text += f"; {n_undriven} keys not driven (listed in the Mapping panel)"
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
        ch = options.character(context.scene)
        keys = set(ch.key_names) if ch is not None else set()
        absent = [t for t in m.targets if t not in keys]
        text = f"loaded {len(m)} mappings"
        if absent:
            text += f"; the target has no {', '.join(absent[:4])}"
        self.report({"WARNING"} if absent else {"INFO"}, text)
        return {"FINISHED"}

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}
