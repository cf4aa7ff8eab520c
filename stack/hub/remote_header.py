"""Read a GGUF header straight from the Hub with HTTP Range requests.

The fit estimate exists before a multi-GB download: fetch the first few MB, and grow the
prefix only when the header (vocab, merges) runs past it. The body is streamed and reading
stops at the prefix, so a server that ignores Range (and sends the whole file, or a body
that never ends) costs no more memory than one that honours it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from stack.errors import LlmTuiError
from stack.hub.errors import DEFAULT_ENDPOINT, HubError, http_error, network_error, token_for
from stack.hub.files import GgufEntry, RepoFiles
from stack.models.fit import ModelShape
from stack.models.gguf import read_header
from stack.models.header import GgufError, GgufHeader, HeaderIncomplete, TruncatedData
from stack.models.splits import combine_shards

if TYPE_CHECKING:
    import httpx

    from stack.models.fit import FitEstimate
    from stack.settings import Settings

FIRST_PREFIX = 4 * 2**20
MAX_PREFIX = 128 * 2**20
READ_CHUNK = 64 * 2**10


def fetch_header(
    endpoint: str,
    token: str,
    repo_id: str,
    revision: str,
    path: str,
    size: int,
    *,
    token_withheld: str | None = None,
) -> GgufHeader:
    """One remote file's header, reading as small a prefix as the header allows.

    ``token_withheld`` is why the caller kept HF_TOKEN back (``Settings.hub_token_withheld``),
    for the message when the Hub refuses; a token plain http may not carry is kept back here.
    """
    import httpx

    url = f"{endpoint.rstrip('/')}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"
    token, withheld = token_for(endpoint, token)
    withheld = withheld or (None if token else token_withheld)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    length = min(FIRST_PREFIX, size)
    with httpx.Client(follow_redirects=True, timeout=30.0, headers=headers) as client:
        while True:
            # identity: the prefix is counted in bytes of the file, never of a compressed body.
            request = {"Range": f"bytes=0-{length - 1}", "Accept-Encoding": "identity"}
            try:
                with client.stream("GET", url, headers=request) as response:
                    if response.status_code not in (200, 206):
                        raise http_error(
                            response.status_code,
                            response.headers.get("X-Error-Code"),
                            endpoint=endpoint,
                            has_token=bool(token),
                            token_withheld=withheld,
                            repo_id=repo_id,
                            filename=path,
                            revision=revision,
                        )
                    prefix = _read_prefix(response, length)
            except httpx.HTTPError as exc:
                raise network_error(endpoint, exc) from None
            if len(prefix) < length:
                raise HubError(
                    f"{endpoint} sent {len(prefix):,} bytes of {path} where {length:,} "
                    "were asked for",
                    fix="refresh the repo's file list and retry; if it persists, check HF_ENDPOINT",
                )
            try:
                return read_header(prefix, file_size=size)
            except HeaderIncomplete as incomplete:
                grown = max(incomplete.needed, 2 * length)
                if length >= size or grown > MAX_PREFIX:
                    raise HubError(
                        f"the header of {path} is larger than {MAX_PREFIX // 2**20} MiB",
                        fix="download the file and run `llm-tui fit` on it",
                    ) from None
                length = min(grown, size)
            except TruncatedData:
                raise
            except GgufError as exc:
                # Name the file: a repo's shape comes from one of its files.
                raise GgufError(f"{path}: {exc.reason}", fix=exc.fix) from None


def _read_prefix(response: httpx.Response, length: int) -> bytearray:
    """The first ``length`` bytes of the body; the rest is never read.

    Raw bytes (no decoding) in small chunks: at most ``length`` plus one chunk is held,
    whatever the server sends after.
    """
    prefix = bytearray()
    for chunk in response.iter_raw(READ_CHUNK):
        prefix += chunk[: length - len(prefix)]
        if len(prefix) >= length:
            break
    return prefix


def fetch_entry_header(
    endpoint: str,
    token: str,
    repo_id: str,
    revision: str,
    entry: GgufEntry,
    *,
    token_withheld: str | None = None,
) -> GgufHeader:
    """The header of a whole model entry (every shard's header for a split set)."""
    headers = [
        fetch_header(
            endpoint, token, repo_id, revision, f.path, f.size, token_withheld=token_withheld
        )
        for f in entry.files
    ]
    return combine_shards(headers) if len(headers) > 1 else headers[0]


def fetch_repo_shape(
    endpoint: str, token: str, listing: RepoFiles, *, token_withheld: str | None = None
) -> ModelShape | None:
    """One header per repo (its smallest complete model): every quant shares the shape.

    None when the repo has no complete model file. A header that cannot be read (not
    GGUF, or not plausible) raises GgufError naming the file: a problem of this repo only.
    """
    entries = [e for e in listing.models if e.complete]
    if not entries:
        return None
    smallest = min(entries, key=lambda e: e.size)
    header = fetch_entry_header(
        endpoint or DEFAULT_ENDPOINT,
        token,
        listing.repo_id,
        listing.commit,
        smallest,
        token_withheld=token_withheld,
    )
    return ModelShape.from_header(header)


def fetch_quant_header(settings: Settings, repo_id: str, wanted: str) -> tuple[GgufHeader, str]:
    """The header of ``repo_id``'s quant (or file) ``wanted``, and how to name it."""
    from stack.hub.client import hub_from_settings
    from stack.hub.files import pick_entry

    hub = hub_from_settings(settings)
    listing = hub.list_gguf_files(repo_id)
    entry = pick_entry(listing, wanted)
    header = fetch_entry_header(
        hub.endpoint,
        settings.hub_token,
        repo_id,
        listing.commit,
        entry,
        token_withheld=settings.hub_token_withheld,
    )
    return header, f"{repo_id}:{entry.quant} ({entry.name})"


@dataclass(frozen=True)
class RepoFits:
    """The fit of each model file of a repo (by its first file's path), or why there is none."""

    fits: dict[str, FitEstimate | None]
    problem: str = ""  # why no estimate could be made ("" when there are estimates)

    def of(self, entry: GgufEntry) -> FitEstimate | None:
        return self.fits.get(entry.first_file.path)


def repo_fits(settings: Settings, listing: RepoFiles, free_vram: int | None) -> RepoFits:
    """Every quant's fit from one header read over HTTP (a repo's quants share a shape).

    The CLI's `files` and the Hugging Face screen both show these, so they agree.
    """
    from stack.models.fit import estimate_for_settings, scaled_to_size

    try:
        shape = fetch_repo_shape(
            settings.hf_endpoint,
            settings.hub_token,
            listing,
            token_withheld=settings.hub_token_withheld,
        )
    except LlmTuiError as error:
        return RepoFits({}, error.message)
    if shape is None:
        return RepoFits({}, "no complete model file")
    return RepoFits(
        {
            entry.first_file.path: estimate_for_settings(
                scaled_to_size(shape, entry.size), settings, free_vram=free_vram
            )
            for entry in listing.models
            if entry.complete
        }
    )
