import bpy


def _current(context, index):
    s = context.scene.facemesh
    i = s.take_index if index < 0 else index
    return (s.takes[i], i) if 0 <= i < len(s.takes) else (None, i)


class FACEMESH_OT_take_bake(bpy.types.Operator):
    """Bake the selected take onto the current targets (pick another target first to re-bake
    the take onto it)"""

    bl_idname = "facemesh.take_bake"
    bl_label = "Bake Selected Take"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"})

    def execute(self, context):
        item, _ = _current(context, self.index)
        if item is None:
            self.report({"ERROR"}, "no take selected: record or process one first")
            return {"CANCELLED"}
        try:
            return bpy.ops.facemesh.bake_take(filepath=item.filepath)
        except RuntimeError as exc:  # bake_take reported the error; say it here instead of a traceback
            self.report({"ERROR"}, str(exc).replace("Error: ", "", 1).strip())
            return {"CANCELLED"}


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

