"""Renders for mapping by looking and for the transfer check: a temporary camera in front of
the character's face, Workbench (fast, textured where the character has textures), and the
scene put back afterwards, whatever happens. Main thread only; the landmarker reads the images
elsewhere (``core.animation.probe.scores_of_images`` on a ``BackgroundJob``).

What is set for the renders and put back after: the scene camera (a temporary one, removed),
render engine, resolution, file path and format, film transparency, compositing, sequencer,
stamp, border, view transform, Workbench shading, the frame (``render_frames``), and for
``render_keys`` every shape key value of the meshes, their "pin" (show only the active key),
and the keys' animation (action, NLA, drivers: set aside so the renders show exactly the
values set here).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import NamedTuple

import bpy
import numpy as np
from mathutils import Matrix

from ..core.animation.probe import FaceView, ProbeError

SIZE = 384           # pixels, square: enough for the landmarker, quick to render
FACE_FILL = 0.6      # the face's height (FaceView.height) as a share of the picture's height
FOV_DEG = 20.0       # a long lens: little perspective, like a webcam at arm's length
BACKGROUND = 0.55    # grey behind the character (the film is transparent, composited here)


class Look(NamedTuple):
    """How the probe renders look: Workbench light and colour, and how much of the picture's
    height the face (FaceView.height) fills."""
    light: str = "STUDIO"
    color_type: str = "TEXTURE"   # the materials' image textures; base colour, or grey, without
    fill: float = FACE_FILL


# tried on the render at rest, the first the landmarker finds a face in is used (``find_look``):
# studio light suits realistic characters, flat light toon ones; further away helps faces
# with big features (godette is found at 0.35, not at 0.6)
LOOKS = (Look("STUDIO", "TEXTURE", FACE_FILL), Look("FLAT", "TEXTURE", FACE_FILL),
         Look("STUDIO", "TEXTURE", 0.35), Look("FLAT", "TEXTURE", 0.35))


# --- where to look ------------------------------------------------------------------------------

def face_view(ch, keys=None) -> FaceView:
    """Where to look, from what ``character.pick`` found (the facing) and the vertices that
    ``keys`` move (default: every key but on/off toggles, whose hair or earrings would make the
    face look taller): centred on them, as tall as they span along up (2nd to 98th
    percentile, vertices moved at least 5% of the most any is moved)."""
    from ..core.animation.probe import is_toggle

    facing = np.asarray(ch.facing, np.float64)
    forward, up = -facing[:, 1], facing[:, 2]
    names = None if keys is None else set(keys)
    moved = []
    for mesh in ch.meshes:
        amount = _moved(mesh, lambda n: (n in names) if names is not None else not is_toggle(n))
        if amount is not None:
            moved.append((mesh, amount))
    top = max((a.max() for _m, a in moved), default=0.0)
    points = [_world(mesh, np.flatnonzero(a > 0.05 * top)) for mesh, a in moved if top > 0]
    points = [p for p in points if len(p)]
    if points:
        p = np.concatenate(points)
        h = p @ up
        lo, hi = np.percentile(h, 2), np.percentile(h, 98)
        center = np.median(p, axis=0)
        center += ((lo + hi) / 2 - center @ up) * up
        if hi - lo > 0:
            return FaceView(center, forward, up, float(hi - lo))
    if ch.face_center is None or ch.face_height <= 0:
        raise ProbeError(f"{ch.name} has no shape keys that move anything: there is nothing to look at")
    return FaceView(np.asarray(ch.face_center, np.float64), forward, up, float(ch.face_height))


def _moved(mesh, wanted):
    """How far the wanted keys (names -> bool) move each vertex at most (mesh units), or None."""
    keys = mesh.data.shape_keys if mesh.type == "MESH" else None
    if keys is None or len(keys.key_blocks) < 2:
        return None
    n = len(mesh.data.vertices)
    basis = np.empty(3 * n, np.float32)
    keys.reference_key.data.foreach_get("co", basis)
    co = np.empty_like(basis)
    amount = np.zeros(n)
    for kb in list(keys.key_blocks)[1:]:
        if kb.mute or not wanted(kb.name):
            continue
        kb.data.foreach_get("co", co)
        np.maximum(amount, np.linalg.norm((co - basis).reshape(n, 3), axis=1), out=amount)
    return amount if amount.max(initial=0.0) > 0 else None


def _world(mesh, index) -> np.ndarray:
    """World positions of some vertices as Blender shows them (armature deform and all); the
    undeformed mesh where a modifier changes the vertex count."""
    ev = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
    data = ev.data if len(ev.data.vertices) == len(mesh.data.vertices) else mesh.data
    co = np.empty(3 * len(data.vertices), np.float32)
    data.vertices.foreach_get("co", co)
    m = np.array(ev.matrix_world if data is ev.data else mesh.matrix_world)
    return co.reshape(-1, 3)[index] @ m[:3, :3].T + m[:3, 3]


def camera_matrix(view: FaceView, fov_deg: float = FOV_DEG, fill: float = FACE_FILL) -> tuple[np.ndarray, float]:
    """(4x4 world matrix of a camera in front of the face looking back at it, its distance):
    the face's ``height`` spans ``fill`` of the picture."""
    f = np.asarray(view.forward, np.float64)
    f = f / np.linalg.norm(f)
    up = np.asarray(view.up, np.float64)
    up = up - up.dot(f) * f
    if np.linalg.norm(up) < 1e-6:
        raise ProbeError("the face's up and forward directions are parallel: check the character's facing")
    up /= np.linalg.norm(up)
    dist = float(view.height) / fill / 2.0 / np.tan(np.radians(fov_deg) / 2.0)
    m = np.eye(4)
    # a camera looks along its -Z with +Y up: Z = the face's forward, X = Y x Z (the viewer's right)
    m[:3, 0], m[:3, 1], m[:3, 2] = np.cross(up, f), up, f
    m[:3, 3] = np.asarray(view.center, np.float64) + f * dist
    return m, dist


