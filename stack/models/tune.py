"""Settings tuned for a use: PARALLEL, CTX_SIZE, KV_CACHE_TYPE and GPU_LAYERS for one model.

Every number comes from the one fit estimate (`stack.models.fit`), against the free VRAM
less VRAM_MARGIN_MIB, so a proposal never promises what the estimate would not:

* ``agent`` (Claude Code, Continue's agent mode): one slot with the largest context that
  fits, up to the model's training context. f16 KV while that reaches 32k tokens; q8_0
  (half the bytes) when f16 stays under 32k and q8_0 holds more.
* ``chat``: four slots of up to 8k each, so several conversations answer at once; fewer
  slots when four cannot hold 4k each.
* ``shared``: two slots of up to 32k, an agent and a chat side by side.

GPU_LAYERS becomes ``all`` when everything fits, else the exact count that does: with
``auto`` llama-server fits the layers itself, keeping its own 1 GiB free, and could put
fewer on the GPU than the estimate shown here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError
from stack.models.fit import FitEstimate, ModelShape, Verdict, estimate, slot_context
from stack.models.fit_memory import CTX_STEP
from stack.models.header import GgufHeader
from stack.settings import Settings
from stack.units import format_size

if TYPE_CHECKING:
    from stack.gpu import GpuSample

USES = ("agent", "shared", "chat")
TUNED_KEYS = ("PARALLEL", "CTX_SIZE", "KV_CACHE_TYPE", "GPU_LAYERS")
# Claude Code's first request carries ~12k tokens, and it keeps 13k plus its output cap
# free for compaction: under 32k a slot cannot hold a session.
AGENT_CONTEXT = 32_768
CHAT_CONTEXT = 8_192
CHAT_MINIMUM = 4_096


class TuneError(LlmTuiError):
    """No proposal can be made (unknown use, a header the estimate cannot read)."""


@dataclass(frozen=True)
class _Plan:
    slots: int
    window: int  # tokens a slot should hold at most (0: up to the training context)
    minimum: int  # tokens a slot needs to be worth having


WHO = {"agent": "an IDE agent", "shared": "an agent beside a chat", "chat": "a chat"}
PLANS: Mapping[str, _Plan] = {
    "agent": _Plan(1, 0, AGENT_CONTEXT),
    "shared": _Plan(2, AGENT_CONTEXT, AGENT_CONTEXT),
    "chat": _Plan(4, CHAT_CONTEXT, CHAT_MINIMUM),
}


@dataclass(frozen=True)
class Tuning:
    """A proposal: the four values, why each, and the estimate they were checked with."""

    use: str
    values: Mapping[str, str]  # .env values of TUNED_KEYS
    reasons: Mapping[str, str]  # one line for each key
    fit: FitEstimate | None  # None: no free-VRAM reading (sized for the CPU)
    slot_ctx: int  # tokens one request can hold with these values
    notes: tuple[str, ...] = field(default=())

    def changes(self, settings: Settings) -> dict[str, tuple[str, str]]:
        """{key: (now, proposed)} for the values that differ from ``settings``."""
        now = current_values(settings)
        return {k: (now[k], v) for k, v in self.values.items() if now.get(k) != v}


def describe(tuning: Tuning, settings: Settings) -> list[str]:
    """Each key: now → proposed (or unchanged) and why; then the fit and the notes."""
    now = current_values(settings)
    lines = []
    for key, value in tuning.values.items():
        was = now.get(key, "") or "(empty)"
        change = f"{was} → {value}" if was != value else f"{value} (unchanged)"
        lines.append(f"{key:<14} {change:<20} {tuning.reasons.get(key, '')}")
    fit = tuning.fit
    if fit is not None:
        lines.append(
            f"= needs ~{format_size(fit.total_bytes)}: {fit.summary}; one request holds up "
            f"to {tuning.slot_ctx:,} tokens"
        )
    lines += [f"note: {note}" for note in tuning.notes]
    return lines


def current_values(settings: Settings) -> dict[str, str]:
    return {
        "PARALLEL": str(settings.parallel),
        "CTX_SIZE": str(settings.ctx_size),
        "KV_CACHE_TYPE": settings.kv_cache_type,
        "GPU_LAYERS": settings.gpu_layers,
        "CHAT_MODEL": settings.chat_model,
    }


def tune(
    model: GgufHeader | ModelShape,
    use: str,
    *,
    free_vram: int | None,
    margin: int = 0,
    flash_attn: str = "auto",
) -> Tuning:
    """The settings for ``use`` that fit ``free_vram - margin`` (CPU sizes without a reading)."""
    if use not in PLANS:
        raise TuneError(f"unknown use {use!r}", fix=f"use one of {', '.join(USES)}")
    shape = model if isinstance(model, ModelShape) else ModelShape.from_header(model)
    if shape.n_layers == 0 or not any(shape.kv_heads):
        raise TuneError("the model's header gives no layers or attention heads to size by")
    plan = PLANS[use]
    kv_types = ("f16",) if flash_attn.strip().lower() == "off" else ("f16", "q8_0")
    if free_vram is None:
        return _for_cpu(shape, use, plan)
    for slots in _slot_counts(plan):
        proposal = _full_offload(shape, use, plan, slots, kv_types, free_vram, margin, flash_attn)
        if proposal is not None:
            return proposal
    return _partial(shape, use, plan, kv_types[-1], free_vram, margin, flash_attn)


def _slot_counts(plan: _Plan) -> Sequence[int]:
    """Chat gives up slots before it gives up their minimum; the others keep theirs."""
    return [n for n in (4, 2, 1) if n <= plan.slots] if plan.slots > 2 else [plan.slots]


def _window_cap(shape: ModelShape, plan: _Plan) -> int:
    training = shape.context_length or 0
    if plan.window and training:
        return min(plan.window, training)
    return plan.window or training


def _full_offload(
    shape: ModelShape,
    use: str,
    plan: _Plan,
    slots: int,
    kv_types: Sequence[str],
    free_vram: int,
    margin: int,
    flash_attn: str,
) -> Tuning | None:
    """Everything on the GPU with the largest window a slot may have, or None."""
    cap = _window_cap(shape, plan)
    minimum = min(plan.minimum, cap) if cap else plan.minimum
    windows: dict[str, int] = {}
    for kv in kv_types:
        probe = estimate(
            shape, ctx=CTX_STEP * slots, kv_cache_type=kv, parallel=slots, gpu_layers="all",
            free_vram=free_vram, margin=margin, flash_attn=flash_attn,
        )  # fmt: skip
        largest = (probe.max_ctx_that_fits or 0) // slots
        windows[kv] = min(largest, cap) if cap else largest
    kv = kv_types[0]
    if windows[kv] < minimum and len(kv_types) > 1 and windows[kv_types[1]] > windows[kv]:
        kv = kv_types[1]
    window = windows[kv]
    if window < minimum:  # a faster GPU-only window too small to use helps nobody
        return None
    ctx = window * slots
    fit = estimate(
        shape, ctx=ctx, kv_cache_type=kv, parallel=slots, gpu_layers="all",
        free_vram=free_vram, margin=margin, flash_attn=flash_attn,
    )  # fmt: skip
    reasons = {
        "PARALLEL": _slots_reason(use, slots, plan),
        "CTX_SIZE": _ctx_reason(slots, window, cap, shape, fit),
        "KV_CACHE_TYPE": _kv_reason(kv, windows, minimum),
        "GPU_LAYERS": (
            f"all {fit.total_layers} layers fit on the GPU with "
            f"{format_size(margin)} kept free ({format_size(fit.total_bytes)} needed)"
        ),
    }
    values = {"PARALLEL": str(slots), "CTX_SIZE": str(ctx), "KV_CACHE_TYPE": kv,
              "GPU_LAYERS": "all"}  # fmt: skip
    return Tuning(use, values, reasons, fit, fit.slot_ctx, _notes(use, fit.slot_ctx, shape.context_length))


def _partial(
    shape: ModelShape,
    use: str,
    plan: _Plan,
    kv: str,
    free_vram: int,
    margin: int,
    flash_attn: str,
) -> Tuning:
    """Too big for the GPU at the window the use needs: as many layers as fit, the rest CPU."""
    slots = 1 if plan.slots > 2 else plan.slots
    cap = _window_cap(shape, plan)
    window = min(plan.minimum, cap) if cap else plan.minimum
    ctx = window * slots
    fit = estimate(
        shape, ctx=ctx, kv_cache_type=kv, parallel=slots, gpu_layers="auto",
        free_vram=free_vram, margin=margin, flash_attn=flash_attn,
    )  # fmt: skip
    layers = fit.gpu_layers if fit.verdict is Verdict.PARTIAL else 0
    where = (
        f"only {layers} of {fit.total_layers} layers fit beside a {window:,}-token window; "
        "the rest run on the CPU, several times slower"
        if layers
        else f"not even one layer fits in {format_size(max(0, free_vram - margin))}: "
        "everything runs on the CPU, slowly"
    )
    reasons = {
        "PARALLEL": _slots_reason(use, slots, plan),
        "CTX_SIZE": f"{window:,} tokens a slot, the least {WHO[use]} needs",
        "KV_CACHE_TYPE": f"{kv}: half the bytes of f16 per token, so more layers stay on the GPU"
        if kv != "f16"
        else "f16: flash attention is off, so the cache cannot be quantized",
        "GPU_LAYERS": where,
    }
    values = {"PARALLEL": str(slots), "CTX_SIZE": str(ctx), "KV_CACHE_TYPE": kv,
              "GPU_LAYERS": str(layers)}  # fmt: skip
    notes = (
        *_notes(use, fit.slot_ctx, shape.context_length),
        "a smaller quant of this model (or a smaller model) would run on the GPU alone",
    )
    return Tuning(use, values, reasons, fit, fit.slot_ctx, notes)


def _for_cpu(shape: ModelShape, use: str, plan: _Plan) -> Tuning:
    """No GPU reading: the use's sizes, checked against nothing (RAM is not measured)."""
    slots = 1 if use == "agent" else min(plan.slots, 2)
    cap = _window_cap(shape, plan)
    window = min(AGENT_CONTEXT if use != "chat" else CHAT_MINIMUM, cap) if cap else plan.minimum
    ctx = window * slots
    trained = bool(cap) and window == cap and cap < (AGENT_CONTEXT if use != "chat" else 0)
    reasons = {
        "PARALLEL": _slots_reason(use, slots, plan) + "; the CPU shares its cores between them",
        "CTX_SIZE": f"{window:,} tokens a slot: the most this model was trained for"
        if trained
        else f"{window:,} tokens a slot: what {WHO[use]} needs, no more (RAM is slow)",
        "KV_CACHE_TYPE": "f16: quantizing the cache saves memory, not CPU time",
        "GPU_LAYERS": "no GPU reading: llama-server runs on the CPU (GPU=none puts 0)",
    }
    values = {"PARALLEL": str(slots), "CTX_SIZE": str(ctx), "KV_CACHE_TYPE": "f16",
              "GPU_LAYERS": "auto"}  # fmt: skip
    notes = (
        *_notes(use, slot_context(ctx, slots, shape.context_length), shape.context_length),
        "no GPU measured: sized for the CPU (`llm-tui tune --vram GIB` sizes for a GPU)",
    )
    return Tuning(use, values, reasons, None, slot_context(ctx, slots, shape.context_length),
                  tuple(notes))  # fmt: skip


