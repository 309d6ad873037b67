import bpy


def _solve_from_file(path, canonical, fov, settings):
    """Runs on a background thread: no bpy here."""
    from ..core import faceshape
    from ..core.capture.sources import open_source
    from ..core.take import Take
    from ..core.tracking.worker import track_take

    if path.lower().endswith(".csv"):
        from ..core.formats.livelink import read_csv

        take = read_csv(path)
    elif path.lower().endswith((".npz", ".json")):
        take = Take.load(path)
    else:
        take = track_take(open_source(path), settings)
    return faceshape.from_take(take, canonical, fov_deg=fov)


class FACEMESH_OT_calibrate_shape(bpy.types.Operator):
    """Solve the performer's own 3D face from a few seconds of slow head turns (relaxed face), for
    a steadier head pose than the average face gives. From the live capture, a video or a take"""

    bl_idname = "facemesh.calibrate_shape"
    bl_label = "Calibrate Face Shape"

    filepath: bpy.props.StringProperty(name="Video or Take", subtype="FILE_PATH",
                                       description="Empty: the next seconds of the running live capture")
    seconds: bpy.props.FloatProperty(name="Length (s)", min=2.0, max=30.0, default=6.0)
    fov: bpy.props.FloatProperty(name="Field of View", min=0.0, max=150.0, default=0.0,
                                 description="The camera's vertical field of view; 0: the one in the add-on "
                                             "preferences (an estimate from head turns runs 8-14 degrees high)")

    _job = None
    _timer = None

    def _start(self, context):
        from ..blender import live, options
        from ..core.tracking.live import BackgroundJob
        from ..core.capture.model import ModelError, load_model

        try:
            canonical = load_model(options.model_path(context)).canonical_vertices
        except ModelError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        prefs = options.preferences(context)
        fov = self.fov or (prefs.fov_deg if prefs is not None else None)
        if not self.filepath:
            if not live.running():
                self.report({"ERROR"}, "start a live capture first, or pick a video or take of the head turns")
                return False
            if live.state.session.collecting or live.state.shape_job is not None:
                self.report({"ERROR"}, "a calibration is already under way: wait for it to finish")
                return False
            live.collect_face_shape(self.seconds, canonical, fov)
            self.report({"INFO"}, f"turn your head slowly left and right, then up and down, for {self.seconds:.0f} s, "
                                  "keeping a relaxed face")
            return "LIVE"
        settings = options.worker_settings(context)
        settings.face_shape = None  # the landmarks a take records are raw whatever the live smoothing
        self._job = BackgroundJob(_solve_from_file, bpy.path.abspath(self.filepath), canonical, fov, settings)
        return True

    def _finish(self, context):
        from ..core.errors import FacemeshError

        err = self._job.error
        if isinstance(err, FacemeshError):
            self.report({"ERROR"}, f"face shape not changed: {err}")
            return {"CANCELLED"}
        if err is not None:
            self.report({"ERROR"}, f"face shape not changed: {type(err).__name__}: {err}")
            return {"CANCELLED"}
        try:
            from ..blender.takes import store_face_shape

            self.report({"INFO"}, store_face_shape(context.scene, self._job.result))
        except OSError as exc:
            self.report({"ERROR"}, f"could not save the performer file: {exc}")
            return {"CANCELLED"}
        return {"FINISHED"}

    def execute(self, context):
        started = self._start(context)
        if started == "LIVE":
            return {"FINISHED"}
        if not started:
            return {"CANCELLED"}
        self._job.wait()
        return self._finish(context)

    def invoke(self, context, event):
        started = self._start(context)
        if started == "LIVE":
            return {"FINISHED"}
        if not started:
            return {"CANCELLED"}
        wm = context.window_manager
        if context.window is None or not wm.modal_handler_add(self):
            self._job.wait()
            return self._finish(context)
        self._timer = wm.event_timer_add(0.2, window=context.window)
        context.workspace.status_text_set("FaceMesh: solving the performer's face shape...")
        return {"RUNNING_MODAL"}

    def cancel(self, context):
        """Blender ended the operator (file loaded, window closed): drop the timer and status."""
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def modal(self, context, event):
        if event.type != "TIMER" or not self._job.done:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        return self._finish(context)
