import bpy

from .modal import ModalProgress


class _Cancelled(Exception):
    pass


class _Reading:
    """What the reading thread shares with the operator: plain Python, never bpy (the thread
    must not touch Blender's data, the operator included)."""

    def __init__(self):
        self.progress, self.stop = 0.0, False

    def update(self, p):
        if self.stop:
            raise _Cancelled
        self.progress = p


def _read(path, fps, reading):
    from ..core.formats.livelink import read_csv

    return read_csv(path, fps=fps, progress=reading.update)


class FACEMESH_OT_import_livelink(ModalProgress, bpy.types.Operator):
    """Import a Live Link Face CSV (Epic's iPhone app) as a take, and bake it onto the targets.
    A big file is read on its own thread with progress in the status bar; Esc cancels"""

    bl_idname = "facemesh.import_livelink"
    bl_label = "Import Live Link Face CSV"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})
    fps: bpy.props.FloatProperty(name="Timecode fps", min=0.0, max=1000.0, default=0.0,
                                 description="The recording's timecode rate; 0: read it from the timecodes")
    bake: bpy.props.BoolProperty(name="Bake", default=True)

    _job = None
    _reading = None

    def _finish(self, context, take):
        from ..blender.takes import bake_with_scene, describe, save_take
        from ..core.errors import FacemeshError

        try:
            path = save_take(take, context.scene, stem="livelink")
        except OSError as exc:
            self.report({"ERROR"}, f"could not save the take: {exc}")
            return {"CANCELLED"}
        text = f"imported {len(take)} frames at {take.fps:g} fps as {path.name}"
        if self.bake:
            try:
                done = bake_with_scene(context, take, path=path)
                text += "; " + describe(done)
            except FacemeshError as exc:
                self.report({"WARNING"}, f"{text}; not baked: {exc}")
                return {"FINISHED"}
        self.report({"WARNING"} if "WARNING:" in text else {"INFO"}, text)
        return {"FINISHED"}

    def _failed(self, exc):
        from ..core.errors import FacemeshError

        if isinstance(exc, _Cancelled):
            self.report({"WARNING"}, "import cancelled; nothing was imported")
        elif isinstance(exc, FacemeshError):
            self.report({"ERROR"}, str(exc))
        elif isinstance(exc, MemoryError):
            self.report({"ERROR"}, f"{self.filepath} is too big to import in the memory free here")
        else:
            self.report({"ERROR"}, f"cannot import {self.filepath}: {type(exc).__name__}: {exc}")
        return {"CANCELLED"}

    def execute(self, context):
        from ..core.tracking.live import BackgroundJob

        path = bpy.path.abspath(self.filepath)
        wm = context.window_manager
        if context.window is None or bpy.app.background:  # scripts and headless runs: read here, blocking
            try:
                take = _read(path, self.fps or None, _Reading())
            except Exception as exc:  # noqa: BLE001 - every failure is an operator report
                return self._failed(exc)
            return self._finish(context, take)
        self._reading = _Reading()
        self._job = BackgroundJob(_read, path, self.fps or None, self._reading, name="facemesh-csv")
        if not wm.modal_handler_add(self):
            self._job.wait()
            return self._picked_up(context)
        self._begin_modal(context)
        return {"RUNNING_MODAL"}

    def _picked_up(self, context):
        err = self._job.error
        return self._failed(err) if err is not None else self._finish(context, self._job.result)

    def cancel(self, context):
        """Blender ended the operator (file loaded, window closed): stop reading."""
        self._reading.stop = True
        self._end_modal(context)

    def modal(self, context, event):
        if event.type == "ESC":
            self._reading.stop = True
            self._job.wait()
            self._end_modal(context)
            self.report({"WARNING"}, "import cancelled; nothing was imported")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not self._job.done:
            p = self._reading.progress
            self._progress(context, p, f"FaceMesh: reading {bpy.path.basename(self.filepath)} "
                                       f"({p:.0%}), Esc to cancel")
            return {"RUNNING_MODAL"}
        self._end_modal(context)
        return self._picked_up(context)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class FACEMESH_OT_export_livelink(bpy.types.Operator):
    """Export the selected take as a Live Link Face CSV, for Unreal, Maya or Faceit (a take with
    several performers: a CSV each, named after them)"""

    bl_idname = "facemesh.export_livelink"
    bl_label = "Export Live Link Face CSV"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})
    take: bpy.props.StringProperty(name="Take", subtype="FILE_PATH",
                                   description="Take file; empty: the take selected in the list")

    def _source(self, context):
        s = context.scene.facemesh
        if self.take:
            return self.take
        if 0 <= s.take_index < len(s.takes):
            return s.takes[s.take_index].filepath
        return s.last_take

    def execute(self, context):
        from ..core.errors import FacemeshError
        from ..core.formats.livelink import write_csv_per_face
        from ..core.take import Take

        src = self._source(context)
        if not src:
            self.report({"ERROR"}, "no take to export: record, process or import one first")
            return {"CANCELLED"}
        import os

        dest = bpy.path.abspath(self.filepath)
        if not self.filepath or os.path.isdir(dest):
            self.report({"ERROR"}, "give the .csv file to write")
            return {"CANCELLED"}
        try:
            from ..blender.options import bake_smoothing
            from ..core.solve.smoothing import smooth_take

            take = smooth_take(Take.load(bpy.path.abspath(src)), bake_smoothing(context.scene))
            paths = write_csv_per_face(take, dest)  # one per performer when the take has several
        except FacemeshError as exc:
            self.report({"ERROR"}, f"cannot export: {exc}")
            return {"CANCELLED"}
        except OSError as exc:
            self.report({"ERROR"}, f"cannot write {self.filepath}: {exc.strerror}")
            return {"CANCELLED"}
        self.report({"INFO"}, "wrote " + ", ".join(str(p) for p in paths))
        return {"FINISHED"}

    def invoke(self, context, event):
        import os

        src = self._source(context)
        if not self.filepath and src:
            self.filepath = os.path.splitext(bpy.path.abspath(src))[0] + ".csv"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}
