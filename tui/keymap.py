"""The user's keymap: `keymap.toml` in the config folder remaps bindings by their id.

    # ~/.config/llm-tui/keymap.toml
    "go.models" = "m"              # one key
    "logs.search" = "ctrl+f,slash" # several, comma-separated

Ids are the ones in tui/commands (README lists them). A file that does not parse, an id
that does not exist or a value that is not a string is reported (one line each) and
left out; the rest of the file still applies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

KEYMAP_FILE = "keymap.toml"


def config_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/llm-tui``, else ``~/.config/llm-tui``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "llm-tui"


def keymap_path() -> Path:
    return config_dir() / KEYMAP_FILE


def load_keymap(path: Path, known_ids: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """(binding id → keys, problems); a missing file is an empty keymap, not a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as error:
        return {}, [f"{path}: cannot be read ({error})"]
    import tomllib  # only when there is a keymap: ~5 ms of start-up otherwise

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return {}, [f"{path}: not valid TOML ({error}); no key was remapped"]
    known = set(known_ids)
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in data.items():
        if binding_id not in known:
            problems.append(f"{path}: no binding has the id {binding_id!r}")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f'{path}: {binding_id} must be a key such as "ctrl+f"')
        else:
            keymap[binding_id] = ",".join(key.strip() for key in keys.split(","))
    return keymap, problems
