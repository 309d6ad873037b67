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
from dataclasses import dataclass

import bpy
import numpy as np
from bpy.app.handlers import persistent

from ..core.animation.bake import live_rig_channels
from ..core.rotations import rotation_part
from ..core.tracking.live import LiveSession
from ..core.errors import FacemeshError
from ..core.tracking.worker import WorkerError
from . import jobs, options
from .images import show_pixels
from .takes import new_take_path, save_and_bake, save_profile
from .targets import FaceWriter, RigWriter

STARTING = "starting the tracker..."
INTERVAL = 1 / 60   # seconds between ticks: under a 30 fps camera's frame time, so latency stays low
PREVIEW_IMAGE = "FaceMesh Preview"
SWITCH_INTERVAL = 0.0005  # seconds, while a capture runs (Python's default is 0.005)


@dataclass
class Driver:
    """What one performer's face drives live: their character's keys and bones, calibration and rest."""
    face: FaceWriter | None
    rig: RigWriter | None
    profile: object = None
    rest: np.ndarray | None = None
    name: str = ""
    rest_rotation: np.ndarray | None = None  # rotation_part(rest), worked out when the rest is set

    def __post_init__(self):
        self.set_rest(self.rest)

    def set_rest(self, pose) -> None:
        """The pose that counts as "no turn" for this performer's rig (None: the next face seen)."""
        self.rest = None if pose is None else np.asarray(pose, np.float64)
        self.rest_rotation = None if pose is None else rotation_part(self.rest)

    def still_valid(self) -> bool:
        return all(w is None or w.still_valid() for w in (self.face, self.rig))


class _State:
    session: LiveSession | None = None
    drivers: dict = {}                  # face id (None: the first face seen) -> Driver
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
    seen: dict = {}                     # face id -> session time last seen (the performer list's "in view")
    seen_listed = 0.0                   # when the list's flags were last refreshed


state = _State()


def running() -> bool:
    return state.session is not None


def start(context, source, settings=None, bake_on_stop: bool = True) -> LiveSession:
    """Start a live capture from an opened source (or a phone's PhoneWorker). Raises
    TargetError for a bad target, PhoneError for a port in use; nothing is left running then."""
    if state.session is not None:
        raise FacemeshError("a capture is already running: stop it first")
    scene = context.scene
    drivers = _drivers(scene)
    settings = settings or options.worker_settings(context, preview=True)
    scene_name = scene.name
    session = LiveSession(source, settings, meta={"fov_deg": settings.fov_deg, "values": "raw",
                                                  "live_smoothing": settings.smoothing.as_dict()},
                          take_path=lambda: new_take_path(bpy.data.scenes.get(scene_name)))
    session.start()  # a phone's socket is bound here: a port in use raises before anything is set
    state.session, state.drivers = session, drivers
    state.neck_share, state.use_location = scene.facemesh.neck_share, scene.facemesh.use_location
    state.eye_range = scene.facemesh.eye_range
    state.scene_name = scene.name
    state.bake_on_stop = bake_on_stop
    state.message = STARTING
    state.tick_seconds.clear()
    state.seen = {}
    # the worker's Python threads would otherwise hold the GIL for up to 5 ms at a time while
    # the UI thread waits; a shorter switch interval keeps Blender's ticks short (bench/live.py)
    state.switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    if scene.facemesh.recording:
        session.start_recording()
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=0.0)
    return session


def _writers_for(ch, mapping, bones):
    """The same writers a bake uses: every keyed mesh of the character, its head/neck/eye bones
    in its own facing frame."""
    face_writer = FaceWriter(ch.meshes, mapping) if mapping is not None and len(mapping.targets) else None
    rig_writer = RigWriter(ch.rig, bones, ch.facing) if ch.rig is not None and bones.get("head") else None
    return face_writer, rig_writer


def _drivers(scene, keep: dict | None = None) -> dict:
    """Face id -> Driver for every performer with a character (options.performer_targets);
    ``keep``: the drivers before, whose rest poses carry over."""
    out = {}
    for tgt in options.performer_targets(scene):
        face, rig = _writers_for(tgt.character, tgt.mapping, tgt.bones)
        rest = tgt.profile.head_rest if tgt.profile is not None and tgt.profile.head_rest is not None else None
        old = (keep or {}).get(tgt.face_id)
        if rest is None and old is not None:
            rest = old.rest
        out[tgt.face_id] = Driver(face, rig, tgt.profile, rest, tgt.name)
    return out


def _check_writers() -> None:
    """Writers hold pose bones and shape keys, which Blender frees without telling Python
    (object deleted, undo, shape keys added): re-resolve them when anything changed."""
    if all(d.still_valid() for d in state.drivers.values()):
        return
    refresh_drivers()


def refresh_drivers() -> None:
    """Resolve the performers' characters again (a character picked or changed mid-capture)."""
    scene = _scene()
    try:
        state.drivers = _drivers(scene, state.drivers) if scene is not None else {}
    except (FacemeshError, ReferenceError) as exc:  # TargetError: the target changed into something unusable
        state.drivers = {}
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
            if session.fresh_faces:
                _note_faces(sample, session.fresh_faces)
                for face in _faces_to_drive(sample.faces, session.fresh_faces):
                    apply_face(face)
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


def _faces_to_drive(faces, fresh: dict) -> list:
    """The newest sample's first face with no performers listed; else each listed performer's
    newest face that arrived since the last tick."""
    if None in state.drivers:
        return faces[:1] if faces else list(fresh.values())[-1:]
    return [f for fid, f in sorted(fresh.items()) if fid in state.drivers]


