"""Renders for mapping by looking and for the transfer check: a temporary camera in front of
the character's face, Workbench (fast, and textured where the character has textures), and
everything put back afterwards. Main thread only; the landmarker reads the images elsewhere."""

from __future__ import annotations

import os
import tempfile

import bpy
import numpy as np
from mathutils import Vector

from ..core.animation.probe import FaceView, ProbeError

SIZE = 384          # pixels, square: enough for the landmarker, quick to render
FACE_FILL = 0.45    # the face's height as a share of the picture


def face_view(ch) -> FaceView:
    """Where to look, from what character.pick found (the keyed vertices, the facing)."""
    if ch.face_center is None or ch.face_height <= 0:
        raise ProbeError(f"{ch.name} has no shape keys that move anything: there is nothing to look at")
    return FaceView(np.asarray(ch.face_center), -ch.facing[:, 1], ch.facing[:, 2], float(ch.face_height))


class _Studio:
    """The scene set up for probe renders, restored on exit whatever happens."""

    def __init__(self, scene, view: FaceView, size: int = SIZE):
        self.scene, self.view, self.size = scene, view, size

    def __enter__(self):
        sc, r = self.scene, self.scene.render
        shading = sc.display.shading
        self._saved = (sc.camera, r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage,
                       r.filepath, r.image_settings.file_format, r.film_transparent,
                       shading.light, shading.color_type, sc.frame_current)
        cam_data = bpy.data.cameras.new("FaceMesh Probe")
        cam_data.lens_unit = "FOV"
        cam_data.angle = np.radians(20.0)
        self.cam = bpy.data.objects.new("FaceMesh Probe", cam_data)
        sc.collection.objects.link(self.cam)
        v = self.view
        dist = v.height / FACE_FILL / 2 / np.tan(cam_data.angle / 2)
        self.cam.location = Vector((np.asarray(v.center) + np.asarray(v.forward) * dist).tolist())
        self.cam.rotation_mode = "QUATERNION"
        self.cam.rotation_quaternion = Vector((-np.asarray(v.forward)).tolist()).to_track_quat("-Z", "Y")
        cam_data.clip_start, cam_data.clip_end = dist * 0.05, dist * 20
        sc.camera = self.cam
        r.engine = "BLENDER_WORKBENCH"
        r.resolution_x = r.resolution_y = self.size
        r.resolution_percentage = 100
        r.image_settings.file_format = "PNG"
        r.film_transparent = False
        shading.light, shading.color_type = "STUDIO", "TEXTURE"
        self._dir = tempfile.mkdtemp(prefix="facemesh_probe_")
        self._n = 0
        return self

    def shot(self) -> np.ndarray:
        """Render the scene as it is now; RGB uint8."""
        import cv2

        path = os.path.join(self._dir, f"{self._n:04d}.png")
        self._n += 1
        self.scene.render.filepath = path
        bpy.ops.render.render(write_still=True, scene=self.scene.name)
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ProbeError("the probe render could not be read back; check the temporary folder is writable")
        os.remove(path)
        return np.ascontiguousarray(img[:, :, ::-1])

    def __exit__(self, *exc):
        sc, r = self.scene, self.scene.render
        shading = sc.display.shading
        (sc.camera, r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
         r.image_settings.file_format, r.film_transparent, shading.light, shading.color_type, frame) = self._saved
        cam_data = self.cam.data
        bpy.data.objects.remove(self.cam)
        bpy.data.cameras.remove(cam_data)
        sc.frame_set(frame)
        try:
            os.rmdir(self._dir)
        except OSError:
            pass
        return False


def render_keys(scene, meshes, keys, view: FaceView, size: int = SIZE, on_progress=None):
    """(render at rest, {key: render with that key at 1.0 on every mesh that has it}).

    The keys' animation is set aside while rendering (an action would override the values)
    and every value is put back afterwards."""
    saved, held = {}, []
    for m in meshes:
        k = m.data.shape_keys
        if k is None:
            continue
        for kb in k.key_blocks:
            saved[(m.name, kb.name)] = (kb, kb.value)
        adt = k.animation_data
        if adt is not None and adt.action is not None:
            held.append((adt, adt.action, adt.action_slot))
    try:
        for adt, _a, _s in held:
            adt.action = None
        for kb, _v in saved.values():
            kb.value = 0.0
        with _Studio(scene, view, size) as studio:
            base = studio.shot()
            out = {}
            for i, key in enumerate(keys):
                blocks = [kb for (mesh, name), (kb, _v) in saved.items() if name == key]
                for kb in blocks:
                    kb.value = 1.0
                out[key] = studio.shot()
                for kb in blocks:
                    kb.value = 0.0
                if on_progress is not None:
                    on_progress((i + 1) / max(len(keys), 1))
        return base, out
    finally:
        for adt, action, slot in held:
            adt.action = action
            if slot is not None and adt.action_slot != slot:
                adt.action_slot = slot
        for kb, v in saved.values():
            kb.value = v


