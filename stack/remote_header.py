"""Read a GGUF header straight from the Hub with HTTP Range requests.

The fit estimate exists before a multi-GB download: fetch the first few MB, and grow the
prefix only when the header (vocab, merges) runs past it. The body is streamed and reading
stops at the prefix, so a server that ignores Range (and sends the whole file, or a body
that never ends) costs no more memory than one that honours it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from stack.fit import ModelShape
from stack.gguf import (
    GgufError,
    GgufHeader,
    HeaderIncomplete,
    TruncatedData,
    combine_shards,
    read_header,
)
from stack.hub import (
    DEFAULT_ENDPOINT,
    GgufEntry,
    HubError,
    RepoFiles,
    http_error,
    network_error,
    token_for,
)

if TYPE_CHECKING:
    import httpx

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