def _slots_reason(use: str, slots: int, plan: _Plan) -> str:
    if use == "agent":
        return "1 slot: an IDE agent sends one long request at a time and wants all the room"
    if slots < plan.slots:
        few = "1 slot" if slots == 1 else f"{slots} slots"
        return f"{few}: {plan.slots} cannot hold {plan.minimum:,} tokens each on this GPU"
    if use == "shared":
        return "2 slots: an agent and a chat can answer at the same time"
    return f"{slots} slots: that many conversations answer at once"


def _ctx_reason(slots: int, window: int, cap: int, shape: ModelShape, fit: FitEstimate) -> str:
    each = f"{window:,} tokens a slot" if slots > 1 else f"a {window:,}-token window"
    if shape.context_length and window >= shape.context_length:
        return f"{each}: the model's whole training context"
    if cap and window >= cap:
        return f"{each}: as much as a slot here needs"
    return f"{each}: the largest that fits ({format_size(fit.total_bytes)} of VRAM)"


def _kv_reason(kv: str, windows: Mapping[str, int], minimum: int) -> str:
    if kv == "f16":
        if windows.get("f16", 0) >= minimum or "q8_0" not in windows:
            return "f16: full precision, and the window is already large enough"
        return "f16: q8_0 would not make the window larger here"
    return (
        f"q8_0: half the bytes per token, {windows['q8_0']:,} tokens a slot instead of "
        f"{windows['f16']:,} with f16"
    )


