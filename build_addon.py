"""Build the Blender extension zips: one per platform, each carrying the wheels it needs and the
face model, so users install by dropping a zip into Blender (no pip, no downloads).

    python build_addon.py                         # all platforms, from the lock, into dist/
    python build_addon.py --platform linux-x64    # one platform
    python build_addon.py --offline               # only the wheel cache, no network
    python build_addon.py --update-lock           # re-resolve the wheels and rewrite wheels.lock.json
    python build_addon.py --addon-only            # the add-on alone (no wheels, no model): for development

Wheels are downloaded with pip for the target platform and Python (not this machine's), for
Python 3.11 (Blender 4.5 / 5.0) and 3.13 (Blender 5.1+), and checked against the sha256 in
wheels.lock.json. numpy is never bundled (Blender ships it). The zips are built and validated by
Blender's own extension tool (the bl_pkg CLI inside the bpy module).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from blender_facemesh.core.capture.model import (MODEL_FILENAME, ModelError, find_model,  # noqa: E402
                                         user_cache_dir, verify_model)
from blender_facemesh.core.capture.model import sha256_of as sha256  # noqa: E402  (the model's own check)
PACKAGE = ROOT / "blender_facemesh"
LOCK = ROOT / "wheels.lock.json"

# Blender platform -> pip platform tags, newest first (pip accepts any of them)
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
}
PYTHONS = ("3.11", "3.13")  # Blender 4.5 LTS and 5.0 / Blender 5.1+
# opencv-contrib-python is the one cv2 package mediapipe depends on; 4.11 is built against
# numpy 2 and runs on numpy 1.26 too (4.12 requires numpy 2, which Blender 4.5/5.0 do not have)
REQUIREMENTS = ("mediapipe==1.2.3", "opencv-contrib-python==4.11.0.86")
NEVER_BUNDLE = {"numpy"}  # Blender's own numpy must be the one loaded
# resolve against the numpy each Blender ships, so no wheel asks for a newer one
BLENDER_NUMPY = {"3.11": "numpy==1.26.4", "3.13": "numpy>=2"}
MUST_HAVE = {"mediapipe", "opencv_contrib_python"}


class BuildError(Exception):
    pass


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_cache() -> Path:
    return user_cache_dir() / "wheels"


def wheel_dist(filename: str) -> tuple[str, str]:
    """(normalised distribution name, version) from a wheel file name."""
    parts = filename[:-4].split("-")
    return re.sub(r"[-_.]+", "_", parts[0]).lower(), parts[1]


# --- Blender's extension tool --------------------------------------------------------------

def blender_ext_cli() -> Path:
    """blender_ext.py from the installed bpy module (the same code as `blender --command extension`)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("bpy")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("bpy is not installed: pip install bpy==5.0.1 on Python 3.11 or bpy==5.2.3 on 3.13 (it carries Blender's extension packager)")
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


# --- wheels ----------------------------------------------------------------------------------

