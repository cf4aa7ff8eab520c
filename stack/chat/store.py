"""Conversations on disk: one append-only JSONL file each, in the user's data folder.

``$XDG_DATA_HOME/llm-tui/conversations/<id>.jsonl`` (``~/.local/share/…`` by default).
A file is only ever appended to, one JSON object a line:

    {"type":"conversation","v":1,"id":…,"created":…,"settings":{…}}   first line
    {"type":"message","n":3,"role":"user","content":…,"at":…}
    {"type":"message","n":4,"role":"assistant","model":…,"at":…}      an answer begins
    {"d":4,"c":"Hel","r":"…"}                                          its text as it came
    {"type":"end","n":4,"status":"done","content":…,"stats":{…}}       and how it ended
    {"type":"drop","n":3}          messages 3 and later are gone (regenerate, edit)
    {"type":"title","title":…}     a rename
    {"type":"settings","settings":{…}}

The chat pane writes each network read's text (`{"d":…}`) before it shows it, with one
`os.write` on a file opened for appending, so a `kill -9` mid-answer loses nothing that
was on screen: the kernel has it. The end record repeats the whole text, so reading a
finished conversation never parses its many small delta lines (they are recognised by
their first bytes and skipped); only an answer without an end (the app died) is put back
together from them. A line that is not JSON (a torn last line) is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stack.atomic import write_atomic
from stack.chat.conversation import (
    DONE,
    INTERRUPTED,
    STATUSES,
    STREAMING,
    AnswerStats,
    ChatSettings,
    Conversation,
    Message,
    export_markdown,
    title_from,
)
from stack.errors import LlmTuiError, os_error

VERSION = 1
SUFFIX = ".jsonl"
DELTA_PREFIX = b'{"d":'
_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")

Clock = Callable[[], datetime]


def default_conversations_dir() -> Path:
    """``$XDG_DATA_HOME/llm-tui/conversations`` (``~/.local/share/llm-tui/conversations``)."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "llm-tui" / "conversations"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``2026-12-02T02:35:00.123Z``: to the millisecond, so that of two conversations
    written within one second the later one lists first."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Summary:
    """A conversation in the list: enough to choose it, read without its text."""

    id: str
    title: str
    created: str
    updated: float  # when its last message was written (seconds since the epoch)
    messages: int
    model: str
    path: Path


