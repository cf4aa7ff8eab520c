"""`llm-tui` command line: the TUI by default, plus headless subcommands on the same core.

Exit codes: 0 ok, 1 failure (one line saying why, and the fix), 2 usage.
Heavy modules (Textual, docker, huggingface_hub) are imported only by the commands that
use them, so `llm-tui --help` and `llm-tui config …` start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from stack import __version__
from stack.errors import LlmTuiError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Subcommands that exist in the interface but are not built in this version yet.
PLANNED: dict[str, str] = {
    "up": "create and start the stack (inference + api-gateway)",
    "down": "stop and remove the stack's containers",
    "status": "show the state of each service",
    "restart": "restart one service",
    "swap": "serve another GGUF without touching the gateway",
    "logs": "show or follow a service's logs",
    "chat": "send a prompt through the gateway and stream the answer",
    "compose": "write an equivalent services/compose.yml",
    "models": "list local GGUF models",
    "search": "search Hugging Face for GGUF repos",
    "files": "list a repo's GGUF files with sizes and fit",
    "pull": "download a GGUF (resumable, verified)",
    "fit": "estimate whether a model fits the GPU",
    "rm": "delete a local model",
}


def _print_error(error: LlmTuiError | str) -> None:
    if isinstance(error, LlmTuiError):
        print(f"llm-tui: error: {error.message}", file=sys.stderr)
        if error.fix:
            print(f"  fix: {error.fix}", file=sys.stderr)
    else:
        print(f"llm-tui: error: {error}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-tui",
        description="Run a local GPU LLM stack (llama.cpp + LiteLLM) from the terminal. "
        "Without a command, opens the dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"llm-tui {__version__}")
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="the stack's .env (default: $LLM_TUI_ENV_FILE, then ./.env)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("tui", help="open the dashboard (the default)")

    config = commands.add_parser("config", help="read, change and check .env settings")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    get = config_commands.add_parser("get", help="print one setting")
    get.add_argument("key")
    get.add_argument("--show-secrets", action="store_true", help="print secrets unmasked")
    set_ = config_commands.add_parser("set", help="validate and write one setting")
    set_.add_argument("key")
    set_.add_argument("value")
    listing = config_commands.add_parser("list", help="every setting with its value")
    listing.add_argument("--show-secrets", action="store_true")
    listing.add_argument("--json", action="store_true")
    config_commands.add_parser("check", help="validate .env; exit 1 listing every problem")
    config_commands.add_parser("init", help="create .env (with a generated master key)")
    config_commands.add_parser("path", help="print the .env path in use")
    config_commands.add_parser(
        "gateway", help="write services/api-gateway/config.yaml from .env"
    )

    doctor = commands.add_parser(
        "doctor", help="check settings, Docker, GPU, models, ports and disk"
    )
    doctor.add_argument("--json", action="store_true")

    for name, text in PLANNED.items():
        sub = commands.add_parser(name, help=f"{text} (not available yet)")
        sub.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = _HANDLERS.get(args.command or "tui")
        if handler is None:
            _print_error(f"`llm-tui {args.command}` is not available in this version yet")
            return EXIT_FAIL
        return handler(args)
    except LlmTuiError as error:
        _print_error(error)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run_tui(args: argparse.Namespace) -> int:
    from stack.settings import load_settings

    settings = load_settings(args.env_file, create=True)
    from tui.__main__ import run

    return run(settings)


def _config(args: argparse.Namespace) -> int:
    from stack import settings as settings_module
    from stack.gateway import write_config

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
        new = settings_module.set_setting(settings, args.key, args.value)
        shown = settings_module.mask(args.key, new.values.get(args.key, ""))
        print(f"{args.key}={shown}")
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
            rows.append({"key": key, "value": value, "default": False, "description": "(unknown)"})
    if as_json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(row["key"]) for row in rows)  # type: ignore[arg-type]
    for row in rows:
        print(f"{row['key']:<{width}}  {row['value']}")
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from stack.doctor import Status, run_checks
    from stack.settings import load_settings

    checks = run_checks(load_settings(args.env_file))
    if args.json:
        print(json.dumps([check.as_dict() for check in checks], indent=2))
    else:
        for check in checks:
            print(f"{check.status.value:<4}  {check.name:<8}  {check.detail}")
            if check.fix and check.status is not Status.OK:
                print(f"{'':<14}fix: {check.fix}")
    return EXIT_FAIL if any(c.status is Status.FAIL for c in checks) else EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tui": _run_tui,
    "config": _config,
    "doctor": _doctor,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
