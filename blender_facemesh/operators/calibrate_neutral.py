import bpy


class FACEMESH_OT_calibrate_neutral(bpy.types.Operator):
    """Calibrate the performer: a relaxed-face stretch gives each channel's zero (Neutral), a
    take with full expressions gives each channel's full value (Range). Saved to the performer
    file and applied to later bakes"""

    bl_idname = "facemesh.calibrate_neutral"
    bl_label = "Calibrate Performer"

    filepath: bpy.props.StringProperty(
        name="Take or Video", subtype="FILE_PATH",
        description="A take (.npz/.json) or video to calibrate from; empty: the running live capture")
    mode: bpy.props.EnumProperty(
        name="Mode", default="NEUTRAL",
        items=[("NEUTRAL", "Neutral", "A stretch of relaxed face, looking at the camera"),
               ("RANGE", "Range", "A take showing each expression at its fullest")])
    start: bpy.props.FloatProperty(name="Start (s)", min=0.0, default=0.0)
    duration: bpy.props.FloatProperty(name="Length (s)", min=0.0, default=0.0,
                                      description="0: the scene's neutral length")

    def execute(self, context):
        from ..blender import live, options
        from ..blender.takes import save_profile
        from ..core.errors import FacemeshError

        s = context.scene.facemesh
        seconds = self.duration or s.neutral_seconds
        if not self.filepath:
            if self.mode != "NEUTRAL" or not live.running():
                self.report({"ERROR"}, "start a live capture first, or pick a take or video to calibrate from")
                return {"CANCELLED"}
            if live.state.session.collecting or live.state.shape_job is not None:
                self.report({"ERROR"}, "a calibration is already under way: wait for it to finish")
                return {"CANCELLED"}
            live.state.shape_request = None
            live.state.session.collect(seconds)
            self.report({"INFO"}, f"hold a relaxed face, looking at the camera, for {seconds:.1f} s")
            return {"FINISHED"}
        # the performer selected in the list (their face, their file); none listed: the first face, the scene's file
        performer, face_id = live._active_performer(context.scene)
        try:
            take = self._load(context, bpy.path.abspath(self.filepath),
                              None if self.mode == "RANGE" else self.start + seconds + 0.5)
            base = options.saved_profile(context.scene, performer)  # a new performer file replaces a broken one
            prof = self._calibrate(take, base, seconds, face_id if face_id in take.face_counts() else None)
        except FacemeshError as exc:
            self.report({"ERROR"}, f"calibration not changed: {exc}")
            return {"CANCELLED"}
        path = save_profile(context.scene, prof, performer)
        if live.running():
            live.use_calibration(context.scene, face_id, prof, rest=False)
        who = f" ({performer.name})" if performer is not None and performer.name else ""
        self.report({"INFO"}, f"performer{who} {self.mode.lower()} calibrated from {prof.frames} frames; "
                              f"saved to {path}")
        return {"FINISHED"}

    def _load(self, context, path, until_s):
        """A take file as is, or a video tracked now (only as far as the stretch needs)."""
        from ..blender import options
        from ..core.capture.sources import FrameRange, VideoFileSource
        from ..core.take import Take
        from ..core.tracking.worker import track_take

        if path.lower().endswith((".npz", ".json")):
            return Take.load(path)
        src = VideoFileSource(path)
        if until_s is not None:
            src = FrameRange(src, 0, int(until_s * src.info.fps))
        return track_take(src, options.worker_settings(context))

    def _calibrate(self, take, base, seconds, face_id=None):
        from ..core.solve.calibration import CalibrationError, calibrate_range, neutral_from_take

        if self.mode == "NEUTRAL":
            # base: the performer's ranges, name and saved face shape (extra) carry over
            return neutral_from_take(take, start_s=self.start, duration_s=seconds, face_id=face_id, base=base)
        if base is None:
            raise CalibrationError("calibrate the neutral first: the range is measured from it")
        track = take.face_track(face_id)
        return calibrate_range(track["blendshapes"], track["present"], base)
