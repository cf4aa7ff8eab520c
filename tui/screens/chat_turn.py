"""One answer on its way: what the worker thread does, and what it hands the app loop.

The worker writes first, shows second: each network read's text goes to the
conversation's file (one `os.write`) and only then into the mailbox the pane draws from,
so whatever is on screen is on disk. When the answer ends, however it ends, the worker
writes the end record (the whole text, the numbers, how it ended) and syncs the file.
If nothing came at all (a failure, or Esc before the first token), the turn is undone
instead: a drop record, and the pane gives the prompt back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stack.cancel import Cancelled, CancelToken
from stack.chat import ChatDelta, ChatError, KeyRefused
from stack.chat.conversation import DONE, FAILED, STOPPED, AnswerStats, Message, measure
from stack.chat.store import ConversationFile, drop_record, end_record
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.mailbox import Mailbox
from tui.services import ChatStreamer, StackEngine

START_HINT = "start the stack with u on the Dashboard (1)"
# The pane sends LITELLM_MASTER_KEY from .env: refused, the gateway runs with another one.
WRONG_KEY_FIX = (
    "the gateway was started with another key than LITELLM_MASTER_KEY in .env: "
    "u on the Dashboard (1) recreates it with this one"
)


def gateway_base(settings: Settings) -> str:
    # 127.0.0.1 rather than localhost: no IPv6 detour where only IPv4 is published.
    return settings.gateway_url.replace("localhost", "127.0.0.1")


def preflight(engine: StackEngine, model: str) -> ChatError | None:
    """Why the gateway cannot answer, found from the engine in milliseconds.

    With the inference container gone, LiteLLM retries for seconds before it fails; the
    engine knows at once. No engine to ask: let the gateway answer for itself.
    """
    try:
        statuses = {status.role: status for status in engine.status()}
    except Exception:
        return None
    gateway = statuses.get("api-gateway")
    if gateway is None or gateway.state != "running":
        return ChatError("the gateway (api-gateway) is not running", fix=START_HINT)
    code = model == "local-code" and engine.settings.has_code_model
    role = "inference-code" if code else "inference"
    inference = statuses.get(role)
    if inference is None or inference.state != "running":
        return ChatError(
            f"{role} is not running, so {model} cannot answer",
            fix=f"{START_HINT}; if it keeps stopping, its logs (3) say why",
        )
    return None


@dataclass(frozen=True)
class Request:
    """What the worker sends, fixed when the turn starts."""

    base_url: str
    key: str
    messages: list[dict[str, str]]
    model: str
    max_tokens: int | None
    temperature: float | None
    top_p: float | None


@dataclass(frozen=True)
class Ending:
    """How the answer ended, as the worker saw it (everything it received)."""

    status: str  # DONE, STOPPED or FAILED
    content: str
    reasoning: str
    stats: AnswerStats
    error: LlmTuiError | None = None

    @property
    def empty(self) -> bool:
        return not self.content and not self.reasoning


@dataclass(eq=False)
class Turn:
    """One answer: the worker fills the mailbox, the app loop draws it."""

    answer: Message  # owned by the app loop; the worker reads only ``n``
    prompt: str  # given back to the input when nothing came
    undo_from: int  # the first message a turn that brought nothing takes back
    prelude: list[dict[str, Any]]  # records written before the request (drop, user, answer)
    request: Request
    file: ConversationFile
    mailbox: Mailbox[ChatDelta]
    clock: Callable[[], float]
    cancel: CancelToken = field(default_factory=CancelToken)
    stopping: bool = False  # Esc was pressed; the worker's ending is on its way

    def run(self, engine: StackEngine, stream: ChatStreamer) -> Ending:
        """The worker's whole job (blocking): write, ask, stream, write the end."""
        sent_at = self.clock()
        first_at: float | None = None
        last_at: float | None = None
        chunks = 0
        usage: dict[str, Any] | None = None
        text: list[str] = []
        reasoning: list[str] = []
        status = DONE
        error: LlmTuiError | None = None
        n = self.answer.n
        try:
            self.file.append(self.prelude)
            problem = preflight(engine, self.request.model)
            if problem is not None:
                raise problem
            self.cancel.check("the answer")
            request = self.request
            for batch in stream(
                request.base_url,
                request.key,
                request.messages,
                model=request.model,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                cancel=self.cancel,
            ):
                if self.cancel.cancelled:
                    raise Cancelled("the answer")
                now = self.clock()
                piece = "".join(delta.text for delta in batch)
                thought = "".join(delta.reasoning for delta in batch)
                counted = sum(1 for delta in batch if delta.text or delta.reasoning)
                if counted:
                    first_at = now if first_at is None else first_at
                    last_at = now
                    chunks += counted
                usage = next((d.usage for d in reversed(batch) if d.usage), usage)
                if piece or thought:
                    self.file.deltas(n, piece, thought)  # on disk before it is on screen
                    text.append(piece)
                    reasoning.append(thought)
                self.mailbox.put(batch)
        except Cancelled:
            status = STOPPED
        except KeyRefused as failure:
            fix = WRONG_KEY_FIX if self.request.key else failure.fix
            status, error = FAILED, KeyRefused(failure.message, fix=fix)
        except LlmTuiError as failure:
            status, error = FAILED, failure
        stats = measure(
            sent_at=sent_at,
            first_at=first_at,
            last_at=last_at,
            ended_at=self.clock(),
            chunks=chunks,
            usage=usage,
        )
        ending = Ending(status, "".join(text), "".join(reasoning), stats, error)
        self._write_end(ending)
        return ending

    def _write_end(self, ending: Ending) -> None:
        try:
            if ending.empty:
                self.file.append([drop_record(self.undo_from)], sync=True)
                return
            message = Message(
                self.answer.n,
                "assistant",
                content=ending.content,
                reasoning=ending.reasoning,
                model=self.request.model,
                status=ending.status,
                stats=ending.stats,
                error=ending.error.message if ending.error is not None else "",
            )
            self.file.append([end_record(message)], sync=True)
        except LlmTuiError:
            pass  # the disk failed: the pane already says so for the deltas, if any


def merge_deltas(deltas: list[ChatDelta]) -> list[ChatDelta]:
    """Pieces that piled up while the pane was busy, as one: the answer reads the same."""
    finish = next((d.finish_reason for d in reversed(deltas) if d.finish_reason), None)
    usage = next((d.usage for d in reversed(deltas) if d.usage), None)
    text = "".join(delta.text for delta in deltas)
    return [ChatDelta(text, finish, usage, "".join(delta.reasoning for delta in deltas))]
