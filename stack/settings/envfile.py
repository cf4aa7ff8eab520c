"""Byte-preserving `.env` reading and writing.

Reading uses python-dotenv's own parser (so we agree with every other dotenv reader on
what a value is) but keeps each binding's original text and line number. Writing replaces
only the value of one key: comments, blank lines, order, quoting style and unknown keys stay
byte-for-byte. Writes are atomic (temp file, fsync, rename), keep the file's mode (0600 for
new files) and hold an exclusive lock so the TUI and the CLI never interleave.

Values are never interpolated: ``$`` is literal, so what you set is what you get back.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from dotenv.parser import parse_stream

from stack.atomic import locked, write_atomic
from stack.errors import EnvFileError

__all__ = ["locked", "write_atomic"]

# A value that needs no quotes and cannot be misread: no whitespace, quotes, `#`, `$`, `\`.
_BARE_VALUE = re.compile(r"[A-Za-z0-9_./:@%+,=~^*!?\[\]{}()<>|&;-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Entry:
    """One `KEY=value` binding as it stands in the file."""

    key: str
    value: str
    line: int  # 1-based line where the binding starts
    original: str  # the exact text of the binding, including its line ending
    offset: int  # where ``original`` starts in the file's text


@dataclass(frozen=True)
class EnvDocument:
    """A parsed `.env`: its exact text plus the bindings found in it."""

    text: str
    entries: tuple[Entry, ...]
    bad_lines: tuple[int, ...]  # lines python-dotenv could not parse (kept untouched)

    def values(self) -> dict[str, str]:
        """Key → value; the last binding of a key wins, as in python-dotenv."""
        return {entry.key: entry.value for entry in self.entries}

    def line_of(self, key: str) -> int | None:
        found = [entry.line for entry in self.entries if entry.key == key]
        return found[-1] if found else None


def parse(text: str) -> EnvDocument:
    entries: list[Entry] = []
    bad: list[int] = []
    offset = 0
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # Leading blank lines belong to the binding's text; its key sits after them.
        leading = original[: len(original) - len(original.lstrip())]
        line = binding.original.line + leading.count("\n")
        if binding.error:
            bad.append(line)
        elif binding.key is not None:
            entries.append(Entry(binding.key, binding.value or "", line, original, offset))
        offset += len(original)
    return EnvDocument(text, tuple(entries), tuple(bad))


def read(path: Path) -> EnvDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvFileError(
            f"{path} does not exist", fix="run `llm-tui` once or copy .env.example to .env"
        ) from None
    except UnicodeDecodeError as exc:
        raise EnvFileError(
            f"{path} is not UTF-8 text (byte {exc.start})", fix="re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text)


def encode_value(value: str, style: str = "") -> str:
    """Render ``value`` for a `.env` line, keeping ``style`` (`'`, `"` or bare) if it is safe."""
    if "\n" in value or "\r" in value:
        style = '"'
    elif style == "" and not _BARE_VALUE.fullmatch(value):
        style = "'"
    if style == "'":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if style == '"':
        escaped = (
            value.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\t", "\\t")
        )
        return '"' + escaped + '"'
    return value


_ASSIGNMENT = re.compile(
    r"(?P<head>\s*(?:export[^\S\r\n]+)?(?:'[^']+'|[^=#\s]+)[^\S\r\n]*=[^\S\r\n]*)"
)


def _replace_value(original: str, new_value: str) -> str:
    """Rewrite one binding's text with a new value, keeping prefix, quoting and comment."""
    head_match = _ASSIGNMENT.match(original)
    if head_match is None:  # pragma: no cover - parse() only yields bindings that match
        raise EnvFileError(f"cannot rewrite line {original!r}")
    head = head_match.group("head")
    rest = original[len(head) :]
    ending_match = re.search(r"(\r\n|\n|\r)?$", rest)
    ending = ending_match.group(0) if ending_match else ""
    rest = rest[: len(rest) - len(ending)]
    if rest.startswith(("'", '"')):
        quote = rest[0]
        pattern = r"'(?:\\.|[^'\\])*'" if quote == "'" else r'"(?:\\.|[^"\\])*"'
        quoted = re.match(pattern, rest, re.DOTALL)
        tail = rest[quoted.end() :] if quoted else ""
        return head + encode_value(new_value, quote) + tail + ending
    # Bare value: an inline comment starts at whitespace followed by `#`.
    comment = re.search(r"\s+#.*$", rest)
    tail = rest[comment.start() :] if comment else ""
    return head + encode_value(new_value, "") + tail + ending


def with_value(doc: EnvDocument, key: str, value: str) -> str:
    """The text of ``doc`` with ``key`` set to ``value`` (appended if absent)."""
    if not _KEY.fullmatch(key):
        raise EnvFileError(f"{key!r} is not a valid key", fix="use letters, digits and _")
    targets = [entry for entry in doc.entries if entry.key == key]
    if targets:
        # Rewrite the last binding: it is the one that wins when the file is read.
        target = targets[-1]
        start = target.offset
        new_original = _replace_value(target.original, value)
        text = doc.text[:start] + new_original + doc.text[start + len(target.original) :]
    else:
        newline = "\r\n" if "\r\n" in doc.text else "\n"
        text = doc.text
        if text and not text.endswith(("\n", "\r")):
            text += newline
        text += f"{key}={encode_value(value)}{newline}"
    check = parse(text).values()
    expected = dict(doc.values())
    expected[key] = value
    if check != expected:  # never write something that would read back differently
        raise EnvFileError(f"cannot store this value of {key} safely", fix="simplify the value")
    return text


def generate_master_key() -> str:
    """A fresh gateway key: `sk-` + 43 url-safe random characters (256 bits)."""
    import secrets  # hashlib and hmac with it: only when a key is made

    return "sk-" + secrets.token_urlsafe(32)
