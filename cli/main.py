"""`llm-tui` command line: the TUI by default, plus headless subcommands on the same core.

Exit codes: 0 ok, 1 failure (one line saying why, and the fix), 2 usage.
Heavy modules (Textual, docker, huggingface_hub) are imported only by the commands that
use them, so `llm-tui --help` and `llm-tui config …` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from cli import config, operate
from cli import remote as cli_remote
from cli.output import EXIT_FAIL, print_error
from stack import __version__
from stack.errors import expected_failure

# Commands whose parsers import a module of their own for their choices (the tuning
# tables, the IDE clients: ~40 ms): built only when named, or when every command is listed.
OWN_MODULE_COMMANDS = {"tune": "cli.tune", "connect": "cli.connect"}


def command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (None: none, or not one we can tell before parsing)."""
    words = iter(argv)
    for word in words:
        if word in ("--env-file", "--context"):
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif not word.startswith(("--env-file=", "--context=")):
            return None  # --help, --version, a typo: the whole parser answers
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, without the commands of other modules it does not name."""
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
    cli_remote.add_context_option(parser)
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

    from cli import hub as cli_hub
    from cli import models as cli_models
    from cli import quickstart as cli_quickstart

    cli_models.add_commands(commands)
    cli_hub.add_commands(commands)
    cli_remote.add_commands(commands)
    cli_quickstart.add_commands(commands)
    named = None if argv is None else command_word(argv)
    for command, module in OWN_MODULE_COMMANDS.items():
        # Another command named: this one is not needed. A name that is none (a typo):
        # every command, for the error's list.
        if named is None or named == command or named not in commands.choices:
            importlib.import_module(module).add_commands(commands)
    return parser


def tui_arguments(argv: Sequence[str]) -> argparse.Namespace | None:
    """The dashboard's arguments when ``argv`` asks for nothing else (else None).

    Building the whole parser imports every command's module (the Hub client, the fit
    tables…): a tenth of a second the dashboard's start-up does not need.
    """
    words = list(argv)
    if words[:1] == ["tui"]:
        words = words[1:]
    env_file = None
    if words[:1] == ["--env-file"] and len(words) == 2:
        env_file = words[1]
    elif len(words) == 1 and words[0].startswith("--env-file="):
        env_file = words[0].partition("=")[2]
    elif words:
        return None
    return argparse.Namespace(command="tui", env_file=env_file)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = tui_arguments(words)
    login = None
    if args is None and command_word(words) == "status":
        login = operate.early_login(words)
    if args is None:
        args = build_parser(words).parse_args(words)
        args.login = login
    cli_remote.use_context(args)
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
        print_error(expected)
        return EXIT_FAIL


def _run_tui(args: argparse.Namespace) -> int:
    import gc

    # No collections until the first screen is up (tui.app.calm_gc turns them back on,
    # with what exists by then frozen): start-up allocates hundreds of thousands of
    # objects that live on, and scanning them cost 30-60 ms before the first frame.
    gc.disable()
    from stack.settings import load_settings

    settings = load_settings(args.env_file, create=True)
    from tui.__main__ import run

    return run(settings)


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tui": _run_tui,
    "config": config.run,
    "doctor": operate.doctor,
    "up": operate.up,
    "down": operate.down,
    "status": operate.status,
    "restart": operate.restart,
    "swap": operate.swap,
    "logs": operate.logs,
    "chat": operate.chat,
    "compose": operate.compose,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
