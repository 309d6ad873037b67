"""Bake speed, run by hand: python bench/bake.py [--frames N]

Writes the same 52 shape-key channels x N frames onto the capture rig twice in one run:
with our bulk writer (channelbag F-curves + foreach_set) and with keyframe_insert, the way most
add-ons do it, and prints keys per second for both and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    args = ap.parse_args()
    import bpy

    from blender_facemesh.blender.keyframes import ensure_channelbag, write_curve
    from blender_facemesh.blender.rig import build_rig
    from blender_facemesh.core.channels import ARKIT_NAMES
    from blender_facemesh.core.capture.model import load_model

    bpy.ops.wm.read_factory_settings(use_empty=True)
    _rig, face = build_rig(bpy.context, load_model())
    keys = face.data.shape_keys
    n = args.frames
    frames = np.arange(1, n + 1, dtype=np.float64)
    values = np.random.default_rng(0).random((n, len(ARKIT_NAMES)))
    total = n * len(ARKIT_NAMES)

    t0 = time.perf_counter()
    bag = ensure_channelbag(keys, "bench bulk")
    for c, name in enumerate(ARKIT_NAMES):
        write_curve(bag, f'key_blocks["{name}"].value', 0, frames, values[:, c])
    bulk = time.perf_counter() - t0

    keys.animation_data_clear()
    sub = max(1, n // 10)  # keyframe_insert is slow: time a tenth of the frames and scale
    t0 = time.perf_counter()
    for i in range(sub):
        for c, name in enumerate(ARKIT_NAMES):
            kb = keys.key_blocks[name]
            kb.value = values[i, c]
            kb.keyframe_insert("value", frame=float(frames[i]))
    insert = (time.perf_counter() - t0) * n / sub

    print(f"{n} frames x {len(ARKIT_NAMES)} channels = {total} keys")
    print(f"bulk writer:     {bulk:.3f} s, {total / bulk:,.0f} keys/s")
    print(f"keyframe_insert: {insert:.3f} s (timed on {sub} frames), {total / insert:,.0f} keys/s")
    print(f"ratio bulk / keyframe_insert: {insert / bulk:.0f}x")


if __name__ == "__main__":
    main()
