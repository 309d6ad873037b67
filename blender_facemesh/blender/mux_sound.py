"""Copy a video's sound under another video with Blender's own FFmpeg (OpenCV writes no audio).

Run as a script in a child Python that has bpy (it resets Blender's session, so never in the
caller's): ``python mux_sound.py VIDEO SOUND_FROM OUT``; exit code 3 when SOUND_FROM has no sound.
:func:`mux_sound` runs it; the tests use the same file to give a clip a sound track."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NO_SOUND = 3


def mux_sound(video, sound_from, out, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``out`` = ``video``'s pictures with ``sound_from``'s sound (a child process)."""
    return subprocess.run([sys.executable, str(Path(__file__)), str(video), str(sound_from), str(out)],
                          capture_output=True, text=True, timeout=timeout)


def _length(strip) -> int:
    """``duration`` from Blender 5.1, ``frame_final_duration`` before (this file runs on its own,
    so it cannot import sync.strip_length)."""
    return strip.duration if "duration" in strip.bl_rna.properties else strip.frame_final_duration


def _main(video: str, sound_from: str, out: str) -> int:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    ed = sc.sequence_editor_create()
    strips = ed.strips if hasattr(ed, "strips") else ed.sequences
    movie = strips.new_movie("v", video, channel=1, frame_start=1)
    sound = strips.new_sound("a", sound_from, channel=2, frame_start=1)
    if _length(sound) <= 1:
        return NO_SOUND
    fps = movie.fps
    sc.render.fps, sc.render.fps_base = round(fps), round(fps) / fps
    sc.frame_start, sc.frame_end = 1, _length(movie)
    sc.render.resolution_x, sc.render.resolution_y = movie.elements[0].orig_width, movie.elements[0].orig_height
    sc.render.resolution_percentage = 100
    im = sc.render.image_settings
    if hasattr(im, "media_type"):  # Blender 5.0+
        im.media_type = "VIDEO"
    im.file_format = "FFMPEG"
    sc.render.ffmpeg.format, sc.render.ffmpeg.codec, sc.render.ffmpeg.audio_codec = "MPEG4", "H264", "AAC"
    sc.render.ffmpeg.constant_rate_factor = "HIGH"
    sc.render.filepath = out
    bpy.ops.render.render(animation=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:4]))
