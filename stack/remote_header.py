"""Read a GGUF header straight from the Hub with HTTP Range requests.

The fit estimate exists before a multi-GB download: fetch the first few MB, and grow the
prefix only when the header (vocab, merges) runs past it.
"""

from __future__ import annotations

from urllib.parse import quote

from stack.fit import ModelShape
from stack.gguf import GgufHeader, HeaderIncomplete, combine_shards, read_header
from stack.hub import DEFAULT_ENDPOINT, GgufEntry, HubError, RepoFiles, http_error, network_error

FIRST_PREFIX = 4 * 2**20
MAX_PREFIX = 128 * 2**20


def fetch_header(
    endpoint: str, token: str, repo_id: str, revision: str, path: str, size: int
) -> GgufHeader:
    """One remote file's header, reading as small a prefix as the header allows."""
    import httpx

    url = f"{endpoint.rstrip('/')}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    length = min(FIRST_PREFIX, size)
    with httpx.Client(follow_redirects=True, timeout=30.0, headers=headers) as client:
        while True:
            try:
                response = client.get(url, headers={"Range": f"bytes=0-{length - 1}"})
            except httpx.HTTPError as exc:
                raise network_error(endpoint, exc) from None
            if response.status_code not in (200, 206):
                raise http_error(
                    response.status_code,
                    response.headers.get("X-Error-Code"),
                    endpoint=endpoint,
                    has_token=bool(token),
                    repo_id=repo_id,
                    filename=path,
                    revision=revision,
                )
            try:
                return read_header(response.content[:length], file_size=size)
            except HeaderIncomplete as incomplete:
                grown = max(incomplete.needed, 2 * length)
                if length >= size or grown > MAX_PREFIX:
                    raise HubError(
                        f"the header of {path} is larger than {MAX_PREFIX // 2**20} MiB",
                        fix="download the file and run `llm-tui fit` on it",
                    ) from None
                length = min(grown, size)


def fetch_entry_header(
    endpoint: str, token: str, repo_id: str, revision: str, entry: GgufEntry
) -> GgufHeader:
    """The header of a whole model entry (every shard's header for a split set)."""
    headers = [
        fetch_header(endpoint, token, repo_id, revision, f.path, f.size) for f in entry.files
    ]
    return combine_shards(headers) if len(headers) > 1 else headers[0]


def fetch_repo_shape(endpoint: str, token: str, listing: RepoFiles) -> ModelShape | None:
    """One header per repo (its smallest complete model): every quant shares the shape.

    None when the repo has no complete model file.
    """
    entries = [e for e in listing.models if e.complete]
    if not entries:
        return None
    smallest = min(entries, key=lambda e: e.size)
    header = fetch_entry_header(
        endpoint or DEFAULT_ENDPOINT, token, listing.repo_id, listing.commit, smallest
    )
    return ModelShape.from_header(header)
