import bpy

from ..blender import jobs
from .modal import ModalProgress


class _Job:
    """One video through the worker into a take. File sources never drop frames."""

    def __init__(self, context, path, start, end):
        from ..blender import options
        from ..core.capture.sources import FrameRange, VideoFileSource
        from ..core.tracking.worker import CaptureWorker, new_take

        source = FrameRange(VideoFileSource(path), start, end)
        settings = options.worker_settings(context)
        info = source.info
        self.total = info.frame_count or 0
        self.take = new_take(info, settings, source_extra={"start_frame": start})
        self.worker = CaptureWorker(source, settings).start()
        jobs.running.add(self)

    def step(self) -> bool:
        """Move finished samples into the take; True once the whole file is done."""
        running = self.worker.running  # read first: once stopped, everything is already queued
        for s in self.worker.drain():
            self.take.append(s)
        return self.worker.finished or not running

    def run(self, on_progress) -> None:
        """Blocking: the whole file (for scripts and headless Blender)."""
        try:
            for i, s in enumerate(self.worker, 1):
                self.take.append(s)
                if i % 10 == 0:
                    on_progress(self.progress)
        finally:
            self.cancel()

    @property
    def progress(self) -> float:
        return min(1.0, len(self.take) / self.total) if self.total else 0.0

    def cancel(self):
        self.worker.stop()
        jobs.running.discard(self)


