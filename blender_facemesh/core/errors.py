"""The one base class of the errors a user can cause and fix (a bad file, a missing model, a
take too short to calibrate...). Each stage raises its own subclass with a message that says
what to do; the command line and the operators catch ``FacemeshError`` alone and show the
message, so anything else that escapes is a bug and keeps its traceback."""

from __future__ import annotations


class FacemeshError(Exception):
    """A user-facing error: ``str(exc)`` is the whole message, ready for a report or stderr."""

    exit_code = 2  # command line: bad input (1 is kept for failures while processing)


class SettingsError(FacemeshError, ValueError):
    """An option out of range (field of view, smoothing, face count), named in the message."""


class OutputError(FacemeshError):
    """A result that could not be written (a full disk, a read-only folder, an encoder that failed)."""

    exit_code = 1
