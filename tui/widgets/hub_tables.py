"""The Hugging Face screen's two tables: search results, and one repo's GGUF files.

Every cell is a `rich.text.Text`: a `DataTable` reads plain strings as markup, and repo ids
and file names come from the Hub, so they must never be parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.content import Content
from textual.widgets import DataTable

from stack.gpu import FreeVram
from stack.hub.errors import TOKENS_URL
from stack.hub.files import GgufEntry, RepoFiles, RepoSummary
from stack.models.fit import FitEstimate, Verdict
from stack.units import format_size
from tui.commands import bindings
from tui.formatting import format_params
from tui.paths import display_path
from tui.screens.models import FIT_MARKS


def format_count(count: int) -> str:
    """``1.2M``, ``34.5k``, ``999``."""
    if count >= 10**6:
        return f"{count / 1e6:.1f}M"
    if count >= 10**3:
        return f"{count / 1e3:.1f}k"
    return str(count)


def result_cells(repo: RepoSummary) -> tuple[Text, ...]:
    updated = repo.last_modified.date().isoformat() if repo.last_modified else ""
    return (
        Text(repo.repo_id, no_wrap=True, overflow="ellipsis"),
        Text(format_count(repo.downloads), justify="right"),
        Text(format_count(repo.likes), justify="right"),
        Text(format_params(repo.parameters or 0), justify="right"),
        Text(updated),
        Text("gated", style="bold") if repo.gated else Text(""),
    )


def entry_key(entry: GgufEntry) -> str:
    return entry.first_file.path


def fit_cell(
    entry: GgufEntry, fit: FitEstimate | None, measured: bool, colours: dict[Verdict, str]
) -> Text:
    if entry.mmproj:
        return Text("projector", style="dim")
    if not entry.complete:
        return Text("—", style="dim")
    if fit is None:
        return Text("?" if measured else "…", style="dim")
    if fit.verdict is Verdict.UNKNOWN:  # no GPU reading: say what it needs instead
        return Text(f"? ~{format_size(fit.total_bytes)}", style="dim")
    layers = f"{fit.gpu_layers}/{fit.total_layers} layers"
    return Text(FIT_MARKS[fit.verdict].format(layers=layers), style=colours.get(fit.verdict, ""))


def quant_cells(
    entry: GgufEntry, fit: FitEstimate | None, measured: bool, colours: dict[Verdict, str]
) -> tuple[Text, ...]:
    parts = str(entry.shards) if entry.complete else f"{len(entry.files)}/{entry.shards} ✗"
    name = entry.name + ("  (vision projector)" if entry.mmproj else "")
    return (
        Text(entry.quant),
        Text(format_size(entry.size), justify="right"),
        Text(parts, justify="right"),
        fit_cell(entry, fit, measured, colours),
        Text(name, no_wrap=True, overflow="ellipsis"),
    )


def gated_text(repo_url: str, has_token: bool, withheld: str | None = None) -> str:
    if withheld:
        return f"Gated, and {withheld}."
    if has_token:
        return f"Gated: HF_TOKEN must belong to an account that accepted the license at {repo_url}."
    return (
        f"Gated: accept its license at {repo_url} (logged in to Hugging Face), then create a "
        f"read token at {TOKENS_URL} and set HF_TOKEN in Settings (5). Downloads fail until then."
    )


def download_question(
    listing: RepoFiles,
    entry: GgufEntry,
    models_dir: Path,
    folder: str,
    fit: FitEstimate | None,
    place: str = "",
) -> str:
    """What the download dialog asks: the file, its size, where it goes, and its fit.

    ``place``: the models on a remote engine's host ("the volume … on gpu-box"), if there.
    """
    where = display_path(models_dir / folder if folder else models_dir)
    if place:
        where = f"{folder} in {place}" if folder else place
    parts = f" in {entry.shards} parts" if entry.is_split else ""
    question = (
        f"Download {entry.name} ({entry.quant}, {format_size(entry.size)}{parts}) from "
        f"{listing.repo_id} into {where}?"
    )
    if fit is not None and fit.verdict is not Verdict.UNKNOWN:
        question += f"\n\nOn this GPU it {fit.summary.replace('fits', 'would fit', 1)}."
    return question


def repo_text(
    listing: RepoFiles,
    *,
    gated: bool,
    repo_url: str,
    has_token: bool,
    memory: FreeVram | None,
    fit_note: str,
    withheld: str | None = None,
) -> Content:
    """Above the quants: the repo at its commit, what it holds, the GPU, and why it is gated."""
    models, projectors = len(listing.models), len(listing.mmproj)
    counts = f"{models} GGUF model{'s' if models != 1 else ''}"
    if projectors:
        counts += f", {projectors} vision projector{'s' if projectors != 1 else ''}"
    if not listing.entries:
        counts = "no GGUF files: pick another repo"
    vram = ""
    if memory is not None:
        vram = (
            f" · fit vs {memory.note}"
            if memory.free is not None
            else " · fit: ? (it needs an NVIDIA GPU)"
        )
    head = Content.assemble((listing.repo_id, "bold"), f" @ {listing.commit[:12]} · {counts}")
    lines = [head + vram]
    if gated:
        lines.append(Content.styled(gated_text(repo_url, has_token, withheld), "$text-warning"))
    if fit_note:
        lines.append(Content.styled(fit_note, "$text-muted"))
    return Content("\n").join(lines)


def selected_key(table: DataTable[Any]) -> str | None:
    if table.row_count == 0:
        return None
    value = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    return str(value) if value is not None else None


class ResultsTable(DataTable[Any]):
    """Search results; Enter lists the highlighted repo's GGUF files."""

    BINDINGS = bindings("hub.results")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.repos: dict[str, RepoSummary] = {}
        self.add_column("Repo", key="repo")
        self.add_column("Downloads", key="downloads", width=9)
        self.add_column("Likes", key="likes", width=6)
        self.add_column("Params", key="params", width=6)
        self.add_column("Updated", key="updated", width=10)
        self.add_column("Access", key="gated", width=6)

    def reset(self) -> None:
        self.repos = {}
        self.clear()

    def add_repos(self, repos: list[RepoSummary]) -> None:
        for repo in repos:
            if repo.repo_id not in self.repos:
                self.repos[repo.repo_id] = repo
                self.add_row(*result_cells(repo), key=repo.repo_id)

    @property
    def selected(self) -> str | None:
        return selected_key(self)


