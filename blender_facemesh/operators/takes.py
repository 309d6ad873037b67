import bpy


def _current(context, index):
    s = context.scene.facemesh
    i = s.take_index if index < 0 else index
    return (s.takes[i], i) if 0 <= i < len(s.takes) else (None, i)


def _selected(op, context):
    """The take the operator works on, or None after reporting that there is none."""
    item, _ = _current(context, op.index)
    if item is None:
        op.report({"ERROR"}, "no take selected: record or process one first")
    return item


class FACEMESH_OT_take_bake(bpy.types.Operator):
    """Bake the selected take onto the current targets (pick another target first to re-bake
    the take onto it)"""

    bl_idname = "facemesh.take_bake"
    bl_label = "Bake Selected Take"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"})

    def execute(self, context):
        item = _selected(self, context)
        if item is None:
            return {"CANCELLED"}
        try:
            return bpy.ops.facemesh.bake_take(filepath=item.filepath)
        except RuntimeError as exc:  # bake_take reported the error; say it here instead of a traceback
            self.report({"ERROR"}, str(exc).replace("Error: ", "", 1).strip())
            return {"CANCELLED"}


class FACEMESH_OT_take_use(bpy.types.Operator):
    """Put the selected take's baked action back on the character (armature and every mesh's
    shape keys); the other takes' actions stay in the file"""

    bl_idname = "facemesh.take_use"
    bl_label = "Use Take's Action"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"})

    def execute(self, context):
        from ..blender import options
        from ..blender.keyframes import assign_action, take_actions
        from ..blender.takes import take_name

        item = _selected(self, context)
        if item is None:
            return {"CANCELLED"}
        action = take_actions().get(take_name(item.filepath))
        if action is None:
            self.report({"ERROR"}, f"take {item.name} has not been baked in this file: bake it first")
            return {"CANCELLED"}
        ch = options.character(context.scene)
        if ch is None:
            self.report({"ERROR"}, "no character: pick your character first")
            return {"CANCELLED"}
        slots = {(s.target_id_type, s.name_display) for s in action.slots}
        ids = [ch.rig] if ch.rig is not None else []
        ids += [m.data.shape_keys for m in ch.meshes if m.data.shape_keys is not None]
        used = [i for i in ids if (i.id_type, i.name) in slots]
        for id_data in used:
            assign_action(id_data, action)
        if not used:
            self.report({"ERROR"}, f"{action.name} was baked onto another character: bake the take onto {ch.name}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{action.name} is on {ch.name} ({len(used)} slots)")
        return {"FINISHED"}


class FACEMESH_OT_take_delete(bpy.types.Operator):
    """Remove the selected take from the list, and its file too if asked"""

    bl_idname = "facemesh.take_delete"
    bl_label = "Delete Take"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"})
    delete_file: bpy.props.BoolProperty(name="Delete the File", default=False)

    def execute(self, context):
        import os

        s = context.scene.facemesh
        item, i = _current(context, self.index)
        if item is None:
            self.report({"ERROR"}, "no take selected")
            return {"CANCELLED"}
        path = bpy.path.abspath(item.filepath)
        name = item.name
        if self.delete_file and os.path.isfile(path):
            try:
                os.remove(path)
            except OSError as exc:
                self.report({"ERROR"}, f"could not delete {path}: {exc.strerror}")
                return {"CANCELLED"}
        s.takes.remove(i)
        s.take_index = min(i, len(s.takes) - 1)
        if bpy.path.abspath(s.last_take) == path:
            s.last_take = s.takes[s.take_index].filepath if len(s.takes) else ""
        self.report({"INFO"}, f"take {name} removed" + (" and its file deleted" if self.delete_file else ""))
        return {"FINISHED"}

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