class FACEMESH_OT_process_video(ModalProgress, bpy.types.Operator):
    """Track every frame of a video file, save the take, and bake it onto the targets.
    Esc cancels (nothing is written)"""

    bl_idname = "facemesh.process_video"
    bl_label = "Process Video"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Video", subtype="FILE_PATH")
    frame_start: bpy.props.IntProperty(name="First Frame", min=0, default=0,
                                       description="First video frame to track (0-based)")
    frame_end: bpy.props.IntProperty(name="Last Frame", min=-1, default=-1,
                                     description="Last video frame to track (-1: to the end)")
    character: bpy.props.StringProperty(name="Character", description="Character object; empty: the scene's")
    face: bpy.props.StringProperty(name="Face Mesh", description="Target mesh; empty: the scene's target")
    rig: bpy.props.StringProperty(name="Armature", description="Target armature; empty: the scene's target")
    bake: bpy.props.BoolProperty(name="Bake", default=True)
    match_scene: bpy.props.BoolProperty(name="Match Scene", default=False,
                                        description="Set the scene's fps and frame range from the video")
    add_sound: bpy.props.BoolProperty(name="Add Sound", default=True,
                                      description="Add the video's audio as a sound strip lined up with the keys")
    add_reference: bpy.props.BoolProperty(name="Reference Camera", default=False,
                                          description="A camera with the video as its background, for checking by eye")

    _job = None

    def _start(self, context):
        from ..core.errors import FacemeshError

        path = bpy.path.abspath(self.filepath or context.scene.facemesh.video_path)
        if not path:
            self.report({"ERROR"}, "pick a video file to process")
            return False
        from ..blender import options

        err = options.check_model(context) or self._check_targets(context)
        if not err and self.bake and options.targets(context.scene) == (None, None):
            err = "no character to bake onto: pick your character, or build the capture rig (or turn Bake off)"
        if err:
            self.report({"ERROR"}, err)
            return False
        try:
            self._job = _Job(context, path, self.frame_start, None if self.frame_end < 0 else self.frame_end)
        except FacemeshError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _check_targets(self, context):
        """Named targets override the scene's; a name that does not exist is an error."""
        s = context.scene.facemesh
        for attr, kinds, prop in (("character", ("ARMATURE", "MESH", "EMPTY"), "character"),
                                  ("face", ("MESH",), "target_mesh"), ("rig", ("ARMATURE",), "target_rig")):
            name = getattr(self, attr)
            if not name:
                continue
            obj = bpy.data.objects.get(name)
            if obj is None or obj.type not in kinds:
                return f"no {'character' if attr == 'character' else kinds[0].lower()} object named {name!r}"
            setattr(s, prop, obj)
        return ""

    def _finish(self, context):
        from ..blender.sync import add_reference_camera, add_sound_strip, match_scene_to_take
        from ..blender.takes import bake_with_scene, describe, save_take
        from ..core.errors import FacemeshError

        take = self._job.take
        self._job.cancel()
        if not len(take) or not take.face_present.any():
            self.report({"ERROR"}, f"no face found in {len(take)} frames of the video: nothing to bake; "
                                   "check the video shows a face, lit and facing the camera")
            return {"CANCELLED"}
        try:
            path = save_take(take, context.scene, stem="video")
        except OSError as exc:
            self.report({"ERROR"}, f"could not save the take: {exc}; check the takes folder")
            return {"CANCELLED"}
        scene = context.scene
        if self.match_scene:
            match_scene_to_take(scene, take)
        text = f"take saved to {path.name}"
        if self.bake:
            try:
                done = bake_with_scene(context, take, path=path)
            except FacemeshError as exc:
                self.report({"ERROR"}, f"saved the take to {path.name} but could not bake: {exc}")
                return {"CANCELLED"}
            text = f"{describe(done)}; {text}"
        video = take.source.get("name", "")
        if self.add_sound and video:
            strip = add_sound_strip(scene, video, take)
            text += "; sound strip added" if strip is not None else "; the video has no sound"
        if self.add_reference and video:
            from ..blender import options
            from ..blender.bake import is_capture_face
            from ..core.camera import DEFAULT_FOV_DEG

            fov = take.meta.get("fov_deg") or DEFAULT_FOV_DEG
            face = options.targets(scene)[0]
            try:
                prof = options.profile(scene)
            except FacemeshError:
                prof = None
            rest = prof.head_rest if prof is not None and prof.head_rest is not None else take.meta.get("head_rest")
            add_reference_camera(scene, video, take, fov, face if is_capture_face(face) else None, rest)
            text += "; reference camera added"
            scene_fps = scene.render.fps / scene.render.fps_base
            if abs(scene_fps - take.fps) > 1e-3:
                # a movie clip plays one frame per scene frame: it only stays in step at its own rate
                text += (f" (the video is {take.fps:g} fps and the scene {scene_fps:g} fps, so the background "
                         "drifts: turn on Match Scene)")
        self.report({"WARNING"} if "WARNING:" in text else {"INFO"}, text)
        return {"FINISHED"}

    def execute(self, context):
        """Scripts and headless runs: the same work, blocking, with progress in the console."""
        from ..core.tracking.worker import WorkerError

        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, 100)
        try:
            self._job.run(lambda p: wm.progress_update(int(p * 100)))
        except WorkerError as exc:
            self.report({"ERROR"}, f"tracking failed: {exc}")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        return self._finish(context)

    def invoke(self, context, event):
        if context.window is None:  # no window to run modal in (scripts): do it blocking
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        if not wm.modal_handler_add(self):
            self._job.cancel()
            return self.execute(context)
        self._begin_modal(context)
        return {"RUNNING_MODAL"}

    def cancel(self, context):
        """Blender ends the operator itself (file loaded, window closed): stop the threads."""
        if self._job is not None:
            self._job.cancel()
        self._end_modal(context)

    def modal(self, context, event):
        from ..core.tracking.worker import WorkerError

        if event.type == "ESC":
            self._job.cancel()
            self._end_modal(context)
            self.report({"WARNING"}, "video processing cancelled; nothing was baked")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = self._job.step()
        except WorkerError as exc:
            self._end_modal(context)
            self.report({"ERROR"}, f"tracking failed: {exc}")
            return {"CANCELLED"}
        p = self._job.progress
        self._progress(context, p, f"FaceMesh: tracking {len(self._job.take)}/{self._job.total or '?'} frames "
                              f"({p:.0%}), Esc to cancel")
        if not done:
            return {"RUNNING_MODAL"}
        self._end_modal(context)
        return self._finish(context)
