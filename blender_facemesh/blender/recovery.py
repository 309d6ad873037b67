"""Unfinished recordings on Blender's side: found when the add-on starts and when a file is
opened, shown in the Capture panel with Recover and Discard (operators/takes.py).

The scan reads only the journals' record headers (core.journal.summary), and runs from a
timer and the load handler, never from a panel's draw.
"""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from ..core import journal

found: list = []   # core.journal.Unfinished, oldest first


def scan(scene=None) -> list:
    """Look again: the user cache's pointers and the scene's takes folder."""
    from . import options

    folders = []
    scene = scene or getattr(bpy.context, "scene", None)
    if scene is not None and getattr(scene, "facemesh", None) is not None:
        folders.append(options.take_dir(scene))
    try:
        found[:] = journal.unfinished(folders)
    except OSError:
        found[:] = []
    return found


def forget(path) -> None:
    found[:] = [u for u in found if str(u.journal) != str(path)]


def _first_scan():
    scan()
    return None


@persistent
def on_load_post(*_args) -> None:
    scan()


def register() -> None:
    if on_load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(on_load_post)
    # the scene is not reachable while registering: look once Blender is up. Not in the bpy
    # module (background): its timers never run, and on Blender 4.5 a timer registered there
    # leaves a thread that deadlocks the process at exit; a script scans when it opens a file.
    if not bpy.app.background:
        bpy.app.timers.register(_first_scan, first_interval=0.5)


def unregister() -> None:
    if bpy.app.timers.is_registered(_first_scan):
        bpy.app.timers.unregister(_first_scan)
    if on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(on_load_post)
    found.clear()
