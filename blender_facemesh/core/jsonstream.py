"""Reading one big JSON object a member at a time, so that a million-frame JSON take costs the
arrays it becomes instead of the ~10 KB of Python objects per frame that ``json.load`` builds.

Only the top level (an object) and one chosen array member are walked by hand; every other
value, and each element of that array, is parsed by the standard decoder.
"""

from __future__ import annotations

import json
import re
from typing import Callable, TextIO

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
CHUNK = 1 << 20
MAX_VALUE = 64 << 20  # one frame, or the header, is never near this: past it, the JSON is broken


class _Reader:
    def __init__(self, f: TextIO):
        self.f, self.buf, self.pos, self.eof = f, "", 0, False

    def _more(self) -> bool:
        """Read more text (at least as much again as is buffered, so big values stay linear)."""
        if self.eof:
            return False
        chunk = self.f.read(max(CHUNK, len(self.buf) - self.pos))
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            where = "the end of the file" if not c else repr(c)
            raise json.JSONDecodeError(f"expected {' or '.join(map(repr, chars))}, found {where}", self.buf, self.pos)
        self.pos += 1
        return c

    def value(self):
        self.peek()
        while True:
            try:
                v, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if len(self.buf) - self.pos < MAX_VALUE and self._more():
                    continue
                raise
            if end == len(self.buf) and self._more():  # a number may go on in the next chunk
                continue
            self.pos = end
            return v


class NotAnObject(ValueError):
    """The file is JSON (or starts like it) but its top level is not an object."""


def load_object(f: TextIO, streamed: str, each: Callable[[object], None]) -> dict:
    """The top-level object of ``f`` without its ``streamed`` array member, whose elements are
    handed to ``each`` one at a time as they are read. Raises json.JSONDecodeError (bad JSON),
    ValueError (the member is not an array; NotAnObject: the top level is not an object) or
    RecursionError (nested too deeply)."""
    r = _Reader(f)
    if r.peek() != "{":
        raise NotAnObject(f"the top level is {_what(r.peek())}, not an object")
    r.pos += 1
    out = {}
    if r.peek() == "}":
        r.pos += 1
        return out
    while True:
        key = r.value()
        if not isinstance(key, str):
            raise json.JSONDecodeError("expected a member name", r.buf, r.pos)
        r.expect(":")
        if key == streamed:
            if r.peek() != "[":
                raise ValueError(f"{streamed!r} is not a list")
            r.pos += 1
            if r.peek() == "]":
                r.pos += 1
            else:
                while True:
                    each(r.value())
                    if r.expect(",]") == "]":
                        break
            out[key] = None
        else:
            out[key] = r.value()
        if r.expect(",}") == "}":
            break
    if r.peek():
        raise json.JSONDecodeError("extra data after the take", r.buf, r.pos)
    return out


def _what(c: str) -> str:
    return {"": "empty", "[": "a list", '"': "a string"}.get(c, "not JSON" if c not in "-0123456789tfn" else "a single value")
