"""Messages that more than one screen posts or handles (screen-specific ones are nested)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from stack.settings import Settings


@dataclass
class SettingSaved(Message):
    """A worker wrote ``key`` to `.env`; ``settings`` is what the file now says."""

    key: str
    value: str
    settings: Settings


@dataclass
class SettingRejected(Message):
    """``value`` is not valid for ``key``; `.env` was not touched."""

    key: str
    value: str
    problems: list[str]