def _pip_download(dest: Path, platform: str, python: str, requirements: list[str], no_deps: bool) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", python, "-d", str(dest)]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    if no_deps:
        cmd.append("--no-deps")
    proc = subprocess.run(cmd + requirements, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = [x for x in proc.stderr.splitlines() if x.startswith("ERROR")] or proc.stderr.splitlines()[-3:]
        raise BuildError(f"pip could not get wheels for {platform} / Python {python}: {' '.join(tail)}")


def update_lock(cache: Path) -> dict:
    """Resolve REQUIREMENTS for every platform and Python; record each wheel and its sha256."""
    lock = {"requirements": list(REQUIREMENTS), "never_bundled": sorted(NEVER_BUNDLE), "platforms": {}}
    for platform in PLATFORMS:
        lock["platforms"][platform] = {}
        for python in PYTHONS:
            with tempfile.TemporaryDirectory() as tmp:
                _log(f"resolving {platform} / Python {python}")
                _pip_download(Path(tmp), platform, python, [*REQUIREMENTS, BLENDER_NUMPY[python]], no_deps=False)
                entries = []
                for whl in sorted(Path(tmp).glob("*.whl")):
                    if wheel_dist(whl.name)[0] in NEVER_BUNDLE:
                        continue
                    digest = sha256(whl)
                    _store(cache, whl, digest)
                    entries.append({"file": whl.name, "sha256": digest})
                lock["platforms"][platform][python] = entries
    LOCK.write_text(json.dumps(lock, indent=1) + "\n")
    return lock


def _store(cache: Path, whl: Path, digest: str) -> Path:
    dest = cache / whl.name
    if not dest.is_file() or sha256(dest) != digest:
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy2(whl, dest)
    return dest


def load_lock() -> dict:
    try:
        lock = json.loads(LOCK.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildError(f"cannot read {LOCK.name} ({exc}): run `python build_addon.py --update-lock`") from exc
    if lock.get("requirements") != list(REQUIREMENTS):
        raise BuildError(f"{LOCK.name} was made for {lock.get('requirements')}, not {list(REQUIREMENTS)}: "
                         "run `python build_addon.py --update-lock`")
    return lock


def check_complete(lock: dict, platform: str) -> list[dict]:
    """The platform's wheels over all Pythons; refuses a platform/Python that lacks a wheel."""
    per_python = lock["platforms"].get(platform)
    if not per_python:
        raise BuildError(f"{LOCK.name} has no wheels for {platform}: run `python build_addon.py --update-lock`")
    files: dict[str, dict] = {}
    for python in PYTHONS:
        entries = per_python.get(python) or []
        dists = {wheel_dist(e["file"])[0] for e in entries}
        missing = MUST_HAVE - dists
        if missing:
            raise BuildError(f"no {', '.join(sorted(missing))} wheel for {platform} / Python {python}")
        bundled = NEVER_BUNDLE & dists
        if bundled:
            raise BuildError(f"{LOCK.name} bundles {', '.join(bundled)} for {platform}: Blender ships its own")
        for e in entries:
            files[e["file"]] = e
    return sorted(files.values(), key=lambda e: e["file"])


def fetch_wheels(entries: list[dict], platform: str, cache: Path, offline: bool) -> list[Path]:
    """Every locked wheel from the cache, downloading what is missing; all hashes checked."""
    out = []
    for e in entries:
        path = cache / e["file"]
        if not (path.is_file() and sha256(path) == e["sha256"]):
            if offline:
                raise BuildError(f"{e['file']} is not in the wheel cache {cache} (offline build)")
            name, version = wheel_dist(e["file"])
            python = _python_of(e["file"])
            with tempfile.TemporaryDirectory() as tmp:
                _pip_download(Path(tmp), platform, python, [f"{name}=={version}"], no_deps=True)
                got = Path(tmp) / e["file"]
                if not got.is_file():
                    raise BuildError(f"pip did not deliver {e['file']} for {platform}")
                digest = sha256(got)
                if digest != e["sha256"]:
                    raise BuildError(f"{e['file']} has sha256 {digest[:12]}..., the lock says {e['sha256'][:12]}...")
                _store(cache, got, digest)
        out.append(path)
    return out


def _python_of(filename: str) -> str:
    tag = filename[:-4].split("-")[-3]
    m = re.search(r"cp3(\d+)", tag)
    return f"3.{m.group(1)}" if m else PYTHONS[0]


# --- packing ---------------------------------------------------------------------------------

def _manifest(platform: str | None, wheels: list[Path]) -> str:
    """The package's manifest with the platform's wheels and platforms filled in."""
    text = (PACKAGE / "blender_manifest.toml").read_text()
    text = re.sub(r'\npaths_exclude_pattern = \[.*?\]\n', "\n" + 'paths_exclude_pattern = ["__pycache__/", "*.pyc"]' + "\n",
                  text, flags=re.S)
    extra = ""
    if platform:
        extra += f'platforms = ["{platform}"]\n'
    if wheels:
        extra += "wheels = [\n" + "".join(f'  "./wheels/{w.name}",\n' for w in wheels) + "]\n"
    # top-level keys must come before the first [table]
    head, sep, tail = text.partition("\n[")
    return head.rstrip("\n") + "\n" + extra + sep + tail


def _stage(dest: Path, platform: str | None, wheels: list[Path], with_model: bool) -> None:
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.task", "*.part"))
    if with_model:
        try:
            model = find_model()
        except ModelError as exc:
            raise BuildError(f"the model is needed in the zip: {exc}") from exc
        (dest / "models").mkdir(exist_ok=True)
        shutil.copy2(model, dest / "models" / MODEL_FILENAME)
        verify_model(dest / "models" / MODEL_FILENAME)  # the copy, not just the source
    if wheels:
        (dest / "wheels").mkdir()
        for w in wheels:
            shutil.copy2(w, dest / "wheels" / w.name)
    (dest / "blender_manifest.toml").write_text(_manifest(platform, wheels))


def _version() -> str:
    import tomllib

    return tomllib.loads((PACKAGE / "blender_manifest.toml").read_text())["version"]


def build_platform(platform: str, output_dir: Path, cache: Path, offline: bool = False,
                   lock: dict | None = None) -> Path:
    entries = check_complete(lock or load_lock(), platform)
    wheels = fetch_wheels(entries, platform, cache, offline)
    zip_path = output_dir / f"blender_facemesh-{_version()}-{platform}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "blender_facemesh"
        _stage(stage, platform, wheels, with_model=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        run_cli("build", "--source-dir", str(stage), "--output-filepath", str(zip_path))
    run_cli("validate", str(zip_path))
    return zip_path


def build(output_dir: Path) -> Path:
    """The add-on alone (no wheels, no model), validated: for development and quick tests."""
    zip_path = output_dir / f"blender_facemesh-{_version()}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "blender_facemesh"
        _stage(stage, None, [], with_model=False)
        output_dir.mkdir(parents=True, exist_ok=True)
        run_cli("build", "--source-dir", str(stage), "--output-filepath", str(zip_path))
    run_cli("validate", str(zip_path))
    return zip_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                    help="build only this platform (repeatable); default: all")
    ap.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    ap.add_argument("--wheel-cache", type=Path, default=None,
                    help="where downloaded wheels are kept (default: the user cache)")
    ap.add_argument("--offline", action="store_true", help="use only the wheel cache; never download")
    ap.add_argument("--update-lock", action="store_true", help="re-resolve the wheels and rewrite the lock")
    ap.add_argument("--addon-only", action="store_true", help="the add-on without wheels or model")
    args = ap.parse_args(argv)
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    cache = args.wheel_cache or default_cache()
    try:
        if args.addon_only:
            path = build(args.output_dir)
            print(f"{path}  {path.stat().st_size / 1e6:.1f} MB (add-on only)")
            return 0
        lock = update_lock(cache) if args.update_lock else load_lock()
        for platform in args.platform or list(PLATFORMS):
            _log(f"building {platform}")
            path = build_platform(platform, args.output_dir, cache, args.offline, lock)
            print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