# --- the studio: settings changed for the renders, put back afterwards -------------------------------

def _settings(scene, look: Look) -> list:
    """(owner, attribute, value) in the order they are set (and put back: an image format
    needs its media type first)."""
    r, im, sh, vs = scene.render, scene.render.image_settings, scene.display.shading, scene.view_settings
    out = [(r, "engine", "BLENDER_WORKBENCH"), (r, "resolution_percentage", 100),
           (r, "pixel_aspect_x", 1.0), (r, "pixel_aspect_y", 1.0), (r, "use_border", False),
           (r, "film_transparent", True), (r, "use_compositing", False), (r, "use_sequencer", False),
           (r, "use_stamp", False), (r, "use_multiview", False), (r, "use_single_layer", True)]
    if hasattr(im, "media_type"):  # Blender 5.0: the image/video choice comes before the format
        out.append((im, "media_type", "IMAGE"))
    out += [(im, "file_format", "PNG"), (im, "color_mode", "RGBA"), (im, "color_depth", "8"),
            (im, "color_management", "FOLLOW_SCENE"),
            (vs, "view_transform", "Standard"), (vs, "look", "None"), (vs, "exposure", 0.0), (vs, "gamma", 1.0),
            (vs, "use_curve_mapping", False),
            (sh, "light", look.light), (sh, "color_type", look.color_type), (sh, "show_xray", False),
            (sh, "show_shadows", False), (sh, "show_cavity", False), (sh, "show_object_outline", False),
            (sh, "show_backface_culling", False), (sh, "use_dof", False), (sh, "show_specular_highlight", True)]
    return [(o, a, v) for o, a, v in out if hasattr(o, a)]


