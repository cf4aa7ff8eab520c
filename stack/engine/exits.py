"""What a container's exit code means, in words (stdlib only: the dashboard imports it).

A code above 128 is 128 + the number of the signal that ended the process, as the shell
reports it; Docker passes that on."""

from __future__ import annotations

# code → (a word for a card, the sentence for a message)
EXIT_MEANINGS = {
    134: ("aborted", "aborted by SIGABRT: it failed a check of its own"),
    137: ("killed", "killed by SIGKILL: out of memory, or `docker kill`"),
    139: ("crashed", "crashed with SIGSEGV"),
    143: ("stopped", "stopped by SIGTERM"),
}


def exit_words(code: int | None, oom_killed: bool = False) -> str:
    """For a message: ``exit code 139 (crashed with SIGSEGV)``; the engine's OOM flag first."""
    if oom_killed:
        after = f" (exit code {code})" if code is not None else ""
        return f"it was killed for using too much memory (OOM){after}"
    if code is None:
        return ""
    meaning = EXIT_MEANINGS.get(code)
    return f"exit code {code} ({meaning[1]})" if meaning else f"exit code {code}"


def exit_label(code: int | None, oom_killed: bool = False) -> str:
    """For a card, a few words: ``exit code 137 · OOM-killed``, ``exit code 139 · crashed``."""
    words = [f"exit code {code}"] if code is not None else []
    if oom_killed:
        words.append("OOM-killed")
    elif code in EXIT_MEANINGS:
        words.append(EXIT_MEANINGS[code][0])
    return " · ".join(words)
