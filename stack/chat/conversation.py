"""A conversation in memory: its settings, its messages, what is sent, what is exported.

Pure data: `stack.chat.store` reads and writes it; the chat pane shows it. Messages are
numbered in the order they were written (``n``), and that number never changes, so a
record in the file can name the message it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

MODELS = ("local-chat", "local-code")

# How an answer ended. "interrupted": the file has no end for it (the app was killed).
STREAMING, DONE, STOPPED, FAILED, INTERRUPTED = (
    "streaming",
    "done",
    "stopped",
    "failed",
    "interrupted",
)
STATUSES = (STREAMING, DONE, STOPPED, FAILED, INTERRUPTED)


@dataclass(frozen=True)
class ChatSettings:
    """Per conversation. None: the gateway's default (TEMPERATURE / MAX_TOKENS in .env)."""

    system: str = ""
    model: str = MODELS[0]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ChatSettings:
        """Settings from a file: anything of the wrong type is the default instead."""
        if not isinstance(data, dict):
            return cls()
        model = data.get("model")
        system = data.get("system")
        return cls(
            system=system if isinstance(system, str) else "",
            model=model if isinstance(model, str) and model else MODELS[0],
            temperature=_number(data.get("temperature")),
            max_tokens=_whole(data.get("max_tokens")),
            top_p=_number(data.get("top_p")),
        )

    def with_model(self, model: str) -> ChatSettings:
        return replace(self, model=model)


@dataclass(frozen=True)
class AnswerStats:
    """Numbers under an answer: time to first token, tokens/s, token counts."""

    ttft_s: float | None = None  # from sending to the first token (reasoning counts)
    duration_s: float | None = None  # from sending to the end
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    counted: bool = False  # completion_tokens counted from chunks (no usage from the server)
    tokens_per_s: float | None = None  # after the first token

    def line(self) -> str:
        """``412 tokens · 48.2 tok/s · first token 0.31 s · 8.9 s · prompt 120``."""
        return " · ".join(self.parts())

    def parts(self) -> list[str]:
        """The figures of `line`, each whole (a narrow box wraps between them)."""
        parts = []
        if self.completion_tokens is not None:
            approx = "≈" if self.counted else ""
            parts.append(f"{approx}{self.completion_tokens:,} tokens")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.1f} tok/s")
        if self.ttft_s is not None:
            parts.append(f"first token {self.ttft_s:.2f} s")
        if self.duration_s is not None:
            parts.append(f"{self.duration_s:.1f} s")
        if self.prompt_tokens is not None:
            parts.append(f"prompt {self.prompt_tokens:,}")
        return parts

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Any) -> AnswerStats | None:
        if not isinstance(data, dict):
            return None
        return cls(
            ttft_s=_number(data.get("ttft_s")),
            duration_s=_number(data.get("duration_s")),
            completion_tokens=_whole(data.get("completion_tokens")),
            prompt_tokens=_whole(data.get("prompt_tokens")),
            counted=data.get("counted") is True,
            tokens_per_s=_number(data.get("tokens_per_s")),
        )


def measure(
    *,
    sent_at: float,
    first_at: float | None,
    last_at: float | None,
    ended_at: float,
    chunks: int,
    usage: dict[str, Any] | None,
) -> AnswerStats:
    """Stats from clock readings and the server's usage (chunks counted when it has none)."""
    usage = usage or {}
    completion = _whole(usage.get("completion_tokens"))
    prompt = _whole(usage.get("prompt_tokens"))
    counted = completion is None
    tokens = chunks if completion is None else completion
    rate = None
    if first_at is not None and last_at is not None and tokens > 1 and last_at > first_at:
        rate = (tokens - 1) / (last_at - first_at)
    return AnswerStats(
        ttft_s=None if first_at is None else first_at - sent_at,
        duration_s=ended_at - sent_at,
        completion_tokens=tokens,
        prompt_tokens=prompt,
        counted=counted,
        tokens_per_s=rate,
    )


@dataclass
class Message:
    n: int
    role: str  # "user" | "assistant"
    content: str = ""
    reasoning: str = ""
    model: str = ""
    status: str = DONE
    stats: AnswerStats | None = None
    error: str = ""  # why an answer broke off
    at: str = ""  # ISO 8601, UTC

    @property
    def ended(self) -> bool:
        return self.status != STREAMING


