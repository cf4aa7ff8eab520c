"""`llm-tui config …`: read, change and check `.env` (secrets never on the command line)."""

from __future__ import annotations

import argparse
import sys

from cli.output import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from stack.errors import LlmTuiError


def run(args: argparse.Namespace) -> int:
    """`llm-tui config ACTION`."""
    from stack import settings as settings_module
    from stack.engine.gateway import write_config

    action = args.config_command
    if action is None:
        print("usage: llm-tui config {get,set,list,check,init,path,gateway}", file=sys.stderr)
        return EXIT_USAGE
    path = settings_module.resolve_env_file(args.env_file)
    if action == "path":
        print(path)
        return EXIT_OK
    if action == "init":
        if path.exists():
            print(f"{path} already exists; nothing changed")
            return EXIT_OK
        settings_module.create_env_file(path)
        print(f"created {path} (mode 0600) with a new LITELLM_MASTER_KEY")
        return EXIT_OK
    if action == "set":
        settings = settings_module.load_settings(path)
        if not path.exists():
            print(f"creating {path} from the template", file=sys.stderr)
        value = args.value if args.value not in (None, "-") else _read_value(args.key)
        new = settings_module.set_setting(settings, args.key, value)
        shown = settings_module.mask(args.key, new.values.get(args.key, ""))
        print(f"{args.key}={shown}")
        if new.notice:
            print(f"note: {new.notice}", file=sys.stderr)
        return EXIT_OK

    if not path.exists():
        raise LlmTuiError(
            f"no settings file at {path}",
            fix="run `llm-tui config init` (or `llm-tui`, which creates it on first run)",
        )
    settings = settings_module.load_settings(path)
    if action == "get":
        key = args.key
        if key not in settings.values and key not in settings_module.FIELDS:
            raise LlmTuiError(settings_module.unknown_key_message(key))
        value = settings.values.get(key)
        if value is None:
            value = settings_module.FIELDS[key].default
        print(value if args.show_secrets else settings_module.mask(key, value))
        return EXIT_OK
    if action == "list":
        return _config_list(settings, show_secrets=args.show_secrets, as_json=args.json)
    if action == "check":
        if settings.problems:
            print(f"{path}: {len(settings.problems)} problem(s)", file=sys.stderr)
            for problem in settings.problems:
                print(f"  {problem}", file=sys.stderr)
            return EXIT_FAIL
        print(f"{path}: ok ({len(settings.values)} settings)")
        return EXIT_OK
    if action == "gateway":
        if settings.problems:
            raise LlmTuiError(
                f"{len(settings.problems)} invalid setting(s): {settings.problems[0]}",
                fix="run `llm-tui config check`",
            )
        print(write_config(settings))
        return EXIT_OK
    return EXIT_USAGE  # pragma: no cover - argparse restricts the choices


def _read_value(key: str) -> str:
    """A value typed at a prompt (hidden for secrets) or piped in: never on the command line."""
    from stack.settings import is_secret

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise LlmTuiError(
                f"no value for {key} on stdin",
                fix=f'pipe it in (`printf %s "$VALUE" | llm-tui config set {key}`) '
                "or run the command in a terminal to be asked",
            )
        return line.rstrip("\r\n")
    prompt = f"{key}: "
    if is_secret(key):
        import getpass

        return getpass.getpass(f"{key} (not shown): ")
    return input(prompt)


def _config_list(settings: object, *, show_secrets: bool, as_json: bool) -> int:
    from stack.settings import FIELDS, SCHEMA, Settings, mask

    assert isinstance(settings, Settings)
    rows = []
    for spec in SCHEMA:
        value = settings.values.get(spec.key, spec.default)
        rows.append(
            {
                "key": spec.key,
                "value": value if show_secrets else mask(spec.key, value),
                "default": spec.key not in settings.values,
                "description": spec.description.splitlines()[0],
            }
        )
    for key, value in settings.values.items():
        if key not in FIELDS:
            shown = value if show_secrets else mask(key, value)
            rows.append({"key": key, "value": shown, "default": False, "description": "(unknown)"})
    if as_json:
        import json  # only for --json: not on the TUI's start-up path

        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(row["key"]) for row in rows)  # type: ignore[arg-type]
    for row in rows:
        print(f"{row['key']:<{width}}  {row['value']}")
    return EXIT_OK