def apply_face(face) -> None:
    """Put one tracked face on its performer's targets (main thread), as the live smoothing shows it."""
    d = state.drivers.get(face.id) or state.drivers.get(None)
    if d is None:
        return
    head_matrix, scores = face.shown
    scores = scores[None]
    if d.profile is not None:
        scores = d.profile.apply(scores)
    if d.face is not None:
        d.face.apply(scores)
    if d.rig is not None:
        if d.rest is None:
            d.set_rest(head_matrix)  # first face seen = rest
        d.rig.apply(live_rig_channels(head_matrix, d.rest_rotation, d.rest, scores[0], state.neck_share,
                                      state.use_location, d.rig.has_neck, state.eye_range))


def _note_faces(sample, fresh: dict) -> None:
    """Keep the performer list in step with the faces in view: a face not listed is added once
    there are several (or the list is in use already), with its thumbnail; "in view" flags are
    refreshed twice a second. Cheap: nothing is written while nothing changes."""
    now = sample.t
    for fid in fresh:
        state.seen[fid] = now
    scene = _scene()
    if scene is None or getattr(scene, "facemesh", None) is None:
        return
    s = scene.facemesh
    listed = {p.face_id: p for p in s.performers}
    new = [f for f in fresh.values() if f.id not in listed]
    if new and (len(listed) or len(state.seen) > 1 or len(fresh) > 1):
        names = getattr(state.session.worker, "performer_names", {}) if state.session is not None else {}
        for f in sorted(new, key=lambda f: f.id):
            p = s.performers.add()
            p.face_id, p.name = f.id, names.get(f.id, f"Face {f.id}")
            p.thumbnail = performer_thumbnail(sample, f) or ""
        refresh_drivers()
    if now - state.seen_listed >= 0.5:
        state.seen_listed = now
        for p in s.performers:
            in_view = now - state.seen.get(p.face_id, -1e9) < 2.0
            if p.in_view != in_view:
                p.in_view = in_view


def performer_thumbnail(sample, face) -> str:
    """An image of the face from the sample's preview frame (none for phones); its name."""
    from ..core.visual.preview import face_thumbnail

    if sample.frame is None or face.landmarks is None:
        return ""
    pixels = face_thumbnail(sample.frame, face.landmarks)
    if pixels is None:
        return ""
    size = int(round((pixels.size // 4) ** 0.5))
    return show_pixels(performer_image_name(face.id), size, size, pixels).name


def performer_image_name(face_id) -> str:
    return f"FaceMesh Performer {face_id}"


def update_preview(sample) -> None:
    """Copy the worker's ready-made picture into the preview image (about 0.3 ms)."""
    h, w = sample.frame.shape[:2]
    show_pixels(PREVIEW_IMAGE, w, h, sample.preview)
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
        state.drivers = {}
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
    """The rest pose the live preview used goes with the take, so the bake matches what was seen
    (the first performer's; the others bake from their own first frame)."""
    first = next(iter(state.drivers.values()), None)
    if take is not None and first is not None and first.rest is not None:
        take.meta.setdefault("head_rest", first.rest.tolist())


def _finish_neutral(stretch) -> None:
    """The neutral of the performer selected in the list (the first face when none is listed),
    saved into that performer's calibration file."""
    from ..core.solve.calibration import CalibrationError, calibrate_neutral

    scene = _scene()
    if scene is None:
        state.message = "neutral not taken: the capture's scene was deleted"
        return
    performer, fid = _active_performer(scene)

    def face_of(sample):
        return next((f for f in sample.faces if fid is None or f.id == fid), None)

    faces = [face_of(s) for s in stretch]
    present = np.array([f is not None for f in faces])
    scores = np.array([f.blendshapes if f is not None else np.full(52, np.nan) for f in faces])
    mats = np.array([f.head_matrix if f is not None else np.full((4, 4), np.nan) for f in faces])
    try:
        prof = calibrate_neutral(scores, mats, present, base=options.saved_profile(scene, performer))
    except CalibrationError as exc:
        state.message = f"neutral not taken: {exc}"
        return
    try:
        path = save_profile(scene, prof, performer)
    except OSError as exc:
        state.message = f"neutral taken but not saved: {exc}; set the performer file to a writable place"
        return
    use_calibration(scene, fid, prof, rest=True)
    who = f" of {performer.name}" if performer is not None and performer.name else ""
    state.message = f"neutral{who} taken from {int(present.sum())} frames; saved to {path}"


def use_calibration(scene, face_id, prof, rest: bool) -> None:
    """A new calibration of this face's performer, on their live rig from now on (``rest``: its
    neutral pose becomes the rig's rest too)."""
    d = state.drivers.get(face_id) or state.drivers.get(None)
    if d is None:
        return
    d.profile = prof if scene.facemesh.use_calibration else None
    if rest and prof.head_rest is not None:
        d.set_rest(prof.head_rest)


def _active_performer(scene):
    """(the performer selected in the list, its face id), or (None, None) when none is listed."""
    s = scene.facemesh
    if not len(s.performers):
        return None, None
    p = s.performers[min(max(s.performer_index, 0), len(s.performers) - 1)]
    return p, p.face_id


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
            "packets": s.worker.counts.describe() if hasattr(s.worker, "counts") else "",
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