def render_frames(scene, frames, view: FaceView, size: int = SIZE, on_progress=None) -> list:
    """Renders of the character at the given scene frames (the baked animation playing)."""
    out = []
    with _Studio(scene, view, size) as studio:
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            out.append(studio.shot())
            if on_progress is not None:
                on_progress((i + 1) / max(len(frames), 1))
    return out


def _read(images, model_path):
    """The landmarker over the renders, on a background thread (never on Blender's main
    thread); this waits for it: the caller shows progress around the whole step."""
    from ..core.animation.probe import scores_of_images
    from ..core.tracking.live import BackgroundJob

    job = BackgroundJob(scores_of_images, images, model_path, name="facemesh-probe")
    job.wait()
    if job.error is not None:
        raise job.error
    return job.result


def keys_to_look_at(ch, mapping=None, every_key: bool = False) -> list[str]:
    """The keys worth rendering: those that move something, are not on/off toggles and (unless
    ``every_key``) that the name mapping left undriven."""
    from ..core.animation.probe import is_toggle

    driven = set(mapping.targets) if mapping is not None and not every_key else set()
    return [k for k in ch.key_names if k in ch.moving and k not in driven and not is_toggle(k)]


def map_by_looking(scene, ch, name_mapping=None, model_path=None, every_key: bool = False, on_progress=None):
    """(the name mapping with channels it lacked filled by looking, {key: channel it was
    mapped from}, [keys that raised no channel])."""
    from ..core.animation.probe import key_responses, mapping_from_responses
    from ..core.animation.retarget import Mapping

    keys = keys_to_look_at(ch, name_mapping, every_key)
    if not keys:
        raise ProbeError(f"no undriven key of {ch.name} moves anything: there is nothing left to map")
    base, imgs = render_keys(scene, ch.meshes, keys, face_view(ch), on_progress=on_progress)
    scores = _read([base] + [imgs[k] for k in keys], model_path)
    responses = key_responses(scores[0], dict(zip(keys, scores[1:])))
    looked = mapping_from_responses(responses)
    have = {c.source for c in name_mapping.channels} if name_mapping is not None and not every_key else set()
    added = [c for c in looked if c.source not in have]
    base_channels = list(name_mapping.channels) if name_mapping is not None and not every_key else []
    used = {c.target for c in added}
    m = Mapping(base_channels + added, preset=(name_mapping.preset if base_channels else "LOOKED") + "+LOOKED",
                unmatched_targets=[k for k in keys if k not in used],
                empty_targets=list(name_mapping.empty_targets) if name_mapping is not None else [])
    from ..core.channels import ARKIT_NAMES

    m.unmatched_sources = [n for n in ARKIT_NAMES if n not in {c.source for c in m.channels}]
    return m, {c.target: c.source for c in added}, [k for k in keys if k not in used]


def check_transfer(scene, ch, take, mapping, n_frames: int = 24, model_path=None, profile=None,
                   on_progress=None) -> dict:
    """Render ``n_frames`` baked frames, read them with the landmarker and compare with the
    performer's scores on the same frames: {'correlation': {channel: r}, 'gains': {(source,
    target): gain}, 'frames': [...]}. The take must already be baked on the character."""
    from ..core.animation.bake import take_to_curves
    from ..core.animation.probe import transfer_correlation, tuned_gains

    fps = scene.render.fps / scene.render.fps_base
    curves = take_to_curves(take, fps, scene.frame_start, profile=profile)
    pick = np.unique(np.linspace(0, len(curves.frames) - 1, min(n_frames, len(curves.frames))).round().astype(int))
    renders = render_frames(scene, curves.frames[pick], face_view(ch), on_progress=on_progress)
    performer = curves.blendshapes[pick]
    character = _read(renders, model_path)
    if np.isnan(character).all():
        raise ProbeError(f"the landmarker found no face in any render of {ch.name}: the transfer cannot be "
                         "measured on this character (stylised faces often are not recognised)")
    return {"correlation": transfer_correlation(performer, character),
            "gains": tuned_gains(performer, character, mapping.channels if mapping is not None else []),
            "frames": curves.frames[pick].tolist(), "faces_found": int((~np.isnan(character[:, 0])).sum())}