def _notes(use: str, slot_ctx: int, trained: int = 0) -> tuple[str, ...]:
    if use != "chat" and slot_ctx < AGENT_CONTEXT:
        why = (
            "this model was trained for no more: pick one with a longer context"
            if trained and slot_ctx >= trained
            else "a smaller quant or model leaves more room"
        )
        return (f"a slot holds {slot_ctx:,} tokens: Claude Code needs {AGENT_CONTEXT:,} ({why})",)
    return ()


def model_header(settings: Settings, file: str | None) -> tuple[GgufHeader, str]:
    """The header of ``file`` (default CHAT_MODEL) in MODELS_DIR, and its name."""
    from stack.models.gguf import read_header
    from stack.settings import check_model_path

    name = file or settings.chat_model
    if not name:
        raise TuneError(
            "no model to tune for: CHAT_MODEL is empty",
            fix="pass a FILE in MODELS_DIR, or pick a model first (`llm-tui models`)",
        )
    problem = check_model_path(name, settings.models_dir)
    if problem:
        raise TuneError(f"{name}: {problem}", fix="see `llm-tui models` for the files there")
    return read_header(settings.models_dir / name), name


def tune_settings(
    settings: Settings,
    model: GgufHeader | ModelShape,
    use: str,
    *,
    free_vram: int | None,
    file: str = "",
) -> Tuning:
    """:func:`tune` with the stack's own margin and flash attention; ``file`` is served."""
    from stack.models.fit import margin_of

    tuning = tune(
        model, use, free_vram=free_vram, margin=margin_of(settings), flash_attn=settings.flash_attn
    )
    if file and file != settings.chat_model:
        values = {**tuning.values, "CHAT_MODEL": file}
        reasons = {**tuning.reasons, "CHAT_MODEL": "the file these values are sized for"}
        tuning = Tuning(tuning.use, values, reasons, tuning.fit, tuning.slot_ctx, tuning.notes)
    if settings.has_code_model:
        tuning = Tuning(
            tuning.use, tuning.values, tuning.reasons, tuning.fit, tuning.slot_ctx,
            (*tuning.notes, "CODE_MODEL runs beside it on the same GPU: this counts CHAT_MODEL "
             "only, so leave room or clear CODE_MODEL"),
        )  # fmt: skip
    return tuning


def held_by(
    samples: Sequence[GpuSample],
    container_ids: Sequence[str],
    container_of: Callable[[int], str | None],
) -> int:
    """Bytes GPU 0's processes in ``container_ids`` hold (0 when the driver does not say).

    Free VRAM read while the stack runs leaves out what its own llama-server holds, and a
    tuned stack replaces that process: the memory comes back.
    """
    if not samples or not container_ids:
        return 0
    total = 0
    for process in samples[0].processes or ():
        cid = container_of(process.pid)
        if cid and any(cid.startswith(c[:12]) or c.startswith(cid) for c in container_ids):
            total += process.used_bytes or 0
    return total
