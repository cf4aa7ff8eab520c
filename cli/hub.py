"""`llm-tui search | files | pull`: Hugging Face from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cli.output import add_vram_option, free_vram_bytes
from stack.errors import LlmTuiError
from stack.settings import Settings, load_settings
from stack.units import format_size


def _hub(settings: Settings) -> Any:
    from stack.hub.client import hub_from_settings

    return hub_from_settings(settings)


def cmd_search(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    results = _hub(settings).search_models(args.query, sort=args.sort, limit=args.limit)
    if args.json:
        print(json.dumps([_summary_dict(r) for r in results], indent=2))
        return 0
    if not results:
        print(f"no GGUF repos match {args.query!r}")
        return 0
    width = max(len(r.repo_id) for r in results)
    for r in results:
        params = f"{r.parameters / 1e9:.1f}B" if r.parameters else ""
        updated = r.last_modified.date().isoformat() if r.last_modified else ""
        gated = "gated" if r.gated else ""
        print(
            f"{r.repo_id:<{width}}  {r.downloads:>10,} dl  {r.likes:>6,} ♥  {params:>7}  "
            f"{updated}  {gated}"
        )
    return 0


def _summary_dict(summary: Any) -> dict[str, Any]:
    return {
        "repo_id": summary.repo_id,
        "downloads": summary.downloads,
        "likes": summary.likes,
        "trending_score": summary.trending_score,
        "last_modified": summary.last_modified.isoformat() if summary.last_modified else None,
        "gated": summary.gated,
        "parameters": summary.parameters,
        "architecture": summary.architecture,
    }


def cmd_files(args: argparse.Namespace) -> int:
    from stack.hub.remote_header import RepoFits, repo_fits

    settings = load_settings(args.env_file)
    listing = _hub(settings).list_gguf_files(args.repo)
    free = free_vram_bytes(args.vram, settings)
    fits = RepoFits({})
    if not args.no_fit and listing.models:
        fits = repo_fits(settings, listing, free)
        if fits.problem:
            print(f"(no fit estimate: {fits.problem})", file=sys.stderr)
    rows = []
    for entry in listing.entries:
        fit = fits.of(entry)
        rows.append(
            {
                "name": entry.name,
                "quant": entry.quant,
                "size": entry.size,
                "files": [f.path for f in entry.files],
                "shards": entry.shards,
                "complete": entry.complete,
                "mmproj": entry.mmproj,
                "sha256": [f.sha256 for f in entry.files],
                "fit": fit.summary if fit else None,
            }
        )
    if args.json:
        print(
            json.dumps(
                {
                    "repo": listing.repo_id,
                    "commit": listing.commit,
                    "gated": listing.gated,
                    "files": rows,
                },
                indent=2,
            )
        )
        return 0
    gated = "  (gated: accept its license on the website and set HF_TOKEN)" if listing.gated else ""
    print(f"{listing.repo_id} @ {listing.commit[:12]}{gated}")
    if not rows:
        print("  no GGUF files")
        return 0
    if free is None and fits.fits:
        print("  (no GPU measured: pass --vram GIB for a fit verdict)", file=sys.stderr)
    for row in rows:
        parts = f" ({row['shards']} parts)" if row["shards"] > 1 else ""
        broken = "" if row["complete"] else "  INCOMPLETE SET"
        kind = "  vision projector" if row["mmproj"] else ""
        print(
            f"  {row['quant']:<10} {format_size(row['size']):>10}  {row['name']}{parts}"
            f"{broken}{kind}  {row['fit'] or ''}"
        )
    return 0


def _progress_printer(interactive: bool) -> Any:
    state = {"last": 0.0}

    def show(progress: Any) -> None:
        now = time.monotonic()
        if not progress.final and now - state["last"] < (0.2 if interactive else 2.0):
            return
        state["last"] = now
        eta = f"ETA {int(progress.eta) // 60}:{int(progress.eta) % 60:02d}" if progress.eta else ""
        line = (
            f"{progress.name}  {format_size(progress.bytes_done)}/{format_size(progress.total)}  "
            f"{progress.fraction:5.1%}  {progress.speed / 1e6:6.1f} MB/s  {eta}  {progress.state}"
        )
        if interactive:
            sys.stderr.write("\r\x1b[2K" + line)
            if progress.final:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def cmd_pull(args: argparse.Namespace) -> int:
    from stack.hub.downloads import DownloadRequest
    from stack.hub.files import pick_entry  # here, not at the top: every command imports cli.hub

    settings = load_settings(args.env_file)
    hub = _hub(settings)
    listing = hub.list_gguf_files(args.repo)
    entry = pick_entry(listing, args.what)
    if listing.gated and settings.hub_token_withheld:
        raise LlmTuiError(
            f"{listing.repo_id} is gated and {settings.hub_token_withheld}",
            fix="llm-tui config set HF_TRUST_ENDPOINT true",
        )
    if listing.gated and not settings.hub_token:
        raise LlmTuiError(
            f"{listing.repo_id} is gated: accept its license at {hub.repo_url(listing.repo_id)}",
            fix="then create a read token (huggingface.co/settings/tokens) and run "
            "`llm-tui config set HF_TOKEN` (it asks for the token)",
        )
    if not entry.complete:
        raise LlmTuiError(
            f"{entry.name} is an incomplete split set on the Hub "
            f"({len(entry.files)} of {entry.shards} parts)",
            fix="pick another quant",
        )
    folder = entry.name if entry.is_split else ""
    interactive = sys.stderr.isatty()
    print(
        f"{listing.repo_id}: {entry.quant} {entry.name} ({format_size(entry.size)})",
        file=sys.stderr,
    )
    if interactive and sys.stdin.isatty() and not args.yes:
        answer = input(f"download {format_size(entry.size)} into {_place(settings)}? [Y/n] ")
        if answer.strip().lower() in ("n", "no"):
            return 1
    if not run_download(settings, DownloadRequest.for_entry(listing, entry, folder), interactive):
        return 130
    shard1 = f"{folder}/{entry.first_file.name}" if folder else entry.first_file.name
    for remote in entry.files:
        print(f"{remote.sha256}  {folder + '/' if folder else ''}{remote.name}")
    print(f"saved {_saved_as(settings, shard1)}")
    if not settings.chat_model:
        print(f"serve it: llm-tui config set CHAT_MODEL {shard1}  (or `llm-tui swap {shard1}`)")
    return 0


def _place(settings: Settings) -> str:
    """MODELS_DIR, or where a remote engine's models are ("the volume … on gpu-box")."""
    if not settings.engine_remote:
        return str(settings.models_dir)
    from stack.engine.endpoint import resolve_endpoint
    from stack.engine.helper import models_place

    return models_place(settings, resolve_endpoint())


