"""A bounded cursor over GGUF header bytes: scalars, strings and arrays, nothing sized blindly.

Running past the bytes given raises `HeaderIncomplete` (a remote reader fetches more);
a count past a plausibility limit raises `implausible` before anything is sized by it.
Big arrays (token lists, merges, scores) are skipped by length, never decoded.
"""

from __future__ import annotations

import functools
import mmap
import re
import struct
from typing import Any, NamedTuple

from stack.models.header import (
    MAX_ARRAY_LENGTH,
    MAX_LAYERS,
    MAX_STRING_LENGTH,
    GgufError,
    HeaderIncomplete,
    implausible,
)

# GGUF value types: scalar struct formats; 8 is a string, 9 an array.
_SCALARS: dict[int, str] = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ARRAY_HEAD = struct.Struct("<IQ")
MAX_KEPT_STRING = 4096
MAX_KEPT_ARRAY = MAX_LAYERS


def check_count(what: str, value: int, limit: int) -> int:
    if value < 0:
        raise implausible(f"{what} {value:,} is negative")
    if value > limit:
        raise implausible(f"{what} {value:,} is more than {limit:,}")
    return value


@functools.cache
def _short_string_run(count: int) -> re.Pattern[bytes]:
    """``count`` consecutive GGUF strings of at most 127 bytes, matched in C.

    A string is a u64 little-endian length and its bytes. One alternative per length
    (its first byte picks exactly one), so a match is the exact walk a loop would do.
    Vocabulary and merge lists are almost all short strings; a run holding a longer one
    fails to match and is walked in Python instead.
    """
    # Tokens and merges are mostly 3-12 bytes: try those lengths first.
    lengths = [6, 5, 7, 4, 8, 3, 9, 10, 2, 11, 12, 1, *range(13, 128), 0]
    one = b"|".join(re.escape(bytes([n])) + b"\x00{7}" + b".{%d}" % n for n in lengths)
    # Possessive: a run that fails never backtracks into alternatives that cannot match.
    return re.compile(b"(?:%s){%d}+" % (one, count), re.DOTALL)


_RUN = 256


class Array(NamedTuple):
    """A metadata array left in the buffer: read later, and only as far as it is needed.

    ``fmt`` is the struct code of a scalar item, None for strings (never read).
    """

    fmt: str | None
    start: int
    length: int


class Cursor:
    """A cursor over the header bytes; running past the end raises HeaderIncomplete."""

    def __init__(self, buf: bytes | bytearray | mmap.mmap) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0

    def need(self, size: int) -> int:
        start = self.pos
        self.pos = start + size
        if self.pos > self.end:
            raise HeaderIncomplete(self.pos, self.end)
        return start

    def unpack(self, fmt: struct.Struct) -> tuple[Any, ...]:
        return fmt.unpack_from(self.buf, self.need(fmt.size))

    def u32(self) -> int:
        return int(U32.unpack_from(self.buf, self.need(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self.buf, self.need(8))[0])

    def string(self, keep: int = MAX_KEPT_STRING) -> str | None:
        """The next string, or None (skipped) when it is longer than ``keep`` bytes."""
        length = check_count("string length", self.u64(), MAX_STRING_LENGTH)
        start = self.need(length)
        if length > keep:
            return None
        return bytes(self.buf[start : self.pos]).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, end = self.buf, self.pos, self.end
        match = _short_string_run(_RUN).match if count >= _RUN else None
        while count:
            found = match(buf, pos) if match is not None and count >= _RUN else None
            if found is not None:
                pos = found.end()
                count -= _RUN
                continue
            for _ in range(min(count, _RUN)):
                if pos + 8 > end:
                    raise HeaderIncomplete(pos + 8, end)
                length = _U64.unpack_from(buf, pos)[0]
                if length > MAX_STRING_LENGTH:
                    check_count("string length", length, MAX_STRING_LENGTH)
                pos += 8 + length
                if pos > end:
                    raise HeaderIncomplete(pos, end)
            count -= min(count, _RUN)
        self.pos = pos

    def value(self, vtype: int, *, keep: bool = True) -> Any:
        """One metadata value: a scalar, a str (None when skipped) or an :class:`Array`."""
        if vtype in _SCALARS:
            fmt = "<" + _SCALARS[vtype]
            return struct.unpack_from(fmt, self.buf, self.need(struct.calcsize(fmt)))[0]
        if vtype == _STRING:
            return self.string(MAX_KEPT_STRING if keep else -1)
        if vtype != _ARRAY:
            raise GgufError(f"unknown metadata value type {vtype}: the header is corrupt")
        item_type, count = self.unpack(_ARRAY_HEAD)
        check_count("array length", count, MAX_ARRAY_LENGTH)
        if item_type in _SCALARS:
            code = _SCALARS[item_type]
            return Array(code, self.need(count * struct.calcsize("<" + code)), count)
        if item_type == _STRING:
            self.skip_strings(count)
            return Array(None, -1, count)
        if item_type == _ARRAY:
            # llama.cpp refuses them too (gguf.cpp: "has invalid GGUF type").
            raise implausible("an array of arrays in the metadata")
        raise GgufError(f"unknown metadata array type {item_type}: the header is corrupt")

    def items(self, value: Any, limit: int = MAX_KEPT_ARRAY) -> list[Any] | None:
        """The items of a scalar array up to ``limit`` long; None for anything else."""
        if not isinstance(value, Array) or value.fmt is None or value.length > limit:
            return None
        return list(struct.unpack_from(f"<{value.length}{value.fmt}", self.buf, value.start))