class ConversationStore:
    """The folder of conversation files; every method blocks on the disk (use a worker)."""

    def __init__(self, folder: Path | None = None, *, clock: Clock = utc_now) -> None:
        self.folder = folder or default_conversations_dir()
        self._clock = clock

    def path(self, conversation_id: str) -> Path:
        if not _ID.match(conversation_id):
            raise LlmTuiError(f"no such conversation: {conversation_id!r}")
        return self.folder / f"{conversation_id}{SUFFIX}"

    def new(self, settings: ChatSettings) -> Conversation:
        """A conversation with its id; its file appears with the first record written."""
        now = self._clock()
        conversation_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        return Conversation(conversation_id, iso(now), settings)

    def create(self, settings: ChatSettings) -> Conversation:
        """A new conversation, its file written now."""
        conversation = self.new(settings)
        self.file(conversation).append([])
        return conversation

    def file(self, conversation: Conversation) -> ConversationFile:
        """Where ``conversation``'s records go; the first append writes its header."""

        def header() -> dict[str, Any]:
            return {
                "type": "conversation",
                "v": VERSION,
                "id": conversation.id,
                "created": conversation.created,
                "settings": conversation.settings.as_dict(),
                **({"title": conversation.title} if conversation.title else {}),
            }

        return ConversationFile(self.path(conversation.id), header, self._clock)

    def rename(self, conversation_id: str, title: str) -> None:
        """Give a saved conversation a title (nothing happens if it is gone)."""
        ConversationFile(self.path(conversation_id), None, self._clock).append(
            [title_record(title)], sync=True
        )

    def load(self, conversation_id: str) -> Conversation:
        path = self.path(conversation_id)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise os_error(error, str(path)) from None
        return replay(data, fallback_id=conversation_id)

    def list(self) -> list[Summary]:
        """Every readable conversation, the most recently written first."""
        try:
            paths = [p for p in self.folder.iterdir() if p.suffix == SUFFIX]
        except FileNotFoundError:
            return []
        except OSError as error:
            raise os_error(error, str(self.folder)) from None
        found = []
        for path in paths:
            if not _ID.match(path.stem):
                continue
            try:
                stat = path.stat()
                conversation = replay(path.read_bytes(), fallback_id=path.stem, text=False)
            except OSError:
                continue  # deleted meanwhile, or unreadable: not listed
            last = conversation.messages[-1].at if conversation.messages else ""
            summary = Summary(
                id=conversation.id,
                title=conversation.display_title,
                created=conversation.created,
                # The last message's time: a rename does not move it up the list.
                updated=_epoch(last) or _epoch(conversation.created) or stat.st_mtime,
                messages=len(conversation.messages),
                model=conversation.settings.model,
                path=path,
            )
            found.append(summary)
        return sorted(found, key=lambda summary: (summary.updated, summary.id), reverse=True)

    def delete(self, conversation_id: str) -> None:
        path = self.path(conversation_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise os_error(error, str(path)) from None

    def export(self, conversation: Conversation, folder: Path) -> Path:
        """Write the conversation as Markdown in ``folder`` (never over another file)."""
        slug = re.sub(r"[^a-z0-9]+", "-", conversation.display_title.lower()).strip("-")
        stem = f"chat-{slug[:48] or conversation.id}"
        target = folder / f"{stem}.md"
        count = 2
        while target.exists():
            target = folder / f"{stem}-{count}.md"
            count += 1
        try:
            write_atomic(target, export_markdown(conversation), mode=0o600)
        except OSError as error:
            raise os_error(error, str(target)) from None
        return target


class ConversationFile:
    """Appends records to one conversation's file; safe to use from any thread.

    The file is made, header first, by the first append. Once the conversation is deleted
    (`forget`), a late write (an answer still streaming) is dropped rather than bringing
    it back.
    """

    def __init__(
        self,
        path: Path,
        header: Callable[[], dict[str, Any]] | None,
        clock: Clock = utc_now,
    ) -> None:
        self.path = path
        self._header = header  # None: append to the file only if it is there
        self._clock = clock
        # One writer at a time: the header must be the first line, and the answer's
        # worker and a settings save may both append.
        self._lock = threading.Lock()
        self.forgotten = False

    def now(self) -> str:
        return iso(self._clock())

    def forget(self) -> None:
        self.forgotten = True

    def append(self, records: Iterable[dict[str, Any]], *, sync: bool = False) -> None:
        if self.forgotten:
            return
        data = encode(records)
        with self._lock:
            try:
                fd = self._open()
            except OSError as error:
                raise os_error(error, str(self.path)) from None
            if fd is None:
                return
            try:
                if data:
                    _write_all(fd, data)
                if sync:
                    with contextlib.suppress(OSError):
                        os.fsync(fd)
            except OSError as error:
                raise os_error(error, str(self.path)) from None
            finally:
                os.close(fd)

    def _open(self) -> int | None:
        """The file open for appending; made (with its header) if it is not there yet."""
        while True:
            try:
                return os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                pass
            if self.forgotten or self._header is None:
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            except FileExistsError:
                continue  # another thread made it first: append to that
            try:
                _write_all(fd, encode([self._header()]))
            except BaseException:
                os.close(fd)
                raise
            return fd

    def deltas(self, n: int, text: str, reasoning: str = "") -> None:
        record: dict[str, Any] = {"d": n}
        if text:
            record["c"] = text
        if reasoning:
            record["r"] = reasoning
        self.append([record])


# --- records -----------------------------------------------------------------------------


def user_record(message: Message) -> dict[str, Any]:
    return {"type": "message", "n": message.n, "role": "user", "content": message.content,
            "at": message.at}  # fmt: skip


def answer_record(message: Message) -> dict[str, Any]:
    return {"type": "message", "n": message.n, "role": "assistant", "model": message.model,
            "at": message.at}  # fmt: skip


def end_record(message: Message) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "end",
        "n": message.n,
        "status": message.status,
        "content": message.content,
    }
    if message.reasoning:
        record["reasoning"] = message.reasoning
    if message.stats is not None:
        record["stats"] = message.stats.as_dict()
    if message.error:
        record["error"] = message.error
    return record


