"""Live capture on Blender's side: a timer drains the worker, drives the targets, refreshes
the preview image and, when recording stops, saves and bakes the take.

One capture at a time, held in module state so the panel, the operators, the load handler
and ``unregister()`` all see (and can stop) the same one. Nothing here blocks: ``tick()``
takes a fraction of a millisecond (see bench/live.py).
"""

from __future__ import annotations

import sys
import time
from collections import deque

import bpy
import numpy as np
from bpy.app.handlers import persistent

from ..core.animation.bake import pose_to_blender, rig_channels
from ..core.tracking.live import LiveSession
from ..core.errors import FacemeshError
from ..core.tracking.worker import WorkerError
from . import jobs, options
from .takes import new_take_path, save_and_bake, save_profile
from .targets import FaceWriter, RigWriter

STARTING = "starting the tracker..."
INTERVAL = 1 / 60   # seconds between ticks: under a 30 fps camera's frame time, so latency stays low
PREVIEW_IMAGE = "FaceMesh Preview"
SWITCH_INTERVAL = 0.0005  # seconds, while a capture runs (Python's default is 0.005)


class _State:
    session: LiveSession | None = None
    face: FaceWriter | None = None
    rig: RigWriter | None = None
    profile = None
    rest: np.ndarray | None = None
    neck_share = 0.3
    use_location = False
    eye_range = 30.0
    scene_name = ""
    switch_interval: float | None = None
    shape_request = None                # (canonical, fov) while a head-turn stretch is gathered
    shape_job = None                    # the face-shape solve running on its own thread
    bake_on_stop = True
    message = ""                        # last thing worth telling the user (shown in the panel)
    tick_seconds: deque = deque(maxlen=2000)


state = _State()


def running() -> bool:
    return state.session is not None


def start(context, source, settings=None, bake_on_stop: bool = True) -> LiveSession:
    """Start a live capture from an opened source. Raises TargetError for a bad target."""
    if state.session is not None:
        raise FacemeshError("a capture is already running: stop it first")
    scene = context.scene
    prof = options.profile(scene)
    face_writer, rig_writer = _writers(scene)
    settings = settings or options.worker_settings(context, preview=True)
    scene_name = scene.name
    session = LiveSession(source, settings, meta={"fov_deg": settings.fov_deg, "values": "raw",
                                                  "live_smoothing": settings.smoothing.as_dict()},
                          take_path=lambda: new_take_path(bpy.data.scenes.get(scene_name)))
    state.session, state.face, state.rig, state.profile = session, face_writer, rig_writer, prof
    state.rest = np.asarray(prof.head_rest, np.float64) if prof is not None and prof.head_rest is not None else None
    state.neck_share, state.use_location = scene.facemesh.neck_share, scene.facemesh.use_location
    state.eye_range = scene.facemesh.eye_range
    state.scene_name = scene.name
    state.bake_on_stop = bake_on_stop
    state.message = STARTING
    state.tick_seconds.clear()
    # the worker's Python threads would otherwise hold the GIL for up to 5 ms at a time while
    # the UI thread waits; a shorter switch interval keeps Blender's ticks short (bench/live.py)
    state.switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    session.start()
    if scene.facemesh.recording:
        session.start_recording()
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=0.0)
    return session


def _writers(scene):
    """The same writers a bake uses: every keyed mesh of the character, its head/neck/eye bones
    in its own facing frame."""
    ch = options.character(scene)
    if ch is None:
        return None, None
    mapping = options.mapping(scene, ch) if ch.meshes else None
    face_writer = FaceWriter(ch.meshes, mapping) if mapping is not None and len(mapping.targets) else None
    bones = options.bones(scene, ch)
    rig_writer = RigWriter(ch.rig, bones, ch.facing) if ch.rig is not None and bones.get("head") else None
    return face_writer, rig_writer


def _check_writers() -> None:
    """Writers hold pose bones and shape keys, which Blender frees without telling Python
    (object deleted, undo, shape keys added): re-resolve them when anything changed."""
    if all(w is None or w.still_valid() for w in (state.face, state.rig)):
        return
    scene = _scene()
    try:
        state.face, state.rig = _writers(scene) if scene is not None else (None, None)
    except FacemeshError as exc:  # TargetError: the target changed into something unusable
        state.face = state.rig = None
        state.message = f"live preview paused: {exc}"


def _scene():
    """The capture's own scene (None if it was deleted meanwhile)."""
    return bpy.data.scenes.get(state.scene_name)


