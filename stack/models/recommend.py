"""Which model to start with: a small curated catalog, checked against this GPU and disk.

`recommend()` lists each catalog repo on the Hub (real sizes, real files), reads one header
per repo for its shape, and for each model picks the best quant that fits the GPU with the
settings tuned for the use and fits on the disk. The best is first. Without a GPU it keeps
to small models and says how slow they will be.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError
from stack.models.fit import FitEstimate, ModelShape, Verdict, scaled_to_size
from stack.units import format_size

if TYPE_CHECKING:
    from stack.hub.client import Hub
    from stack.hub.files import GgufEntry, RepoFiles

USES = ("agent", "chat")
# What each use looks at first: IDE agents want code models, a chat wants chat models; each
# falls back on the other kind.
KINDS_BY_USE = {"agent": ("code", "chat"), "chat": ("chat", "code")}
# Without a GPU only small models answer at a usable pace.
CPU_MAX_PARAMS = 3.5
DISK_MARGIN = 2 << 30  # what a download must leave free on the models' disk
CPU_WARNING = "no GPU: the model runs on the CPU, a few tokens a second at best; pick a small one"


class CatalogError(LlmTuiError):
    """The catalog file is broken (a packaging mistake, not the user's)."""


@dataclass(frozen=True)
class CatalogModel:
    repo: str
    use: str  # chat | code
    params: float  # billions
    quants: tuple[str, ...]  # best first
    note: str


@dataclass(frozen=True)
class Recommendation:
    model: CatalogModel
    listing: RepoFiles
    entry: GgufEntry  # the quant picked
    fit: FitEstimate | None  # None: unknown (no GPU reading)
    why: str  # one line: what it is, its size, how it fits

    @property
    def label(self) -> str:
        return f"{self.model.repo} {self.entry.quant}"


def load_catalog(text: str | None = None) -> list[CatalogModel]:
    """The catalog shipped with llm-tui (or ``text`` in its format)."""
    if text is None:
        text = resources.files("stack.models").joinpath("catalog.toml").read_text("utf-8")
    try:
        raw = tomllib.loads(text)["model"]
        return [
            CatalogModel(
                repo=str(item["repo"]),
                use=str(item["use"]),
                params=float(item["params"]),
                quants=tuple(str(q) for q in item["quants"]),
                note=str(item.get("note", "")),
            )
            for item in raw
        ]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"the model catalog is broken: {exc}") from None


Estimate = Callable[[ModelShape], FitEstimate | None]


def recommend(
    hub: Hub,
    use: str,
    *,
    shape_of: Callable[[RepoFiles], ModelShape | None],
    estimate: Estimate,
    free_vram: int | None,
    free_disk: int,
    catalog: Iterable[CatalogModel] | None = None,
    limit: int = 5,
) -> list[Recommendation]:
    """Up to ``limit`` models for ``use`` (agent | chat), the best first.

    ``shape_of`` reads a repo's shape (one remote header); ``estimate`` is the fit with the
    settings tuned for the use. A repo the Hub cannot list, or whose header cannot be read,
    is left out: the others still come back.
    """
    if use not in USES:
        raise LlmTuiError(f"unknown use {use!r}", fix=f"use one of: {', '.join(USES)}")
    models = list(catalog if catalog is not None else load_catalog())
    if free_vram is None:
        models = [m for m in models if m.params <= CPU_MAX_PARAMS]
    order = KINDS_BY_USE[use]
    models.sort(key=lambda m: (order.index(m.use) if m.use in order else len(order), -m.params))

    def look(model: CatalogModel) -> Recommendation | None:
        try:
            listing = hub.list_gguf_files(model.repo)
            shape = shape_of(listing)
        except LlmTuiError:
            return None
        return _best_quant(model, listing, shape, estimate, free_vram, free_disk)

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = [r for r in pool.map(look, models) if r is not None]
    found.sort(key=lambda r: _rank(r, order))
    return found[:limit]


def _rank(found: Recommendation, order: tuple[str, ...]) -> tuple[int, int, float]:
    """Fully on the GPU first, then the kind the use wants, then the bigger model."""
    verdict = found.fit.verdict if found.fit is not None else Verdict.UNKNOWN
    placement = {Verdict.FITS: 0, Verdict.UNKNOWN: 1, Verdict.PARTIAL: 2}.get(verdict, 3)
    kind = order.index(found.model.use) if found.model.use in order else len(order)
    return (placement, kind, -found.model.params)


def _best_quant(
    model: CatalogModel,
    listing: RepoFiles,
    shape: ModelShape | None,
    estimate: Estimate,
    free_vram: int | None,
    free_disk: int,
) -> Recommendation | None:
    """The first quant (best first) on the Hub, on the disk and, when known, on the GPU."""
    entries = {e.quant.upper(): e for e in listing.models if e.complete}
    candidates = [entries[q.upper()] for q in model.quants if q.upper() in entries]
    fallback: Recommendation | None = None
    for entry in candidates:
        if entry.size + DISK_MARGIN > free_disk:
            continue
        fit = estimate(scaled_to_size(shape, entry.size)) if shape is not None else None
        found = Recommendation(model, listing, entry, fit, _why(model, entry, fit))
        if free_vram is None or (fit is not None and fit.verdict is Verdict.FITS):
            return found
        if fallback is None and fit is not None and fit.verdict is Verdict.PARTIAL:
            fallback = found
    if fallback is None and free_vram is not None and candidates:
        # Nothing fits even in part: the smallest quant, said plainly.
        entry = candidates[-1]
        if entry.size + DISK_MARGIN <= free_disk:
            fit = estimate(scaled_to_size(shape, entry.size)) if shape is not None else None
            return Recommendation(model, listing, entry, fit, _why(model, entry, fit))
    return fallback


def _why(model: CatalogModel, entry: GgufEntry, fit: FitEstimate | None) -> str:
    size = format_size(entry.size)
    if fit is None or fit.free_vram is None:
        return f"{model.note}; {entry.quant}, {size}; {CPU_WARNING}"
    window = f", {fit.ctx // 1024}k context" if fit.ctx >= 1024 else ""
    return f"{model.note}; {entry.quant}, {size}: {fit.summary}{window}"


def free_disk_for(folder: object) -> int:
    """Free bytes where the models go (the nearest existing parent of ``folder``)."""
    import shutil
    from pathlib import Path

    path = Path(str(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free