def drop_record(n: int) -> dict[str, Any]:
    return {"type": "drop", "n": n}


def title_record(title: str) -> dict[str, Any]:
    return {"type": "title", "title": title}


def settings_record(settings: ChatSettings) -> dict[str, Any]:
    return {"type": "settings", "settings": settings.as_dict()}


def encode(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for record in records
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write returned nothing")
        view = view[written:]


# --- reading -----------------------------------------------------------------------------


def replay(data: bytes, *, fallback_id: str = "", text: bool = True) -> Conversation:
    """The conversation a file describes. ``text=False`` skips the answers' text (a list)."""
    conversation = Conversation(fallback_id, "")
    by_n: dict[int, Message] = {}
    lines = data.split(b"\n")
    for line in lines:
        if not line or line.startswith(DELTA_PREFIX):
            continue  # an answer's text as it came: its end record holds it all
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            _apply(conversation, record, by_n)
    unfinished = {m.n: m for m in conversation.messages if m.status == STREAMING}
    for message in unfinished.values():
        message.status = INTERRUPTED
    if text and unfinished:
        # Only answers the app never ended (it was killed) are put back from their pieces.
        prefixes = tuple(DELTA_PREFIX + b"%d," % n for n in unfinished)
        pieces: dict[int, list[bytes]] = {n: [] for n in unfinished}
        for line in lines:
            if line.startswith(prefixes):
                n = _delta_number(line)
                if n in pieces:
                    pieces[n].append(line)
        for n, message in unfinished.items():
            message.content, message.reasoning = _joined(pieces[n])
    return conversation


def _apply(conversation: Conversation, record: dict[str, Any], by_n: dict[int, Message]) -> None:
    kind = record.get("type")
    n = record.get("n")
    if kind == "conversation":
        conversation.id = str(record.get("id") or conversation.id)
        conversation.created = str(record.get("created") or "")
        conversation.settings = ChatSettings.from_dict(record.get("settings"))
        title = record.get("title")
        conversation.title = title_from(title) if isinstance(title, str) else ""
    elif kind == "settings":
        conversation.settings = ChatSettings.from_dict(record.get("settings"))
    elif kind == "title":
        title = record.get("title")
        conversation.title = title_from(title) if isinstance(title, str) else ""
    elif kind == "message" and isinstance(n, int) and n not in by_n:
        role = record.get("role")
        if role not in ("user", "assistant"):
            return
        content = record.get("content")
        message = Message(
            n,
            str(role),
            content=content if isinstance(content, str) and role == "user" else "",
            model=str(record.get("model") or ""),
            status=DONE if role == "user" else STREAMING,
            at=str(record.get("at") or ""),
        )
        by_n[n] = message
        conversation.messages.append(message)
        conversation.next_n = max(conversation.next_n, n + 1)
    elif kind == "end" and isinstance(n, int) and n in by_n:
        message = by_n[n]
        status = record.get("status")
        message.status = status if status in STATUSES and status != STREAMING else DONE
        content, reasoning = record.get("content"), record.get("reasoning")
        message.content = content if isinstance(content, str) else ""
        message.reasoning = reasoning if isinstance(reasoning, str) else ""
        message.stats = AnswerStats.from_dict(record.get("stats"))
        error = record.get("error")
        message.error = error if isinstance(error, str) else ""
    elif kind == "drop" and isinstance(n, int):
        conversation.drop_from(n)
        for gone in [key for key in by_n if key >= n]:
            del by_n[gone]


def _epoch(moment: str) -> float | None:
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):  # older files: seconds
        try:
            return datetime.strptime(moment, layout).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def _delta_number(line: bytes) -> int | None:
    end = line.find(b",", len(DELTA_PREFIX))
    digits = line[len(DELTA_PREFIX) : end if end != -1 else None].rstrip(b"}")
    return int(digits) if digits.isdigit() else None


def _joined(lines: list[bytes]) -> tuple[str, str]:
    text: list[str] = []
    reasoning: list[str] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            if isinstance(record.get("c"), str):
                text.append(record["c"])
            if isinstance(record.get("r"), str):
                reasoning.append(record["r"])
    return "".join(text), "".join(reasoning)