def tick() -> float | None:
    """The timer function: returns the next interval, or None when the capture is over."""
    session = state.session
    if session is None:
        return None
    t0 = time.perf_counter()
    try:
        sample = session.poll()
        if sample is not None:
            if state.message == STARTING:
                state.message = ""
            if session.journal_note:  # said once: the recording goes on without crash protection
                state.message, session.journal_note = session.journal_note, ""
            _check_writers()
            if sample.faces:
                apply_face(sample.faces[0])
                session.applied(sample)
            if sample.preview is not None:
                update_preview(sample)
        stretch = session.collected()
        if stretch is not None:
            if state.shape_request is not None:
                _start_shape_solve(session, stretch)
            else:
                _finish_neutral(stretch)
        if state.shape_job is not None and state.shape_job.done:
            _finish_shape()
    except WorkerError as exc:
        stop()
        state.message = f"capture stopped: {exc}. " + state.message
        return None
    except Exception as exc:  # noqa: BLE001 - a timer that raises is dropped by Blender with the threads running
        stop()
        state.message = f"capture stopped by an error: {type(exc).__name__}: {exc}. " + state.message
        return None
    state.tick_seconds.append(time.perf_counter() - t0)
    if not session.running and session.worker.finished:
        reason = session.worker.end_reason
        stop()
        state.message = state.message or f"capture ended ({reason})"
        return None
    return INTERVAL


def apply_face(face) -> None:
    """Put one tracked face on the targets (main thread), as the live smoothing shows it."""
    head_matrix, scores = face.shown
    scores = scores[None]
    if state.profile is not None:
        scores = state.profile.apply(scores)
    if state.face is not None:
        state.face.apply(scores)
    if state.rig is not None:
        if state.rest is None:
            state.rest = np.asarray(head_matrix, np.float64)  # first face seen = rest
        quats, loc = pose_to_blender(head_matrix[None], state.rest)
        state.rig.apply(rig_channels(quats, loc, scores, state.neck_share, state.use_location,
                                     state.rig.has_neck, state.eye_range))


def update_preview(sample) -> None:
    """Copy the worker's ready-made picture into the preview image (about 0.3 ms)."""
    h, w = sample.frame.shape[:2]
    img = bpy.data.images.get(PREVIEW_IMAGE)
    if img is None:
        img = bpy.data.images.new(PREVIEW_IMAGE, w, h)
    elif tuple(img.size) != (w, h):
        img.scale(w, h)
    img.pixels.foreach_set(sample.preview)
    img.update()
    if img.preview is not None:  # the panel shows the image's preview icon: refresh it
        img.preview.reload()
    _redraw()


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows if wm else ():
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "IMAGE_EDITOR"):
                area.tag_redraw()


def set_recording(context, on: bool) -> None:
    """The Record toggle: starting opens a new take; stopping saves and bakes it."""
    session = state.session
    if session is None:
        return
    if on and not session.recording:
        session.start_recording()
        state.message = "recording"  # a missing journal is said once the first frame arrives
    elif not on and session.recording:
        take = session.stop_recording()
        _keep_rest(take)
        state.message = save_and_bake(take, context.scene)["message"]


def stop(save_only: bool = False) -> dict:
    """End the capture. A recording in progress is saved (and baked unless ``save_only``):
    recorded frames are never dropped. Safe to call at any time."""
    session = state.session
    if session is None:
        return {}
    state.session = None
    state.shape_request = None
    if state.shape_job is not None and not bpy.app.timers.is_registered(_watch_shape):
        bpy.app.timers.register(_watch_shape, first_interval=0.2)  # it finishes and saves on its own
    try:
        if bpy.app.timers.is_registered(tick):
            bpy.app.timers.unregister(tick)
        take = session.stop()
    finally:
        if state.switch_interval is not None:
            sys.setswitchinterval(state.switch_interval)
            state.switch_interval = None
        state.face = state.rig = None
    out = {"frames_seen": session.frames_seen, "dropped": session.frames_dropped}
    scene = _scene()
    if scene is not None and getattr(scene, "facemesh", None) is not None and scene.facemesh.recording:
        scene.facemesh["recording"] = False  # without running the update callback again
    if take is not None:
        _keep_rest(take)
        out.update(save_and_bake(take, scene, bake=not save_only and state.bake_on_stop))
        state.message = out["message"]
    return out


def _keep_rest(take) -> None:
    """The rest pose the live preview used goes with the take, so the bake matches what was seen."""
    if take is not None and state.rest is not None:
        take.meta.setdefault("head_rest", np.asarray(state.rest).tolist())