@dataclass
class Conversation:
    id: str
    created: str
    settings: ChatSettings = field(default_factory=ChatSettings)
    title: str = ""  # set by a rename; otherwise the first message names it
    messages: list[Message] = field(default_factory=list)
    next_n: int = 1

    def new_message(self, role: str, **values: Any) -> Message:
        message = Message(self.next_n, role, **values)
        self.next_n += 1
        self.messages.append(message)
        return message

    def drop_from(self, n: int) -> None:
        """Forget message ``n`` and everything after it (regenerate, edit and resend)."""
        self.messages = [message for message in self.messages if message.n < n]

    def message(self, n: int) -> Message | None:
        return next((m for m in reversed(self.messages) if m.n == n), None)

    @property
    def display_title(self) -> str:
        if self.title:
            return self.title
        first = next((m.content for m in self.messages if m.role == "user" and m.content), "")
        return title_from(first) or "New conversation"

    def last(self, role: str) -> Message | None:
        return next((m for m in reversed(self.messages) if m.role == role), None)

    def request_messages(self) -> list[dict[str, str]]:
        """What the model is sent: the system prompt, then every turn that has text.

        An answer that was stopped or broke off is sent as far as it got: it is what the
        model said, and what the user saw.
        """
        sent = [{"role": "system", "content": self.settings.system}] if self.settings.system else []
        for message in self.messages:
            if message.role in ("user", "assistant") and message.content:
                sent.append({"role": message.role, "content": message.content})
        return sent


def settings_from_text(
    *, system: str, model: str, temperature: str, max_tokens: str, top_p: str
) -> tuple[ChatSettings, list[str]]:
    """Settings as typed in a form: empty means the default; the problems, if any."""
    problems: list[str] = []

    def number(name: str, text: str, low: float, high: float) -> float | None:
        if not text.strip():
            return None
        try:
            value = float(text)
        except ValueError:
            problems.append(f"{name}: {text.strip()!r} is not a number")
            return None
        if not low <= value <= high:
            problems.append(f"{name}: {value:g} is outside {low:g} to {high:g}")
            return None
        return value

    tokens: int | None = None
    if max_tokens.strip():
        try:
            tokens = int(max_tokens)
        except ValueError:
            problems.append(f"max tokens: {max_tokens.strip()!r} is not a whole number")
        else:
            if tokens < 1:
                problems.append("max tokens: at least 1")
                tokens = None
    if model not in MODELS:
        problems.append(f"model: one of {', '.join(MODELS)}")
    settings = ChatSettings(
        system=system.strip(),
        model=model if model in MODELS else MODELS[0],
        temperature=number("temperature", temperature, 0.0, 2.0),
        max_tokens=tokens,
        top_p=number("top_p", top_p, 0.0, 1.0),
    )
    return settings, problems


def title_from(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def export_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document (the reasoning in a closed <details>)."""
    settings = conversation.settings
    parts = [f"# {conversation.display_title}", ""]
    facts = [f"model `{settings.model}`", f"started {_to_the_second(conversation.created)}"]
    for name in ("temperature", "max_tokens", "top_p"):
        value = getattr(settings, name)
        if value is not None:
            facts.append(f"{name} {value}")
    parts += [" · ".join(facts), ""]
    if settings.system:
        parts += ["**System prompt**", "", _quoted(settings.system), ""]
    for message in conversation.messages:
        if message.role == "user":
            parts += ["## You", "", message.content, ""]
            continue
        parts += [f"## {message.model or settings.model}", ""]
        if message.reasoning:
            parts += [
                "<details><summary>Reasoning</summary>",
                "",
                message.reasoning,
                "",
                "</details>",
                "",
            ]
        parts += [message.content, ""]
        notes = [] if message.status == DONE else [status_note(message)]
        if message.stats is not None:
            notes.append(message.stats.line())
        if notes:
            parts += ["_" + " · ".join(note for note in notes if note) + "_", ""]
    return "\n".join(parts).rstrip() + "\n"


def status_note(message: Message) -> str:
    """How an answer that did not finish ended, as its mark says it."""
    return {
        STOPPED: "stopped — partial answer",
        FAILED: f"broke off — {message.error}" if message.error else "broke off",
        INTERRUPTED: "interrupted — llm-tui stopped mid-answer",
        STREAMING: "answering…",
    }.get(message.status, "")


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _to_the_second(moment: str) -> str:
    """``2026-12-02T02:35:00.123Z`` → ``2026-12-02T02:35:00Z`` (for people to read)."""
    head, dot, _ = moment.partition(".")
    return f"{head}Z" if dot and moment.endswith("Z") else moment