class _Studio:
    """The scene set up for probe renders (a temporary camera in front of the face, Workbench,
    square PNGs to a temporary folder), put back on exit whatever happened."""

    def __init__(self, scene, view: FaceView, size: int = SIZE, look: Look | None = None):
        if not 64 <= int(size) <= 4096:
            raise ProbeError(f"probe render size must be 64..4096 pixels, got {size}")
        self.scene, self.view, self.size = scene, view, int(size)
        self.look = Look() if look is None else Look(*look)
        self.cam = self._dir = None
        self._saved: list = []

    def __enter__(self):
        sc, r = self.scene, self.scene.render
        try:
            self._saved = [(r, "resolution_x", r.resolution_x), (r, "resolution_y", r.resolution_y),
                           (r, "filepath", r.filepath), (sc, "camera", sc.camera)]
            wanted = _settings(sc, self.look)
            # all read before any is set: setting one can change another (the media type, the format)
            self._saved += [(owner, attr, getattr(owner, attr)) for owner, attr, _v in wanted]
            for owner, attr, value in wanted:
                setattr(owner, attr, value)
            r.resolution_x = r.resolution_y = self.size
            matrix, dist = camera_matrix(self.view, FOV_DEG, self.look.fill)
            data = bpy.data.cameras.new("FaceMesh Probe")
            data.lens_unit = "FOV"
            data.sensor_fit = "AUTO"
            data.angle = np.radians(FOV_DEG)
            data.clip_start, data.clip_end = dist * 0.05, dist * 50.0
            self.cam = bpy.data.objects.new("FaceMesh Probe", data)
            sc.collection.objects.link(self.cam)
            self.cam.matrix_world = Matrix(matrix.tolist())
            sc.camera = self.cam
            self._dir = tempfile.mkdtemp(prefix="facemesh_probe_")
            self._n = 0
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def shot(self) -> np.ndarray:
        """Render the scene as it is now: (size, size, 3) RGB uint8 on a grey background."""
        import cv2

        path = os.path.join(self._dir, f"{self._n:04d}.png")
        self._n += 1
        self.scene.render.filepath = path
        bpy.ops.render.render(write_still=True, scene=self.scene.name)
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 3:
            raise ProbeError(f"the probe render was not written to {path}: check the temporary folder is writable")
        os.remove(path)
        rgb = img[:, :, 2::-1].astype(np.float32)
        if img.shape[2] == 4:
            a = img[:, :, 3:4].astype(np.float32) / 255.0
            rgb = rgb * a + 255.0 * BACKGROUND * (1.0 - a)
        return np.ascontiguousarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))

    def __exit__(self, *exc):
        errors = []
        for owner, attr, value in self._saved:  # in the order set: media type before format
            try:
                setattr(owner, attr, value)
            except Exception as e:  # noqa: BLE001 - put back all that can be, then say what could not
                errors.append(f"{attr}: {e}")
        self._saved = []
        if self.cam is not None:
            cam, self.cam = self.cam, None
            data = cam.data
            bpy.data.objects.remove(cam, do_unlink=True)
            if data.users == 0:
                bpy.data.cameras.remove(data)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        if errors and exc[0] is None:
            raise ProbeError("could not put back the scene's render settings after the probe renders: "
                             + "; ".join(errors[:3]))
        return False


# --- shape keys held still ---------------------------------------------------------------------------

class _KeysHeld:
    """Every key of these meshes at 0, their animation set aside (action, NLA, drivers would
    override values on each evaluation) and no key pinned; all put back on exit."""

    def __init__(self, meshes):
        self.meshes = [m for m in meshes if getattr(m, "type", None) == "MESH" and m.data.shape_keys is not None]
        self.blocks: dict[str, list] = {}   # key name -> its key blocks on every mesh

    def __enter__(self):
        self._values, self._anim, self._drivers, self._pins = [], [], [], []
        try:
            for m in self.meshes:
                if m.mode == "EDIT":
                    raise ProbeError(f"{m.name} is in Edit Mode: go back to Object Mode to look at its keys")
            for m in self.meshes:
                keys = m.data.shape_keys
                self._pins.append((m, m.show_only_shape_key))
                m.show_only_shape_key = False
                adt = keys.animation_data
                if adt is not None:
                    if adt.use_tweak_mode:
                        raise ProbeError(f"the shape key animation of {m.name} is in NLA tweak mode: leave it first")
                    self._anim.append((adt, adt.action, getattr(adt, "action_slot", None), adt.use_nla))
                    adt.action = None
                    adt.use_nla = False
                    for fc in adt.drivers:
                        self._drivers.append((fc, fc.mute))
                        fc.mute = True
                for kb in list(keys.key_blocks)[1:]:
                    self._values.append((kb, kb.value))
                    kb.value = 0.0
                    self.blocks.setdefault(kb.name, []).append(kb)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def set(self, name: str | None, value: float = 1.0) -> None:
        """Only ``name`` (on every mesh that has it) at ``value``, every other key at 0."""
        for kbs in self.blocks.values():
            for kb in kbs:
                kb.value = 0.0
        for kb in self.blocks.get(name, []) if name is not None else ():
            kb.value = value

    def __exit__(self, *exc):
        for kb, v in self._values:
            kb.value = v
        for fc, mute in self._drivers:
            fc.mute = mute
        for adt, action, slot, use_nla in self._anim:
            adt.use_nla = use_nla
            adt.action = action
            if action is not None and slot is not None and adt.action_slot != slot:
                try:
                    adt.action_slot = slot
                except (TypeError, RuntimeError, AttributeError):
                    pass
        for m, pin in self._pins:
            m.show_only_shape_key = pin
        self._values, self._anim, self._drivers, self._pins = [], [], [], []
        return False


