import bpy

SMILE, BLINK = ("mouthSmileLeft", "mouthSmileRight"), ("eyeBlinkLeft", "eyeBlinkRight")


def _with_progress(op, context, what: str, fn):
    """Run ``fn(on_progress)`` with the progress bar; a FacemeshError becomes the report
    "could not <what>: ..." and None."""
    from ..core.errors import FacemeshError

    wm = context.window_manager
    wm.progress_begin(0, 100)
    try:
        return fn(lambda p: wm.progress_update(int(p * 90)))
    except FacemeshError as exc:
        op.report({"ERROR"}, f"could not {what}: {exc}")
        return None
    finally:
        wm.progress_end()


def _character(self, context):
    from ..blender import options

    ch = options.character(context.scene)
    if ch is None or not ch.meshes:
        self.report({"ERROR"}, "no character with shape keys: pick your character in the Character panel")
        return None
    return ch


class FACEMESH_OT_map_by_looking(bpy.types.Operator):
    """Find out what each unmapped shape key does by looking: render the character's face with
    the key on, read the render with the face landmarker, and map the key from the channels it
    raises (for characters whose key names match no standard)"""

    bl_idname = "facemesh.map_by_looking"
    bl_label = "Map by Looking"
    bl_options = {"REGISTER", "UNDO"}

    every_key: bpy.props.BoolProperty(name="Every Key", default=False,
                                      description="Look at every key, not only those the names left undriven")

    def execute(self, context):
        from ..blender import options
        from ..blender.probe import map_by_looking

        ch = _character(self, context)
        if ch is None:
            return {"CANCELLED"}
        err = options.check_model(context)
        if err:
            self.report({"ERROR"}, err)
            return {"CANCELLED"}
        scene = context.scene
        names = options.mapping(scene, ch) if len(scene.facemesh.mappings) else None
        if names is None:
            from ..core.animation.retarget import Mapping

            names = Mapping.auto_map(ch.key_names, moving=ch.moving)
        got = _with_progress(self, context, "map by looking", lambda progress: map_by_looking(
            scene, ch, names, options.model_path(context), self.every_key, on_progress=progress))
        if got is None:
            return {"CANCELLED"}
        mapping, added, silent = got
        options.fill_mapping_list(scene, mapping)
        for name in silent:
            item = next((u for u in scene.facemesh.undriven if u.name == name), None)
            if item is not None:
                item.reason = "raised no tracked channel when looked at"
        text = f"{len(added)} keys of {ch.name} mapped by looking"
        if added:
            text += ": " + ", ".join(f"{k} <- {c}" for k, c in list(added.items())[:8])
            text += "..." if len(added) > 8 else ""
        if silent:
            text += f"; {len(silent)} keys raised no channel (listed in Mapping)"
        self.report({"INFO"} if added else {"WARNING"}, text)
        return {"FINISHED"}


class FACEMESH_OT_check_transfer(bpy.types.Operator):
    """Render a few frames of the baked character, read them with the face landmarker and
    measure per channel how closely the character's expression follows the performer's;
    optionally set each channel's gain so the character reaches the performer's range"""

    bl_idname = "facemesh.check_transfer"
    bl_label = "Check Transfer"
    bl_options = {"REGISTER", "UNDO"}

    frames: bpy.props.IntProperty(name="Frames", min=4, max=200, default=24)
    tune_gains: bpy.props.BoolProperty(name="Tune Gains", default=False,
                                       description="Set each mapped channel's gain from the measured ranges (re-bake after)")

    def execute(self, context):
        import numpy as np

        from ..blender import options
        from ..blender.probe import check_transfer
        from ..core.take import Take

        ch = _character(self, context)
        if ch is None:
            return {"CANCELLED"}
        scene = context.scene
        s = scene.facemesh
        if not s.last_take:
            self.report({"ERROR"}, "no baked take to check: process a video or bake a take first")
            return {"CANCELLED"}
        mapping = options.mapping(scene, ch)
        done = _with_progress(self, context, "check the transfer", lambda progress: check_transfer(
            scene, ch, Take.load(bpy.path.abspath(s.last_take)), mapping, self.frames, options.model_path(context),
            options.profile(scene), on_progress=progress))
        if done is None:
            return {"CANCELLED"}
        corr = done["correlation"]
        s.transfer.clear()
        driven = sorted({c.source for c in mapping.channels if c.enabled}) if mapping is not None else []
        for name in driven:
            it = s.transfer.add()
            it.name = name
            r = corr.get(name, float("nan"))
            it.reason = f"r = {r:.2f}" if r == r else "did not move"
        if self.tune_gains and done["gains"]:
            if not len(s.mappings):
                options.fill_mapping_list(scene, mapping)
            for item in s.mappings:
                g = done["gains"].get((item.source, item.target))
                if g is not None:
                    item.gain = g

        def mean(names):
            v = [corr[n] for n in names if corr.get(n) == corr.get(n)]
            return f"{np.mean(v):.2f}" if v else "-"

        text = (f"transfer on {done['faces_found']}/{len(done['frames'])} rendered frames: jawOpen {mean(('jawOpen',))}, "
                f"smile {mean(SMILE)}, blink {mean(BLINK)} (correlation with the performer)")
        if self.tune_gains:
            text += f"; {len(done['gains'])} gains tuned: bake again to use them"
        self.report({"INFO"}, text)
        return {"FINISHED"}
