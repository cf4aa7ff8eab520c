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


def expected_failure(error: BaseException) -> LlmTuiError | None:
    """An error a user can hit without a bug (disk full, engine gone) as a plain answer.

    None for anything else: that is a bug and keeps its traceback. Docker and HTTP errors
    are recognised by class name, so this module imports neither library.
    """
    if isinstance(error, LlmTuiError):
        return error
    names = {f"{cls.__module__}.{cls.__name__}" for cls in type(error).__mro__}
    if "docker.errors.APIError" in names:
        text = " ".join(str(getattr(error, "explanation", None) or error).split())
        return LlmTuiError(
            f"the Docker Engine refused the request: {text}",
            fix="run `llm-tui doctor`; retry once the engine is healthy",
        )
    if "docker.errors.DockerException" in names:
        return LlmTuiError(
            f"Docker failed: {error}", fix="run `llm-tui doctor` to check the engine"
        )
    if "requests.exceptions.RequestException" in names:
        return LlmTuiError(
            f"lost the connection to the Docker Engine: {type(error).__name__}",
            fix="check that Docker is running (`llm-tui doctor`) and retry",
        )
    if "httpx.HTTPError" in names:
        return LlmTuiError(
            f"a network request failed: {type(error).__name__}: {error or 'no detail'}",
            fix="check the network (and `llm-tui status` for the stack's own servers)",
        )
    if isinstance(error, OSError):
        return os_error(error)
    return None


def os_error(error: OSError, what: str = "") -> LlmTuiError:
    """A failed read or write said plainly, with the usual fix for its cause."""
    import errno

    target = what or (f"{error.filename}" if error.filename else "a file")
    reason = error.strerror or str(error)
    fixes = {
        errno.ENOSPC: "free some disk space and retry",
        errno.EDQUOT: "free some space within your disk quota and retry",
        errno.EROFS: "that file system is read-only: use a writable folder",
        errno.EACCES: "check the permissions (`ls -l`), or run as the file's owner",
        errno.EPERM: "check the permissions (`ls -l`), or run as the file's owner",
        errno.ENOENT: "check that the path exists",
    }
    return LlmTuiError(
        f"{reason}: {target}", fix=fixes.get(error.errno or 0, "check the path and retry")
    )
