import bpy


def _open_live_source(context):
    """The scene's live source, opened now so a missing camera or file is reported at once."""
    from ..blender import options
    from ..core.capture.sources import CameraSource, SimulatedLiveSource, SourceError

    s = context.scene.facemesh
    if s.source == "CAMERA":
        prefs = options.preferences(context)
        # a scene that never picked a camera uses the preferences' default camera
        index = s.camera_index if s.is_property_set("camera_index") or prefs is None else prefs.default_camera
        return CameraSource(index)
    if not s.video_path:
        raise SourceError("pick a video file to play as a live source")
    return SimulatedLiveSource(bpy.path.abspath(s.video_path))


def _phone_worker(context):
    """The scene's phone app source as a PhoneWorker (not yet listening: start() binds)."""
    from ..blender import options
    from ..core.capture.phone import PhoneSettings
    from ..core.tracking.phone import PhoneWorker
    from ..properties import PHONE_SOURCES

    s = context.scene.facemesh
    allow = tuple(a.strip() for a in s.phone_allow.replace(";", ",").split(",") if a.strip())
    phone = PhoneSettings(PHONE_SOURCES[s.source], host=s.phone_listen.strip() or "0.0.0.0",
                          port=s.phone_port or None, allow=allow, phone=s.phone_address.strip())
    return PhoneWorker(phone, options.worker_settings(context, preview=False)), phone


class FACEMESH_OT_capture_start(bpy.types.Operator):
    """Start tracking the camera (or a video played as live), or listening for an iPhone app's
    stream, and drive the targets live. Esc or Stop ends it; a recording in progress is saved
    and baked"""

    bl_idname = "facemesh.capture_start"
    bl_label = "Start Capture"

    @classmethod
    def poll(cls, context):
        from ..blender import live

        return not live.running()

    def execute(self, context):
        from ..blender import live, options
        from ..core.errors import FacemeshError

        from ..properties import PHONE_SOURCES

        if context.scene.facemesh.source in PHONE_SOURCES:  # the phone tracks: no model needed here
            worker, phone = _phone_worker(context)
            try:
                live.start(context, worker)
            except FacemeshError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
            self.report({"INFO"}, f"listening for {phone.describe()}: in the app, send to this computer")
            return {"FINISHED"}
        err = options.check_model(context)
        if err:
            self.report({"ERROR"}, err)
            return {"CANCELLED"}
        if context.scene.facemesh.source == "VIDEO":
            self.report({"ERROR"}, "the source is a video file: use Process Video, or pick Camera / Video as Live")
            return {"CANCELLED"}
        try:
            source = _open_live_source(context)
        except FacemeshError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        try:
            live.start(context, source)
        except FacemeshError as exc:
            source.close()
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"capturing from {source.info.name}")
        return {"FINISHED"}

    def invoke(self, context, event):
        if self.execute(context) != {"FINISHED"}:
            return {"CANCELLED"}
        if context.window is None or not context.window_manager.modal_handler_add(self):
            return {"FINISHED"}  # the timer runs the capture; Stop in the panel ends it
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        """Only watches for Esc and for the capture ending; the timer does the work."""
        from ..blender import live

        if not live.running():
            return {"FINISHED"}
        if event.type == "ESC" and event.value == "PRESS":
            done = live.stop()
            self.report({"INFO"}, done.get("message") or "capture stopped")
            return {"FINISHED"}
        return {"PASS_THROUGH"}


class FACEMESH_OT_capture_stop(bpy.types.Operator):
    """Stop the live capture; a recording in progress is saved and baked"""

    bl_idname = "facemesh.capture_stop"
    bl_label = "Stop Capture"

    @classmethod
    def poll(cls, context):
        from ..blender import live

        return live.running()

    def execute(self, context):
        from ..blender import live

        done = live.stop()
        self.report({"INFO"}, done.get("message") or f"capture stopped after {done.get('frames_seen', 0)} frames")
        return {"FINISHED"}