def _saved_as(settings: Settings, relative: str) -> str:
    if not settings.engine_remote:
        return str(settings.models_dir / relative)
    return f"{relative} in {_place(settings)}"


def run_download(settings: Settings, request: Any, interactive: bool) -> bool:
    """Download ``request`` with progress on stderr; False when Ctrl+C stopped it (kept).

    A remote engine's models are downloaded on its host, straight from the Hub.
    """
    from stack.hub.downloads import JobState
    from stack.hub.remote_downloads import downloader_for

    if not settings.engine_remote:
        settings.models_dir.mkdir(parents=True, exist_ok=True)
    downloader = downloader_for(settings)
    try:
        job = downloader.enqueue(request, _progress_printer(interactive))
        try:
            final = job.wait()
        except KeyboardInterrupt:
            job.cancel()
            job.wait(timeout=10)
            print(
                "\ninterrupted: the partial download is kept; run the same command to resume",
                file=sys.stderr,
            )
            return False
    finally:
        downloader.close(cancel=False)
    if final.state is not JobState.DONE:
        if final.error is not None:
            raise final.error
        raise LlmTuiError(f"download {final.state}")
    return True


def add_commands(commands: Any) -> None:
    search = commands.add_parser("search", help="search Hugging Face for GGUF repos")
    search.add_argument("query")
    search.add_argument(
        "--sort", choices=("downloads", "likes", "trending", "recent"), default="downloads"
    )
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_search)
    files = commands.add_parser("files", help="a repo's GGUF files: quants, sizes, fit")
    files.add_argument("repo")
    files.add_argument("--json", action="store_true")
    files.add_argument("--no-fit", action="store_true", help="skip reading a remote header")
    add_vram_option(files)
    files.set_defaults(handler=cmd_files)
    pull = commands.add_parser("pull", help="download a GGUF (resumable, sha256-verified)")
    pull.add_argument("repo")
    pull.add_argument("what", metavar="QUANT|FILE", help="e.g. Q4_K_M, or a file name")
    pull.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    pull.set_defaults(handler=cmd_pull)
