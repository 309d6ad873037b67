"""Memory and time of reading big inputs: a Live Link Face CSV and a JSON take of ROWS frames
(default 1,000,000: the CSV is about 800 MB), each converted to .npz by the real command in a
child process whose peak memory (max RSS) is measured. Goal: under 2 GB for a million rows.

    python bench/large_inputs.py [--rows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blender_facemesh.core.formats.livelink import BLENDSHAPE_COUNT, HEADER, format_timecode  # noqa: E402

GOAL_MB_PER_MILLION = 2048


def write_csv(path: Path, rows: int, fps: float = 60.0, chunk: int = 50_000) -> None:
    """A Live Link Face CSV like the app's: 61 values with 10 decimals per row."""
    rng = np.random.default_rng(1)
    with open(path, "w") as f:
        f.write(",".join(HEADER) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            values = rng.random((n, 61)) * np.r_[np.ones(52), np.full(9, 0.3)]
            codes = [format_timecode((start + i) / fps, fps) for i in range(n)]
            body = np.char.add(np.array(codes, dtype=object).astype(str), f",{BLENDSHAPE_COUNT},")
            numbers = [",".join(f"{x:.10f}" for x in row) for row in values]
            f.write("\n".join(a + b for a, b in zip(body, numbers)) + "\n")


def write_json(path: Path, rows: int, fps: float = 30.0) -> None:
    """A JSON take in the documented interchange form, written a frame at a time."""
    from blender_facemesh.core.channels import ARKIT_NAMES
    from blender_facemesh.core.take import FORMAT, VERSION

    head = {"format": FORMAT, "version": VERSION, "fps": fps, "width": 640, "height": 480, "source": {},
            "meta": {}, "blendshape_names": list(ARKIT_NAMES)}
    mat = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, -50, 0, 0, 0, 1]
    with open(path, "w") as f:
        f.write(json.dumps(head)[:-1] + ',"frames":[')
        for i in range(rows):
            face = {"id": 0, "head_matrix": mat, "blendshapes": {n: round((i % 97) / 97, 5) for n in ARKIT_NAMES}}
            f.write(("," if i else "") + json.dumps({"t": round(i / fps, 6), "faces": [face]}, separators=(",", ":")))
        f.write("]}")


def convert(src: Path, out: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak MB of the child, last stderr line)."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(out)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    secs = time.monotonic() - t0
    peak_mb = float(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else float("nan")
    return proc.returncode, secs, peak_mb, (proc.stderr.strip().splitlines() or [""])[-1]


_CHILD = """
import resource, sys
from blender_facemesh.cli import main
code = main(["convert", sys.argv[1], "-o", sys.argv[2]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
sys.exit(code)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", help="folder to keep the generated files in")
    args = ap.parse_args()
    d = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="facemesh-large-"))
    d.mkdir(parents=True, exist_ok=True)
    goal = GOAL_MB_PER_MILLION * args.rows / 1e6
    print(f"{args.rows} rows; goal: peak under {goal:.0f} MB")
    failed = False
    for kind, writer in (("csv", write_csv), ("json", write_json)):
        src = d / f"big.{kind}"
        if not src.is_file():
            t0 = time.monotonic()
            writer(src, args.rows)
            print(f"  wrote {src.name}: {src.stat().st_size / 1e6:.0f} MB in {time.monotonic() - t0:.0f} s")
        code, secs, peak, last = convert(src, d / f"big_{kind}.npz")
        ok = code == 0 and peak < goal
        failed |= not ok
        print(f"{kind:>5} -> npz: exit {code}, {secs:6.1f} s, peak {peak:7.0f} MB "
              f"({peak * 1024 / args.rows:5.2f} KB per row, file {src.stat().st_size / args.rows:.0f} B per row) "
              f"{'PASS' if ok else 'FAIL'}  {last[:100]}")
    if not args.keep:
        import shutil

        shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