class QuantsTable(DataTable[Any]):
    """A repo's GGUF files; Enter downloads the highlighted one (after a question)."""

    BINDINGS = bindings("hub.quants")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.listing: RepoFiles | None = None
        self.add_column("Quant", key="quant", width=10)
        self.add_column("Size", key="size", width=9)
        self.add_column("Parts", key="parts", width=5)
        self.add_column("Fit", key="fit", width=16)
        self.add_column("File", key="file")

    def show(
        self, listing: RepoFiles | None, fits: dict[str, FitEstimate | None], measured: bool
    ) -> None:
        """``measured``: the fit step is over (an entry without a fit then shows ``?``)."""
        self.listing = listing
        cursor = self.cursor_row
        self.clear()
        if listing is None:
            return
        theme = self.app.current_theme  # Rich styles in a table: the theme's own colours
        colours = {
            Verdict.FITS: theme.success or "",
            Verdict.PARTIAL: theme.warning or "",
            Verdict.NO_FIT: theme.error or "",
        }
        for entry in listing.entries:
            key = entry_key(entry)
            self.add_row(*quant_cells(entry, fits.get(key), measured, colours), key=key)
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    @property
    def selected(self) -> GgufEntry | None:
        key = selected_key(self)
        if self.listing is None or key is None:
            return None
        return next((e for e in self.listing.entries if entry_key(e) == key), None)