# --- the renders --------------------------------------------------------------------------------------

def render_keys(scene, meshes, keys, view: FaceView, size: int = SIZE, on_progress=None, look: Look | None = None):
    """(render with every key at 0, {key: render with that key at 1.0 on every mesh in
    ``meshes`` that has it, every other key at 0}): (size, size, 3) RGB uint8 each. A key no
    mesh has renders like the rest. ``on_progress(share done)`` after each render. The key
    values, their animation and the scene's settings are put back afterwards."""
    keys = list(dict.fromkeys(keys))
    with _KeysHeld(meshes) as held, _Studio(scene, view, size, look) as studio:
        held.set(None)
        base = studio.shot()
        out = {}
        for i, key in enumerate(keys):
            held.set(key, 1.0)
            out[key] = studio.shot()
            if on_progress is not None:
                on_progress((i + 1) / len(keys))
        held.set(None)
    return base, out


def render_frames(scene, frames, view: FaceView, size: int = SIZE, on_progress=None, look: Look | None = None) -> list:
    """Renders of the character at the given scene frames (its animation playing, so a baked
    take shows), the scene's frame and settings put back afterwards."""
    frame, subframe = scene.frame_current, scene.frame_subframe
    out = []
    try:
        with _Studio(scene, view, size, look) as studio:
            for i, f in enumerate(frames):
                f = float(f)
                scene.frame_set(int(np.floor(f)), subframe=f - np.floor(f))
                out.append(studio.shot())
                if on_progress is not None:
                    on_progress((i + 1) / max(len(frames), 1))
    finally:
        scene.frame_set(frame, subframe=subframe)
    return out


def render_looks(scene, meshes, view: FaceView, looks=LOOKS, size: int = SIZE) -> list:
    """The character at rest (every key of ``meshes`` at 0) in each of ``looks``: pick the
    first the landmarker finds a face in (``find_look``)."""
    with _KeysHeld(meshes):
        return [render_frames(scene, [scene.frame_current], view, size, look=lk)[0] for lk in looks]


# --- the whole steps, for the operators ---------------------------------------------------------------

def _read(images, model_path):
    """The landmarker over the renders, on a background thread (never on Blender's main
    thread); this waits for it: the caller shows progress around the whole step."""
    from ..core.animation.probe import scores_of_images
    from ..core.tracking.live import BackgroundJob

    job = BackgroundJob(scores_of_images, list(images), model_path, name="facemesh-probe")
    job.wait()
    if job.error is not None:
        raise job.error
    return job.result


def find_look(scene, meshes, view: FaceView, model_path=None, looks=LOOKS, size: int = SIZE) -> Look:
    """The first of ``looks`` in which the landmarker finds the character's face at rest
    (about 0.5 s a look); ProbeError when none."""
    found = _read(render_looks(scene, meshes, view, looks, size), model_path)
    for lk, row in zip(looks, found):
        if not np.isnan(row).any():
            return lk
    raise ProbeError("the face landmarker found no face in renders of the character at rest (studio and flat "
                     "light, near and far): it reads human-like faces only; check that the character faces "
                     "the way its eyes (or keyed vertices) point, or map its keys by name")


