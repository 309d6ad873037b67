"""``recover``: recordings that a crash or a kill left unfinished, saved as takes.

``track`` streams every take to a journal beside its output while it records (core.journal);
``recover`` lists the journals that were never finished and saves each as the take it was to
become (or ``--output``), or deletes them with ``--discard``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import FacemeshError, SettingsError
from .common import EXIT_FAILED, check_output, fail


def note_unfinished() -> None:
    """One note per unfinished recording, for commands that record (``track``)."""
    from ..core.journal import unfinished

    try:
        found = unfinished()
    except OSError:
        return
    for u in found:
        print(f"note: an unfinished recording was found: {u.describe()}; "
              "`python -m blender_facemesh recover` saves it as a take", file=sys.stderr)


def _journals(items: list[str]):
    from ..core.journal import SUFFIX, summary, unfinished

    if not items:
        return unfinished()
    out = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            out += unfinished([p])
        elif p.is_file():
            out.append(summary(p))
        else:
            raise SettingsError(f"{item} not found: give a {SUFFIX} journal or the folder holding it")
    return out


def cmd_recover(args) -> int:
    from ..core.journal import discard, recover

    found = _journals(args.journals)
    if not found:
        print("no unfinished recordings found")
        return 0
    if args.output and len(found) != 1:
        return fail(f"--output names one take, but {len(found)} unfinished recordings were found: "
                    "give the journal to recover")
    if args.list:
        for u in found:
            print(f"{u.describe()}; recovers as {u.take}")
        return 0
    if args.output:
        check_output(args.output)
    failed = 0
    for u in found:
        try:
            if args.discard:
                discard(u.journal)
                print(f"discarded {u.journal} ({u.frames} frames)")
                continue
            take, dest = recover(u.journal, args.output)
            print(f"recovered {len(take)} frames ({take.duration:.1f} s) from {u.journal.name} -> {dest}")
        except (FacemeshError, OSError) as exc:
            failed += 1
            print(f"error: {u.journal}: {exc}", file=sys.stderr)
    return EXIT_FAILED if failed else 0
