"""`llm-tui tune`: PARALLEL, CTX_SIZE, KV_CACHE_TYPE and GPU_LAYERS sized for a use.

Shows each proposed value with one line of why and the diff against `.env`, writes it
through the settings core, and applies it to a running stack (only inference is
recreated). The arithmetic lives in `stack.models.tune`; this is the printing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.output import EXIT_OK, add_vram_option
from stack.errors import LlmTuiError


def cmd_tune(args: argparse.Namespace) -> int:
    from stack.engine import Engine
    from stack.models.tune import describe, model_header, tune_settings
    from stack.models.tune_stack import apply_tuning, free_for_tuning, stack_statuses
    from stack.settings import load_settings, set_settings

    settings = load_settings(args.env_file)
    header, name = model_header(settings, args.file)
    measured = free_for_tuning(args.vram, stack_statuses(Engine(settings)))
    tuning = tune_settings(settings, header, args.use, free_vram=measured.free, file=name)
    changes = tuning.changes(settings)
    print(f"{name} for {args.use} use, {measured.note}:")
    for line in describe(tuning, settings):
        print(f"  {line}")
    if not changes:
        print(f"already tuned for {args.use}: nothing to change")
        return EXIT_OK
    if not args.yes and not _confirmed(f"write {len(changes)} change(s) to .env?"):
        print("nothing written")
        return EXIT_OK
    new = apply_tuning(
        settings,
        {key: value for key, (_, value) in changes.items()},
        write=set_settings,
        engine_for=Engine,
        running=measured.running,
        progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True),
    )
    if new.notice:
        print(new.notice, file=sys.stderr)
    where = "applied to the running stack" if measured.running else "start it with `llm-tui up`"
    print(f"saved to {new.env_file.name}; {where}")
    return EXIT_OK


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise LlmTuiError(
            "refusing to change .env without confirmation", fix="add --yes to write it"
        )
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def add_commands(commands: Any) -> None:
    from stack.models.tune import USES

    tune = commands.add_parser(
        "tune",
        help="size PARALLEL, CTX_SIZE, KV_CACHE_TYPE, GPU_LAYERS for a use and this GPU",
        description="Propose PARALLEL, CTX_SIZE, KV_CACHE_TYPE and GPU_LAYERS for a model on "
        "this GPU, with why; write them to .env and apply them to a running stack. "
        "agent: one slot, the largest context (IDE agents such as Claude Code); "
        "chat: several slots, fewer tokens each; shared: two slots of up to 32k.",
    )
    tune.add_argument("file", nargs="?", help="GGUF in MODELS_DIR (default: CHAT_MODEL)")
    tune.add_argument("--use", choices=USES, default="agent", help="what the stack serves")
    add_vram_option(tune)
    tune.add_argument("--yes", action="store_true", help="write without asking")
    tune.set_defaults(handler=cmd_tune)