def keys_to_look_at(ch, mapping=None, every_key: bool = False) -> list[str]:
    """The keys worth rendering: those that move something, are not on/off toggles and (unless
    ``every_key``) that the name mapping left undriven."""
    from ..core.animation.probe import is_toggle

    driven = set(mapping.targets) if mapping is not None and not every_key else set()
    return [k for k in ch.key_names if k in ch.moving and k not in driven and not is_toggle(k)]


def map_by_looking(scene, ch, name_mapping=None, model_path=None, every_key: bool = False, on_progress=None):
    """(the name mapping with the channels it lacked filled by looking, {key: channel(s) it is
    now driven by}, [keys looked at that raised no channel]). About 0.4 s a key plus 3 s."""
    from ..core.animation.probe import key_responses, mapping_from_responses
    from ..core.animation.retarget import Mapping
    from ..core.channels import ARKIT_NAMES
    from .options import gaze_keys_driven

    keys = keys_to_look_at(ch, name_mapping, every_key)
    if not keys:
        raise ProbeError(f"no undriven key of {ch.name} moves anything: there is nothing left to map")
    view = face_view(ch)
    look = find_look(scene, ch.meshes, view, model_path)
    base, imgs = render_keys(scene, ch.meshes, keys, view, on_progress=on_progress, look=look)
    scores = _read([base] + [imgs[k] for k in keys], model_path)
    responses = key_responses(scores[0], dict(zip(keys, scores[1:])))
    keep = name_mapping is not None and not every_key
    have = {c.source for c in name_mapping.channels} if keep else set()
    # while the eye bones take the gaze, no key is driven from an eyeLook channel
    skip = () if gaze_keys_driven(scene, ch) else [n for n in ARKIT_NAMES if n.startswith("eyeLook")]
    added = [c for c in mapping_from_responses(responses, skip=skip) if c.source not in have]
    base_channels = list(name_mapping.channels) if keep else []
    used = {c.target for c in added}
    m = Mapping(base_channels + added, preset=(name_mapping.preset + "+LOOKED") if keep else "LOOKED",
                unmatched_targets=[k for k in keys if k not in used],
                empty_targets=list(name_mapping.empty_targets) if name_mapping is not None else [])
    m.unmatched_sources = [n for n in ARKIT_NAMES if n not in {c.source for c in m.channels}]
    added_by_key: dict[str, str] = {}
    for c in added:
        added_by_key[c.target] = c.source if c.target not in added_by_key else added_by_key[c.target] + "+" + c.source
    return m, added_by_key, [k for k in keys if k not in used]


def check_transfer(scene, ch, take, mapping, n_frames: int = 24, model_path=None, profile=None,
                   on_progress=None) -> dict:
    """Render ``n_frames`` baked frames, read them with the landmarker and compare with the
    performer's scores on the same frames: {'correlation': {channel: r}, 'gains': {(source,
    target): gain}, 'frames': [...], 'faces_found': n}. The take must already be baked on the
    character."""
    from ..core.animation.bake import take_to_curves
    from ..core.animation.probe import transfer_correlation, tuned_gains

    fps = scene.render.fps / scene.render.fps_base
    curves = take_to_curves(take, fps, scene.frame_start, profile=profile)
    n = len(curves.frames)
    if n == 0:
        raise ProbeError("the take has no frames to check: process a video first")
    pick = np.unique(np.linspace(0, n - 1, min(int(n_frames), n)).round().astype(int))
    view = face_view(ch)
    look = find_look(scene, ch.meshes, view, model_path)
    renders = render_frames(scene, curves.frames[pick], view, on_progress=on_progress, look=look)
    performer = curves.blendshapes[pick]
    character = _read(renders, model_path)
    found = int((~np.isnan(character[:, 0])).sum())
    if found == 0:
        raise ProbeError(f"the landmarker found no face in any render of {ch.name}: the transfer cannot be "
                         "measured on this character (stylised faces often are not recognised)")
    return {"correlation": transfer_correlation(performer, character),
            "gains": tuned_gains(performer, character, mapping.channels if mapping is not None else []),
            "frames": curves.frames[pick].tolist(), "faces_found": found}
