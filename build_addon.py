"""Build the Blender extension zip with Blender's own packager (the bl_pkg CLI inside bpy).

    python build_addon.py [--output-dir dist]

This first version packs the add-on alone (Blender must find mediapipe and the model some
other way, as the tests' environment provides); bundling wheels and the model per platform
comes with issue 4.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "blender_facemesh"


class BuildError(Exception):
    pass


def blender_ext_cli() -> Path:
    """blender_ext.py from the installed bpy module (the same code as `blender --command extension`)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("bpy")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("bpy is not installed: pip install bpy==5.0.1 (it carries Blender's extension packager)")
    base = Path(list(spec.submodule_search_locations)[0])
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise BuildError(f"Blender's extension CLI was not found under {base}")
    return found[-1]


def run_cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, str(blender_ext_cli()), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError((proc.stdout + proc.stderr).strip() or f"blender_ext {args[0]} failed")
    return proc.stdout


def build(output_dir: Path) -> Path:
    """Build and validate the add-on zip; returns its path."""
    import tomllib

    manifest = tomllib.loads((PACKAGE / "blender_manifest.toml").read_text())
    output_dir.mkdir(parents=True, exist_ok=True)
    zip_path = output_dir / f"{manifest['id']}-{manifest['version']}.zip"
    run_cli("build", "--source-dir", str(PACKAGE), "--output-filepath", str(zip_path))
    run_cli("validate", str(zip_path))
    return zip_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    args = ap.parse_args(argv)
    try:
        path = build(args.output_dir)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
