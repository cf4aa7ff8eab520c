"""What the commands share: error lines, exit codes, sizes, and the --vram option."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stack.errors import LlmTuiError
from stack.units import GiB

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def print_error(error: LlmTuiError | str) -> None:
    """One line saying what is wrong, then the fix on its own line."""
    if isinstance(error, LlmTuiError):
        print(f"llm-tui: error: {error.message}", file=sys.stderr)
        if error.fix:
            print(f"  fix: {error.fix}", file=sys.stderr)
    else:
        print(f"llm-tui: error: {error}", file=sys.stderr)


def add_vram_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vram",
        type=float,
        metavar="GIB",
        help="free VRAM to plan for (default: measured by NVML on the first GPU)",
    )


def free_vram_bytes(vram_gib: float | None, settings: Any = None) -> int | None:
    """What the user said, else NVML's free memory on GPU 0, else None (unknown).

    With ``settings``, what the stack's own running llama-server holds counts as free: a
    model fitted here replaces it, so the one being served must not read "does not fit".
    """
    if vram_gib is not None:
        if vram_gib <= 0:
            raise LlmTuiError("--vram must be a positive number of GiB")
        return int(vram_gib * GiB)
    from stack.gpu import read_free_vram

    if settings is None:
        return read_free_vram().free
    from stack.engine import Engine
    from stack.models.tune_stack import free_for_a_model

    return free_for_a_model(Engine(settings)).free


def fit_text(fit: Any) -> str:
    if fit is None:
        return "-"
    summary: str = fit.summary
    return summary


def human_params(count: int) -> str:
    if count <= 0:
        return "?"
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.1f}M"
