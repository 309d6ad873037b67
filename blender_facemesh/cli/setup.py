"""``fetch-model`` and ``info``: getting the model and seeing what this machine will use."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import EXIT_FAILED, fail


def cmd_fetch_model(args) -> int:
    from ..core.capture.model import ModelError, fetch_model

    try:
        path = fetch_model(Path(args.dest) if args.dest else None,
                           log=lambda m: print(m, file=sys.stderr))
    except ModelError as exc:
        return fail(str(exc), EXIT_FAILED)  # the download failed: not the user's input
    print(path)
    return 0


def cmd_info(args) -> int:
    from importlib.metadata import version

    from ..core.capture.landmarker import choose_delegate
    from ..core.capture.model import find_model

    path = find_model()
    delegate, why = choose_delegate("AUTO", path)
    print(f"model: {path}\nmediapipe: {version('mediapipe')}\ndelegate: {delegate} ({why})")
    return 0
