"""`llm-tui quickstart`: from an empty folder to a model that answers, headless.

The same steps as the first-run guide in the TUI (stack/quickstart.py): checks, the use,
a recommended model for this GPU, its download, settings tuned for the use, `up`, a first
streamed answer, and how to connect. Asks at each choice in a terminal; ``--yes`` takes
the recommended answer everywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli.output import EXIT_FAIL, EXIT_OK, add_vram_option, free_vram_bytes
from stack.errors import LlmTuiError


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def ask(question: str, choices: list[str], default: int, *, yes: bool) -> int:
    """The index the user picks (1-based on screen); the default without a terminal."""
    if yes or not sys.stdin.isatty():
        return default
    for number, choice in enumerate(choices, 1):
        say(f"  {number}. {choice}{'   (recommended)' if number - 1 == default else ''}")
    while True:
        answer = input(f"{question} [{default + 1}] ").strip()
        if not answer:
            return default
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return int(answer) - 1
        say(f"  type a number from 1 to {len(choices)}")


def cmd_quickstart(args: argparse.Namespace) -> int:
    from stack import quickstart as qs
    from stack.doctor import Status, run_checks
    from stack.settings import load_settings

    started = time.monotonic()
    settings = load_settings(args.env_file, create=True)
    settings.models_dir.mkdir(parents=True, exist_ok=True)  # where the pick goes
    say(f"1/7 checks ({settings.env_file})")
    checks = run_checks(settings)
    for check in checks:
        if check.status is not Status.OK:
            say(f"  {check.status.value:<4} {check.name}: {check.detail}")
            if check.fix:
                say(f"       fix: {check.fix}")
    blocking = qs.blocking_problems(checks)
    if blocking:
        first = blocking[0]
        raise LlmTuiError(f"{first.name}: {first.detail}", fix=first.fix or None)

    uses = list(qs.GUIDE_USES)
    if args.use:
        use = args.use
    else:
        say("2/7 what is the model for?")
        use = uses[ask("use", list(qs.GUIDE_USES.values()), 0, yes=args.yes)]
    free = free_vram_bytes(args.vram, settings)
    say(f"3/7 models for {use} on this machine (checking the Hub)…")
    found = qs.recommendations(settings, use, free)
    pick = found[ask("model", [f"{r.label}: {r.why}" for r in found], 0, yes=args.yes)]
    say(f"  → {pick.label}")

    planned = qs.plan_download(settings, pick)
    download_started = time.monotonic()
    if planned.present:
        say(f"4/7 {planned.serve} is downloaded already")
    else:
        from cli.hub import run_download

        say(f"4/7 downloading {pick.entry.name} into {settings.models_dir}")
        if not run_download(settings, planned.request, sys.stderr.isatty()):
            return 130
    download_done = time.monotonic()

    say("5/7 settings tuned for the use")
    tuning = qs.tuned_for(settings, planned.serve, use, free)
    from stack.models.tune import describe

    for line in describe(tuning, settings):
        say(f"  {line}")
    settings = qs.apply_tuning(settings, tuning)

    from stack.engine import Engine

    say("6/7 starting the stack")
    engine = Engine(settings)
    try:
        engine.up(progress=lambda line: say(f"  {line}"))
    finally:
        engine.close()

    from stack.chat import stream_chat

    say(f"7/7 a first answer from local-chat ({qs.HELLO!r})")
    first_token_at: float | None = None
    for delta in stream_chat(
        qs.chat_url(settings),
        settings.litellm_master_key,
        [{"role": "user", "content": qs.HELLO}],
        max_tokens=qs.HELLO_TOKENS,
    ):
        if delta.text and first_token_at is None:
            first_token_at = time.monotonic()
        sys.stdout.write(delta.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if first_token_at is None:
        say("  (the model answered with no text)")
        return EXIT_FAIL
    waited = (first_token_at - started) - (download_done - download_started)
    say(
        f"\nready in {waited:.0f} s, the download aside. Connect an IDE: `llm-tui connect` "
        f"(the gateway is at {settings.gateway_url}, its key: `llm-tui config get "
        "LITELLM_MASTER_KEY "
        "--show-secrets`)"
    )
    return EXIT_OK


def add_commands(commands: Any) -> None:
    quick = commands.add_parser(
        "quickstart",
        help="from nothing to a model that answers: checks, pick, download, tune, up, chat",
    )
    quick.add_argument("--use", choices=("agent", "chat"), help="what the model is for")
    quick.add_argument("--yes", "-y", action="store_true", help="take every recommendation")
    add_vram_option(quick)
    quick.set_defaults(handler=cmd_quickstart)
