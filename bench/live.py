"""Live capture on Blender's side, run by hand: python bench/live.py [--seconds S] [--preview-rate R] [--no-record]
[--source video|livelink|ifacialmocap] [--phones N]

Registers the add-on in this process, builds the capture rig and plays a synthetic head-turn
clip as a simulated live camera (real-time pace, frames dropped when the consumer lags).
bpy.app.timers never fire in the bpy module, so the timer is emulated as Blender runs it:
call live.tick(), then wait until the interval it returned has passed since the tick began,
until it returns None. Recording is on (unless --no-record), so the take is recorded and the
last tick saves and bakes it; that tick is reported on its own line, not in the tick stats.
--source livelink / ifacialmocap: instead of the clip, N stand-in phones on 127.0.0.1 (the
phone is what cannot exist here) replay a take each as the app's packets at 60 fps, with 2%
loss, 2% reordering and 5% garbage, each phone driving its own capture rig; the recorded take
is compared with what was replayed, and the packet counts with what was sent.
Prints, measured in this one run: main-thread time per tick (all, with a sample, with a
preview image), where a tick's time goes, frame-read -> rig latency, frames seen/dropped, fps.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

GOALS = (("median tick", "< 1 ms", 1.0), ("p99 tick", "< 5 ms", 5.0), ("median latency", "< 50 ms", 50.0))


def _timed(fn, into: list):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            into.append(time.perf_counter() - t0)
    return wrapper


def _ms(a) -> str:
    a = np.asarray(a, np.float64) * 1000.0
    if not len(a):
        return "n/a"
    return f"median {np.median(a):.3f}, p99 {np.percentile(a, 99):.3f}, max {a.max():.3f} ms (n={len(a)})"


def _phone_plans(args):
    """A take per phone, its packets with loss, reordering and garbage, interleaved in sending order."""
    from blender_facemesh.core.testing.phones import ifacialmocap_packets, livelink_packets, mix, phone_take

    n = max(2, int(round(args.seconds * 60)))
    replays, plans = [], []
    for k in range(args.phones):
        take = phone_take(n, seed=k)
        frames = (livelink_packets(take, f"Phone {k + 1}") if args.source == "livelink"
                  else ifacialmocap_packets(take))
        replays.append(take)
        plans.append(mix(frames, args.source, loss=0.02, reorder=0.02 if args.source == "livelink" else 0.0,
                         garbage=0.05, seed=k))
    packets = [p for group in zip(*(pl.packets for pl in plans)) for p in group]
    packets += [p for pl in plans for p in pl.packets[min(len(x.packets) for x in plans):]]
    print(f"{args.phones} stand-in phone(s), {args.source}: {n} frames each at 60 fps ({n / 60:.1f} s), "
          f"{len(packets)} packets; cores: {os.cpu_count()}")
    return replays, plans, packets


def _phone_report(worker, plans, replays, last_take) -> None:
    """Packets counted against what was sent; the recorded take against the replayed ones."""
    from blender_facemesh.core.take import Take

    want = {}
    for pl in plans:
        for k, v in pl.dropped.items():
            want[k] = want.get(k, 0) + v
    print(f"packets: {worker.counts.describe()}; sent garbage/late {dict(sorted(want.items()))}, "
          f"lost {sum(pl.lost for pl in plans)}, counted missing {worker.counts.missing}")
    if not last_take:
        return
    rec = Take.load(last_take)
    for fid, name in sorted(worker.performer_names.items()):
        if worker.phone.protocol == "livelink":
            k = int(name.split()[-1]) - 1
        else:
            k = 0
        src, pl = replays[k].face_track(0), plans[k]
        got = rec.face_track(fid)
        idx = pl.kept
        on = src["present"][idx]
        err = float("nan")
        if got["present"].sum() == on.sum():
            err = float(abs(got["blendshapes"][got["present"]] - src["blendshapes"][idx][on]).max())
        print(f"performer {fid} ({name}): recorded {int(got['present'].sum())} face frames, replayed "
              f"{int(on.sum())} kept; largest score error {err:.2g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length at 30 fps (default 10)")
    ap.add_argument("--preview-rate", type=float, default=4.0,
                    help="preview image updates per second (default 4, the add-on's default); 0 disables, "
                         "though the add-on still draws the first sample's image")
    ap.add_argument("--no-record", action="store_true", help="don't record (no save + bake at the end)")
    ap.add_argument("--source", choices=["video", "livelink", "ifacialmocap"], default="video",
                    help="what streams in: the clip as a live camera (default), or stand-in iPhone apps")
    ap.add_argument("--phones", type=int, default=1, help="phone sources: how many phones (performers), default 1")
    args = ap.parse_args()
    import bpy

    import blender_facemesh
    from blender_facemesh.blender import live, options
    from blender_facemesh.core.capture.sources import SimulatedLiveSource
    from blender_facemesh.core.testing.synthetic import head_turn_sequence, write_clip

    tmp = tempfile.TemporaryDirectory(prefix="facemesh_bench_live_")
    phone = args.source != "video"
    if not phone:
        n = max(2, int(round(args.seconds * 30)))
        t0 = time.perf_counter()
        clip = write_clip(os.path.join(tmp.name, "clip.mp4"), head_turn_sequence(n), fps=30).path
        print(f"clip: {n} frames at 30 fps ({n / 30:.1f} s, 512x512), written in {time.perf_counter() - t0:.1f} s; "
              f"cores: {os.cpu_count()}")
    else:
        replays, plans, packets = _phone_plans(args)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_facemesh.register()
    try:
        bpy.ops.facemesh.build_rig()
        scene = bpy.context.scene
        for _ in range(1, args.phones if phone else 1):
            bpy.ops.facemesh.build_rig()  # a capture rig per phone
        rigs = sorted((o for o in bpy.data.objects if o.type == "ARMATURE"), key=lambda o: o.name)
        scene.facemesh.take_dir = os.path.join(tmp.name, "takes")
        scene.facemesh.recording = not args.no_record

        # Bench-side instrumentation only: wrap the module functions tick() looks up.
        t_apply, t_preview, t_poll = [], [], []
        live.apply_face = _timed(live.apply_face, t_apply)
        live.update_preview = _timed(live.update_preview, t_preview)
        settings = options.worker_settings(bpy.context, preview=args.preview_rate > 0)
        settings.preview_rate = args.preview_rate
        if phone:
            from blender_facemesh.core.capture.phone import PhoneSettings
            from blender_facemesh.core.testing.phones import write_packets
            from blender_facemesh.core.tracking.phone import PhoneWorker

            worker = PhoneWorker(PhoneSettings(args.source, host="127.0.0.1", port=0), settings)
            session = live.start(bpy.context, worker, settings)
            # the stand-in phones run in a process of their own, as a phone does not share Blender's GIL
            write_packets(packets, os.path.join(tmp.name, "packets.bin"))
            sender = subprocess.Popen([sys.executable, "-m", "blender_facemesh.core.testing.phones",
                                       os.path.join(tmp.name, "packets.bin"), *map(str, worker.address)])
        else:
            session = live.start(bpy.context, SimulatedLiveSource(clip), settings)
        session.poll = _timed(session.poll, t_poll)
        lat, worker_lat = [], []  # every applied sample (session keeps only the last 120)
        applied = session.applied

        def on_applied(sample):
            applied(sample)
            lat.append(session._latency[-1] * 1000.0)
            worker_lat.append((sample.done_at - sample.read_at) * 1000.0)
        session.applied = on_applied

        ticks, with_sample, with_preview, parts = [], [], [], []
        run0 = time.perf_counter()
        quiet_since = None
        while True:
            if phone:  # a phone never ends its stream: stop once the replay is over and drained
                assign = [p for p in scene.facemesh.performers if not p.character]
                for p in assign:
                    p.character = rigs[p.face_id % len(rigs)]
                if assign:
                    live.refresh_drivers()
                if sender.poll() is not None:
                    quiet_since = quiet_since or time.perf_counter()
                    if time.perf_counter() - quiet_since > 0.3:
                        start = time.perf_counter()
                        live.stop()
                        last = time.perf_counter() - start
                        break
            na, npv, npl = len(t_apply), len(t_preview), len(t_poll)
            start = time.perf_counter()
            interval = live.tick()
            spent = time.perf_counter() - start
            if interval is None:
                last = spent
                break
            ticks.append(spent)
            with_sample.append(len(t_apply) > na)
            with_preview.append(len(t_preview) > npv)
            parts.append((sum(t_poll[npl:]), sum(t_apply[na:]), sum(t_preview[npv:])))
            wait = start + interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        wall = time.perf_counter() - run0
        last_take = scene.facemesh.last_take
    finally:
        live.stop(save_only=True)
        blender_facemesh.unregister()

    ticks, ws, wp = np.array(ticks), np.array(with_sample, bool), np.array(with_preview, bool)
    parts = np.array(parts).reshape(-1, 3)
    med, p99 = np.median(ticks) * 1000, np.percentile(ticks, 99) * 1000
    lat_med = float(np.median(lat)) if lat else float("nan")
    print(f"record: {'off' if args.no_record else 'on'}, preview: {args.preview_rate:g}/s, "
          f"run {wall:.1f} s, {len(ticks)} ticks ({len(ticks) / wall:.0f}/s), {ws.sum()} with a new sample")
    print(f"tick, all:               {_ms(ticks)}")
    print(f"tick, with a sample:     {_ms(ticks[ws])}")
    print(f"tick, sample, no image:  {_ms(ticks[ws & ~wp])}")
    print(f"tick, with preview img:  {_ms(ticks[wp])}")
    print(f"tick, nothing new:       {_ms(ticks[~ws])}")
    if ws.any():
        p = np.median(parts[ws], axis=0) * 1000
        print(f"inside a sample tick (median ms): poll {p[0]:.3f}, apply_face {p[1]:.3f}, "
              f"other {np.median(ticks[ws] - parts[ws].sum(1)) * 1000:.3f}")
    print(f"update_preview:          {_ms(t_preview)}")
    print(f"final tick (stop{'' if args.no_record else ' + save + bake'}): {last * 1000:.1f} ms; "
          f"{live.state.message}")
    if lat:
        print(f"latency read -> rig:     median {lat_med:.1f}, p95 {np.percentile(lat, 95):.1f} ms "
              f"(n={len(lat)}); worker part (read -> queued) median {np.median(worker_lat):.1f} ms; "
              f"session.latencies_ms() (last 120) median {np.median(session.latencies_ms()):.1f} ms")
    print(f"frames seen {session.frames_seen}, dropped {session.frames_dropped}, "
          f"delivered {session.frames_seen / wall:.1f} fps over the run (session.fps {session.fps:.1f})")
    if phone:
        _phone_report(worker, plans, replays, last_take)
    for (name, goal, limit), value in zip(GOALS, (med, p99, lat_med)):
        print(f"goal {name} {goal}: {value:.3f} ms  {'PASS' if value < limit else 'MISS'}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