def _finish_neutral(stretch) -> None:
    from ..core.solve.calibration import CalibrationError, calibrate_neutral

    scene = _scene()
    if scene is None:
        state.message = "neutral not taken: the capture's scene was deleted"
        return
    faces = [s.faces[0] for s in stretch if s.faces]
    present = np.array([bool(s.faces) for s in stretch])
    scores = np.array([s.faces[0].blendshapes if s.faces else np.full(52, np.nan) for s in stretch])
    mats = np.array([s.faces[0].head_matrix if s.faces else np.full((4, 4), np.nan) for s in stretch])
    base = options.saved_profile(scene)  # keep the saved range, whether or not calibration is applied
    try:
        prof = calibrate_neutral(scores, mats, present, base=base)
    except CalibrationError as exc:
        state.message = f"neutral not taken: {exc}"
        return
    try:
        path = save_profile(scene, prof)
    except OSError as exc:
        state.message = f"neutral taken but not saved: {exc}; set the performer file to a writable place"
        return
    state.profile = prof if scene.facemesh.use_calibration else None
    state.rest = np.asarray(prof.head_rest, np.float64) if prof.head_rest is not None else state.rest
    state.message = f"neutral taken from {len(faces)} frames; saved to {path}"


def collect_face_shape(seconds: float, canonical, fov) -> None:
    """Gather the next ``seconds`` of head turns, then solve the performer's face shape on a
    background thread; the result goes into the performer file."""
    state.shape_request = (canonical, fov)
    state.session.collect(seconds)
    state.message = f"turn your head slowly left and right, then up and down ({seconds:.0f} s)"


def _start_shape_solve(session, stretch) -> None:
    from ..core import faceshape
    from ..core.tracking.live import BackgroundJob

    canonical, fov = state.shape_request
    state.shape_request = None
    info = session.worker.source.info
    state.shape_job = BackgroundJob(faceshape.from_samples, stretch, info.width, info.height, canonical, fov)
    state.message = f"solving the face shape from {len(stretch)} frames..."


def _watch_shape() -> float | None:
    """Timer: a face-shape solve that outlived its capture still gets saved when it ends."""
    if state.shape_job is None:
        return None
    if not state.shape_job.done:
        return 0.2
    _finish_shape()
    return None


def _finish_shape() -> None:
    from .takes import store_face_shape

    job, state.shape_job = state.shape_job, None
    if job is None or not job.done:
        return
    scene = _scene()
    if job.error is not None:
        state.message = f"face shape not changed: {job.error}"
    elif scene is None:
        state.message = "face shape not saved: the capture's scene was deleted"
    else:
        try:
            state.message = store_face_shape(scene, job.result) + " (used from the next capture)"
        except OSError as exc:
            state.message = f"face shape not saved: {exc}"


def status() -> dict:
    """What the panel shows."""
    s = state.session
    ticks = np.asarray(state.tick_seconds) * 1000.0
    if s is None:
        return {"running": False, "message": state.message}
    return {"running": True, "recording": s.recording, "fps": s.fps, "latency_ms": s.latency_ms,
            "face": s.face_found, "delegate": s.delegate, "delegate_reason": s.delegate_reason,
            "dropped": s.frames_dropped, "frames": s.frames_seen,
            "recorded": len(s.take) if s.take is not None else 0,
            "tick_ms": float(np.median(ticks)) if len(ticks) else 0.0, "message": state.message,
            "collecting": s.collecting, "solving": state.shape_job is not None,
            "journal": _journal_state(s)}


def _journal_state(session) -> str:
    """"on" while the recording streams to its journal, else why not ("" when not recording)."""
    take = session.take
    if not session.recording or take is None:
        return ""
    if take.journal is None:
        return "no crash protection (the journal could not be written)"
    return take.journal.error or "on"


@persistent
def on_load_pre(*_args) -> None:
    """Opening another file ends the capture; a recording is saved, not baked into a scene
    that is going away."""
    stop(save_only=True)


def register() -> None:
    if on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(on_load_pre)


def unregister() -> None:
    try:
        jobs.stop_all()
        stop(save_only=True)
        if bpy.app.timers.is_registered(_watch_shape):
            bpy.app.timers.unregister(_watch_shape)
        state.shape_job = None  # a daemon thread; its result is dropped with the add-on
    finally:
        if on_load_pre in bpy.app.handlers.load_pre:
            bpy.app.handlers.load_pre.remove(on_load_pre)
