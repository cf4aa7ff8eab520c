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
from typing import TYPE_CHECKING

from stack import __version__
from stack.errors import LlmTuiError, expected_failure

if TYPE_CHECKING:
    from stack.engine import Engine

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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
    set_ = config_commands.add_parser(
        "set",
        help="validate and write one setting (no VALUE: ask for it, or read it from stdin)",
        description="Validate and write one setting. Leave VALUE out for secrets: it is then "
        "asked for without echo (or read from stdin when piped), so it never lands in shell "
        "history or `ps`.",
    )
    set_.add_argument("key")
    set_.add_argument("value", nargs="?", help="the new value; omit it (or use -) to be asked")
    listing = config_commands.add_parser("list", help="every setting with its value")
    listing.add_argument("--show-secrets", action="store_true")
    listing.add_argument("--json", action="store_true")
    config_commands.add_parser("check", help="validate .env; exit 1 listing every problem")
    config_commands.add_parser("init", help="create .env (with a generated master key)")
    config_commands.add_parser("path", help="print the .env path in use")
    config_commands.add_parser("gateway", help="write services/api-gateway/config.yaml from .env")

    doctor = commands.add_parser(
        "doctor", help="check settings, Docker, GPU, models, ports and disk"
    )
    doctor.add_argument("--json", action="store_true")

    up = commands.add_parser("up", help="create/start the stack (idempotent) and wait for it")
    up.add_argument("--no-wait", action="store_true", help="return once containers start")
    down = commands.add_parser("down", help="stop and remove the stack's containers")
    down.add_argument("--network", action="store_true", help="remove the stack network too")
    status = commands.add_parser("status", help="state, health, model, ports of each service")
    status.add_argument("--json", action="store_true")
    restart = commands.add_parser("restart", help="restart one service")
    restart.add_argument("service", help="inference, inference-code or api-gateway")
    swap = commands.add_parser("swap", help="serve another GGUF; the gateway keeps running")
    swap.add_argument("file", help="GGUF path relative to MODELS_DIR")
    swap.add_argument("--role", choices=("chat", "code"), default="chat")
    logs = commands.add_parser("logs", help="print (or follow) a service's logs")
    logs.add_argument("service", nargs="?", default="inference")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", default="100", help="lines from the end (or 'all')")
    chat = commands.add_parser("chat", help="stream an answer through the gateway")
    chat.add_argument("prompt")
    chat.add_argument("--model", default="local-chat")
    chat.add_argument("--max-tokens", type=int, default=None)
    compose = commands.add_parser("compose", help="write an equivalent services/compose.yml")
    compose.add_argument("--stdout", action="store_true", help="print instead of writing")

    from stack import cli_hub, cli_models

    cli_models.add_commands(commands)
    cli_hub.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        handler = getattr(args, "handler", None) or _HANDLERS[args.command or "tui"]
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # Expected failures (a full disk, the engine refusing, a dropped connection) are one
        # line and the fix; anything else is a bug and keeps its traceback.
        expected = expected_failure(error)
        if expected is None:
            raise
        _print_error(expected)
        return EXIT_FAIL


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


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _engine(args: argparse.Namespace) -> Engine:
    from stack.engine import Engine
    from stack.settings import load_settings

    return Engine(load_settings(args.env_file))


def _up(args: argparse.Namespace) -> int:
    engine = _engine(args)
    result = engine.up(wait=not args.no_wait, progress=_progress)
    changed = len(result.created) + len(result.recreated)
    print(
        f"stack up: {changed} started, {len(result.kept)} unchanged; "
        f"gateway {engine.settings.gateway_url}"
    )
    return EXIT_OK


def _down(args: argparse.Namespace) -> int:
    removed = _engine(args).down(remove_network=args.network, progress=_progress)
    print(f"stack down: removed {len(removed)} container(s)")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    rows = _engine(args).status()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return EXIT_OK
    for row in rows:
        health = f" ({row.health})" if row.health else ""
        extra = []
        if row.model:
            extra.append(row.model)
        if row.ports:
            extra.append(", ".join(row.ports))
        if row.state == "running" and row.role != "api-gateway":
            extra.append("GPU" if row.gpu else "CPU")
        if row.exit_code not in (None, 0) or row.oom_killed:
            extra.append(f"exit {row.exit_code}" + (" OOM-killed" if row.oom_killed else ""))
        if row.error:
            extra.append(row.error)
        print(f"{row.role:<15} {row.state}{health:<12} {'  '.join(extra)}")
    return EXIT_OK


def _restart(args: argparse.Namespace) -> int:
    _engine(args).restart(args.service, progress=_progress)
    print(f"{args.service} restarted")
    return EXIT_OK


def _swap(args: argparse.Namespace) -> int:
    engine = _engine(args)
    engine.swap(args.file, args.role, progress=_progress)
    print(f"now serving {args.file} as local-{args.role}")
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    from stack.logs import LogFollower

    tail: int | str = int(args.tail) if args.tail.isdigit() else "all"
    container = _engine(args).container_for(args.service)
    follower = LogFollower(container, follow=args.follow, tail=tail, timestamps=False)
    try:
        for line in follower:
            print(line.text, flush=args.follow)
    finally:
        follower.close()
    return EXIT_OK


def _chat(args: argparse.Namespace) -> int:
    from stack.chat import stream_chat
    from stack.settings import load_settings

    settings = load_settings(args.env_file)
    messages = [{"role": "user", "content": args.prompt}]
    for delta in stream_chat(
        settings.gateway_url.replace("localhost", "127.0.0.1"),
        settings.litellm_master_key,
        messages,
        model=args.model,
        max_tokens=args.max_tokens,
    ):
        sys.stdout.write(delta.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return EXIT_OK


def _compose(args: argparse.Namespace) -> int:
    from stack.compose import render_compose, write_compose
    from stack.settings import load_settings

    settings = load_settings(args.env_file)
    if args.stdout:
        print(render_compose(settings), end="")
    else:
        print(write_compose(settings))
    return EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tui": _run_tui,
    "config": _config,
    "doctor": _doctor,
    "up": _up,
    "down": _down,
    "status": _status,
    "restart": _restart,
    "swap": _swap,
    "logs": _logs,
    "chat": _chat,
    "compose": _compose,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
