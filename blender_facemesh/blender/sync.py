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


def strip_length(strip) -> int:
    """A strip's length in frames: ``duration`` from Blender 5.1, ``frame_final_duration`` before
    (deprecated in 5.1, going in 6.0); chosen by what the strip has, not by version number."""
    return strip.duration if "duration" in strip.bl_rna.properties else strip.frame_final_duration


def strip_start(strip) -> float:
    return strip.content_start if "content_start" in strip.bl_rna.properties else strip.frame_start


def set_strip_start(strip, frame: float) -> None:
    """Where the strip's content starts (a float): ``content_start`` from 5.1, ``frame_start`` before."""
    if "content_start" in strip.bl_rna.properties:
        strip.content_start = frame
    else:
        strip.frame_start = frame


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
    if strip_length(strip) <= 1:  # Blender makes a 1-frame strip for a file without audio
        strips.remove(strip)
        return None
    # new_sound takes whole frames; the rest goes into the strip's own start (a float)
    set_strip_start(strip, start)
    return strip


def add_reference_camera(scene, video_path: str, take, fov_deg: float, face=None, rest=None):
    """A camera that sees the capture face the way the source camera saw the performer: placed
    from the take's rest head pose (the pose the bake counts as 'no rotation'), the field of
    view as set for tracking, and the video as its background, so the baked face mesh sits on
    the face in the camera view. Without the capture face it looks at the origin from 0.5 m."""
    from ..core.camera import CAMERA_TO_BLENDER
    from ..core.rotations import rotation_part

    clip = bpy.data.movieclips.load(video_path, check_existing=True)
    clip.frame_start = int(round(video_start_frame(scene, take)))
    cam_data = bpy.data.cameras.get(CAMERA_NAME) or bpy.data.cameras.new(CAMERA_NAME)
    cam_data.sensor_fit = "VERTICAL"
    cam_data.angle_y = math.radians(fov_deg)
    cam_data.clip_start = 0.01
    cam_data.show_background_images = True
    cam_data.background_images.clear()
    bg = cam_data.background_images.new()
    bg.source, bg.clip, bg.alpha = "MOVIE_CLIP", clip, 1.0
    bg.frame_method = "FIT"
    cam = bpy.data.objects.get(CAMERA_NAME)
    if cam is None:
        cam = bpy.data.objects.new(CAMERA_NAME, cam_data)
        scene.collection.objects.link(cam)
    if rest is None:
        track = take.face_track()
        rest = track["head_matrix"][int(np.argmax(track["present"]))]
    rest = np.asarray(rest, np.float64)
    c = CAMERA_TO_BLENDER
    if face is not None:
        # the face's rest frame in the world (the rig at rest, not at the current frame's pose)
        rig = face.parent if face.parent is not None and face.parent.type == "ARMATURE" else None
        if rig is not None:
            old = rig.data.pose_position
            rig.data.pose_position = "REST"
            bpy.context.view_layer.update()
        face_world = np.array(face.matrix_world)
        if rig is not None:
            rig.data.pose_position = old
            bpy.context.view_layer.update()
        r = rotation_part(rest)
        scale = float(np.cbrt(abs(np.linalg.det(rest[:3, :3]))))
        cam_rot = face_world[:3, :3] @ c @ r.T / np.linalg.norm(face_world[:3, :3] @ c, axis=0)
        cam_pos = face_world[:3, :3] @ (c @ (-r.T @ rest[:3, 3] / scale)) * 0.01 + face_world[:3, 3]
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = cam_rot, cam_pos
        from mathutils import Matrix

        cam.matrix_world = Matrix(m.tolist())
    else:
        cam.location, cam.rotation_euler = (0.0, -0.5, 0.0), (math.pi / 2, 0.0, 0.0)
    scene.camera = cam
    if take.width and take.height:
        scene.render.resolution_x, scene.render.resolution_y = int(take.width), int(take.height)
    return cam
