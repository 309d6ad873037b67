"""The performer list: faces found in a take, swapping who drives which character, removing one."""

import bpy


class FACEMESH_OT_performers_find(bpy.types.Operator):
    """List the faces of the selected take (or a take file) as performers, each with its frames
    and a picture from the take's video; characters already picked for a face are kept"""

    bl_idname = "facemesh.performers_find"
    bl_label = "Find Performers"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Take", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                       description="Take file; empty: the selected take")

    def execute(self, context):
        from ..core.errors import FacemeshError
        from ..core.take import Take
        from ..blender.images import show_pixels
        from ..blender.live import performer_image_name
        from ..core.visual.preview import performer_crops, to_blender_pixels

        s = context.scene.facemesh
        path = self.filepath
        if not path and 0 <= s.take_index < len(s.takes):
            path = s.takes[s.take_index].filepath
        path = path or s.last_take
        if not path:
            self.report({"ERROR"}, "no take: record or process one first, or pick a take file")
            return {"CANCELLED"}
        try:
            take = Take.load(bpy.path.abspath(path))
        except FacemeshError as exc:
            self.report({"ERROR"}, f"cannot list performers: {exc}")
            return {"CANCELLED"}
        found = take.face_counts()
        if not found:
            self.report({"WARNING"}, "no face in this take: nothing to list")
            return {"CANCELLED"}
        names = {int(k): v for k, v in (take.meta.get("performers") or {}).items() if str(k).isdigit()}
        before = {p.face_id: (p.name, p.character, p.performer_path) for p in s.performers}
        crops = performer_crops(take)
        s.performers.clear()
        for fid, frames in sorted(found.items()):
            p = s.performers.add()
            old = before.get(fid)
            p.face_id, p.frames = fid, frames
            p.name = old[0] if old and old[0] else names.get(fid, f"Face {fid}")
            if old:
                p.character, p.performer_path = old[1], old[2]
            if fid in crops:
                size = crops[fid].shape[0]
                p.thumbnail = show_pixels(performer_image_name(fid), size, size, to_blender_pixels(crops[fid])).name
        s.performer_index = 0
        self.report({"INFO"}, f"{len(found)} performer{'s' if len(found) != 1 else ''} in {bpy.path.basename(path)}: "
                              + ", ".join(f"{p.name} ({p.frames} frames)" for p in s.performers))
        return {"FINISHED"}


class FACEMESH_OT_performer_swap(bpy.types.Operator):
    """Swap the characters (and calibrations) of two performers, e.g. when the faces were
    assigned the wrong way round; bake the take again to apply it"""

    bl_idname = "facemesh.performer_swap"
    bl_label = "Swap Characters"
    bl_options = {"REGISTER", "UNDO"}

    first: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"}, description="Row; -1: the selected one")
    second: bpy.props.IntProperty(default=-1, options={"SKIP_SAVE"}, description="Row; -1: the one after the first")

    def execute(self, context):
        s = context.scene.facemesh
        n = len(s.performers)
        if n < 2:
            self.report({"ERROR"}, "swapping needs two performers: press Find Performers on a take with several faces")
            return {"CANCELLED"}
        a = s.performer_index if self.first < 0 else self.first
        b = (a + 1) % n if self.second < 0 else self.second
        if not (0 <= a < n and 0 <= b < n) or a == b:
            self.report({"ERROR"}, f"rows {a} and {b}: give two different rows from 0 to {n - 1}")
            return {"CANCELLED"}
        pa, pb = s.performers[a], s.performers[b]
        pa.character, pb.character = pb.character, pa.character
        pa.performer_path, pb.performer_path = pb.performer_path, pa.performer_path
        from ..blender import live

        if live.running():
            live.refresh_drivers()
        self.report({"INFO"}, f"{pa.name} now drives {pa.character.name if pa.character else 'the scene character'}, "
                              f"{pb.name} {pb.character.name if pb.character else 'the scene character'}")
        return {"FINISHED"}


class FACEMESH_OT_performer_remove(bpy.types.Operator):
    """Take the selected performer off the list (its face is then not driven)"""

    bl_idname = "facemesh.performer_remove"
    bl_label = "Remove Performer"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.facemesh
        if not 0 <= s.performer_index < len(s.performers):
            self.report({"ERROR"}, "no performer selected")
            return {"CANCELLED"}
        s.performers.remove(s.performer_index)
        s.performer_index = max(0, min(s.performer_index, len(s.performers) - 1))
        from ..blender import live

        if live.running():
            live.refresh_drivers()
        return {"FINISHED"}
