"""Errors the user can act on: each says what is wrong and how to fix it."""

from __future__ import annotations


class LlmTuiError(Exception):
    """An expected failure with a plain message and, where known, the fix."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class EnvFileError(LlmTuiError):
    """The `.env` file cannot be read or written."""


class SettingsError(LlmTuiError):
    """One or more settings are invalid."""

    def __init__(self, problems: list[str], *, fix: str | None = None) -> None:
        self.problems = problems
        super().__init__("; ".join(problems), fix=fix)
