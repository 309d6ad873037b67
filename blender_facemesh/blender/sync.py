"""Lining the scene up with a processed video: its fps and frame range, its sound as a strip
under the keys, and the video itself behind a camera, for checking lip sync by eye."""

from __future__ import annotations

import math

import bpy
import numpy as np

CAMERA_NAME = "FaceMesh Reference"
SOUND_NAME = "FaceMesh Audio"


def match_scene_to_take(scene, take) -> None:
    """Scene fps and frame range from the take (29.97 and 23.976 kept exact via fps_base)."""
    fps = float(take.fps)
    whole = round(fps)
    if abs(fps - whole) < 1e-3:
        scene.render.fps, scene.render.fps_base = int(whole), 1.0
    else:
        scene.render.fps = int(math.ceil(fps))
        scene.render.fps_base = scene.render.fps / fps
    scene.frame_end = scene.frame_start + int(np.floor(take.duration * fps + 1e-6))


def _scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def video_start_frame(scene, take) -> float:
    """The scene frame where the video's time 0 falls: the take's first frame (video time
    t[0]) is keyed at frame_start."""
    return scene.frame_start - float(take.t[0]) * _scene_fps(scene)


def add_sound_strip(scene, video_path: str, take):
    """The video's audio as a sound strip, placed so that sound and keys line up; None when the
    video has no audio. Replaces an earlier FaceMesh strip."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # 4.4+ / older
    old = strips.get(SOUND_NAME)
    if old is not None:
        strips.remove(old)
    start = video_start_frame(scene, take)
    try:
        strip = strips.new_sound(SOUND_NAME, video_path, channel=1, frame_start=int(math.floor(start)))
    except RuntimeError:
        return None  # not a file Blender's audio can open
    if strip.frame_final_duration <= 1:  # Blender makes a 1-frame strip for a file without audio
        strips.remove(strip)
        return None
    # new_sound takes whole frames; the rest goes into the strip's own start (a float)
    strip.frame_start = start
    return strip


def add_reference_camera(scene, video_path: str, take, fov_deg: float, rig=None):
    """A camera with the video as its background, field of view as set for tracking, looking
    at the rig's face from the front; the scene's resolution follows the video's shape."""
    clip = bpy.data.movieclips.load(video_path, check_existing=True)
    clip.frame_start = int(round(video_start_frame(scene, take)))
    cam_data = bpy.data.cameras.get(CAMERA_NAME) or bpy.data.cameras.new(CAMERA_NAME)
    cam_data.sensor_fit = "VERTICAL"
    cam_data.angle_y = math.radians(fov_deg)
    cam_data.show_background_images = True
    cam_data.background_images.clear()
    bg = cam_data.background_images.new()
    bg.source, bg.clip, bg.alpha = "MOVIE_CLIP", clip, 1.0
    cam = bpy.data.objects.get(CAMERA_NAME)
    if cam is None:
        cam = bpy.data.objects.new(CAMERA_NAME, cam_data)
        scene.collection.objects.link(cam)
    from .rig import FACE_OFFSET_Z, HEAD_BASE_Z

    target = np.array(rig.matrix_world.translation) if rig is not None else np.zeros(3)
    target[2] += HEAD_BASE_Z + FACE_OFFSET_Z
    cam.location = tuple(target + (0.0, -0.5, 0.0))  # half a metre in front of the face
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)       # looking along +Y, at the face
    scene.camera = cam
    if take.width and take.height:
        scene.render.resolution_x, scene.render.resolution_y = int(take.width), int(take.height)
    return cam
