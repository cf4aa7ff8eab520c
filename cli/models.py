"""`llm-tui models | fit | rm`: the local library and VRAM fit, headless.

Hub commands (`search`, `files`, `pull`) live in `cli/hub.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.output import add_vram_option, fit_text, free_vram_bytes, human_params
from stack.errors import LlmTuiError
from stack.settings import load_settings
from stack.units import format_size


def cmd_models(args: argparse.Namespace) -> int:
    from stack.engine.remote_models import scan_models
    from stack.models.fit import estimate_for_settings

    settings = load_settings(args.env_file)
    models = scan_models(settings)  # MODELS_DIR, or the models on a remote engine's host
    free = free_vram_bytes(args.vram, settings)
    rows: list[dict[str, Any]] = []
    for model in models:
        header = model.header
        fit = (
            estimate_for_settings(header, settings, free_vram=free)
            if header is not None and model.usable
            else None
        )
        rows.append(
            {
                "path": model.relative_path,
                "shards": len(model.shards),
                "size": model.size,
                "quant": header.quant if header else "",
                "architecture": header.architecture if header else "",
                "parameters": header.parameter_count if header else 0,
                "context_length": header.context_length if header else 0,
                "role": "chat" if model.is_chat else "code" if model.is_code else "",
                "broken": model.broken,
                "fit": fit_text(fit) if fit else "",
                "max_ctx_that_fits": fit.max_ctx_that_fits if fit else None,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no GGUF files in {_place(settings)}")
        print("get one with `llm-tui search QUERY` and `llm-tui pull REPO QUANT`")
        return 0
    if free is None:
        print("(no GPU measured: pass --vram GIB for a fit estimate)", file=sys.stderr)
    for row in rows:
        mark = {"chat": "●chat", "code": "●code"}.get(str(row["role"]), "")
        if row["broken"]:
            print(f"{row['path']:<48} BROKEN: {row['broken']}")
            continue
        params = human_params(int(row["parameters"]))
        print(
            f"{row['path']:<48} {row['quant']:<8} {params:>6} {format_size(int(row['size'])):>10}"
            f"  ctx {row['context_length']:<7} {row['fit'] or '-':<32} {mark}"
        )
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from stack.models.fit import Verdict, estimate_for_settings
    from stack.models.gguf import read_header

    settings = load_settings(args.env_file)
    target: str = args.target
    local = settings.models_dir / target
    if ":" in target and not local.exists():
        from stack.hub.remote_header import fetch_quant_header

        repo, _, quant = target.partition(":")
        header, name = fetch_quant_header(settings, repo, quant)
    else:
        from stack.settings import check_model_path

        if settings.engine_remote:
            header, name = _remote_header(settings, target), target
        else:
            problem = check_model_path(target, settings.models_dir)
            if problem:
                raise LlmTuiError(f"{target}: {problem}")
            header, name = read_header(local), target
    free = free_vram_bytes(args.vram, settings)
    fit = estimate_for_settings(header, settings, free_vram=free, ctx=args.ctx)
    if fit is None:
        raise LlmTuiError(f"cannot estimate {name}: the header lacks layer or head counts")
    print(f"{name}: {header.architecture} {header.quant}, {header.n_layers} layers")
    print(
        f"  weights {format_size(fit.weights_bytes)}, KV cache {format_size(fit.kv_bytes)} "
        f"(ctx {fit.ctx}, {settings.kv_cache_type}), compute {format_size(fit.compute_bytes)}, "
        f"overhead {format_size(fit.overhead_bytes)} = {format_size(fit.total_bytes)}"
    )
    print(f"  {settings.parallel} slot(s) of {fit.slot_ctx} tokens each")
    if free is None:
        print("  free VRAM unknown (no GPU found): pass --vram GIB")
    else:
        kept = f", {format_size(fit.margin_bytes)} kept free" if fit.margin_bytes else ""
        print(f"  free VRAM {format_size(free)}{kept}: {fit.summary}")
        if fit.max_ctx_that_fits:
            print(
                f"  largest context that fits fully offloaded: {fit.max_ctx_that_fits} "
                f"({settings.parallel} slot(s), {settings.kv_cache_type})"
            )
        if fit.verdict is not Verdict.FITS:
            print("  `llm-tui tune` proposes settings that fit")
    return 0


def _place(settings: Any) -> str:
    """MODELS_DIR, or where a remote engine's models are ("the volume … on gpu-box")."""
    if not settings.engine_remote:
        return str(settings.models_dir)
    from stack.engine.endpoint import resolve_endpoint
    from stack.engine.helper import models_place

    return models_place(settings, resolve_endpoint())


def _remote_header(settings: Any, target: str) -> Any:
    """A model's header, read on the remote engine's host (only the header crosses)."""
    from stack.engine.remote_models import scan_models

    wanted = target.strip("/")
    for model in scan_models(settings):
        if wanted in (model.relative_path, *model.shards):
            if model.header is None:
                raise LlmTuiError(f"{target}: {model.broken or 'no readable header'}")
            return model.header
    raise LlmTuiError(f"{target} is not a model in {_place(settings)}", fix="see `llm-tui models`")


def cmd_rm(args: argparse.Namespace) -> int:
    from stack.engine.remote_models import delete_model_files, scan_models

    settings = load_settings(args.env_file)
    models = scan_models(settings)
    wanted = args.file.strip("/")
    model = next((m for m in models if wanted in (m.relative_path, *m.shards)), None)
    if model is None:
        raise LlmTuiError(
            f"{wanted} is not a model in {_place(settings)}", fix="see `llm-tui models`"
        )
    if wanted in (settings.chat_model, settings.code_model) or model.relative_path in (
        settings.chat_model,
        settings.code_model,
    ):
        raise LlmTuiError(
            f"{wanted} is the model in use (CHAT_MODEL/CODE_MODEL)",
            fix="swap to another model first",
        )
    files = ", ".join(model.shards)
    if not args.yes:
        if not sys.stdin.isatty():
            raise LlmTuiError(f"refusing to delete {files} without confirmation", fix="add --yes")
        answer = input(f"delete {files} ({format_size(model.size)})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    removed = delete_model_files(settings, model)
    print(f"deleted {len(removed)} file(s), freed {format_size(model.size)}")
    return 0


def add_commands(commands: Any) -> None:
    models = commands.add_parser("models", help="list local GGUF models with metadata and fit")
    models.add_argument("--json", action="store_true")
    add_vram_option(models)
    models.set_defaults(handler=cmd_models)
    fit = commands.add_parser("fit", help="estimate whether a model fits the GPU")
    fit.add_argument("target", help="FILE in MODELS_DIR, or REPO:QUANT on Hugging Face")
    fit.add_argument("--ctx", type=int, help="context size (default: CTX_SIZE)")
    add_vram_option(fit)
    fit.set_defaults(handler=cmd_fit)
    rm = commands.add_parser("rm", help="delete a local model (all its shards)")
    rm.add_argument("file")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=cmd_rm)
