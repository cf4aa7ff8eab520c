"""Hugging Face Hub browsing: search GGUF repos and list their quantised files.

Built on the real `huggingface_hub.HfApi`, imported inside the functions that use it (it
costs ~0.1 s at startup). The endpoint is always passed explicitly: `HF_ENDPOINT` is read
once when `huggingface_hub` is imported, too early for our `.env`.

An empty `HF_TOKEN` means no token at all (`token=False`), never the token cached by
`hf auth login`: the downloader only knows `HF_TOKEN`, and both must agree on who asks.
Which endpoint may see the token is `Settings.hub_token`'s decision; beneath it,
:func:`token_for` never lets it travel over plain http except to this machine.

Every Hub failure becomes a `HubError` whose message says what to do. Note that
`huggingface_hub` itself retries network errors and 5xx answers (about 20 s in all) before
one of them reaches us.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from stack.errors import LlmTuiError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from stack.settings import Settings

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKENS_URL = "https://huggingface.co/settings/tokens"

SearchSort = Literal["downloads", "likes", "trending", "recent"]
# Our sort names -> huggingface_hub's `ModelSort_T` (the Hub sorts descending).
_SORTS: dict[str, Literal["downloads", "likes", "trending_score", "last_modified"]] = {
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trending_score",
    "recent": "last_modified",
}
_SEARCH_EXPAND: list[Any] = [
    "downloads",
    "likes",
    "trendingScore",
    "lastModified",
    "gated",
    "gguf",
]
# The Hub answers at most this many models per request; paging past it is not worth it.
MAX_SEARCH_RESULTS = 1000

UNKNOWN_QUANT = "unknown"
# Quant names as llama.cpp and the big GGUF publishers write them: Q4_K_M, Q8_0, IQ4_XS,
# IQ3_XXS, Q4_0_4_4, TQ1_0, F16, BF16, MXFP4, Unsloth's dynamic UD-Q4_K_XL, ...
_QUANT_RE = re.compile(
    r"(?<![a-z0-9])("
    r"(?:ud-)?(?:i?q[1-8]|tq[12])(?:_(?:[0-9]+|k|xxs|xs|s|m|l|xl|nl))*"
    r"|bf16|fp16|f16|fp32|f32|mxfp4(?:_moe)?"
    r")(?![a-z0-9])",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


class HubError(LlmTuiError):
    """The Hub refused or could not answer; the message says what to do."""

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoSummary:
    """One search hit."""

    repo_id: str
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    last_modified: datetime | None = None
    gated: bool = False
    parameters: int | None = None  # from the Hub's own GGUF scan, when it has one
    architecture: str | None = None
    context_length: int | None = None


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repo at one commit. ``sha256`` is known for LFS files (all GGUFs)."""

    path: str
    size: int
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GgufEntry:
    """A model you can pick: one GGUF file, or a whole split set as a single entry."""

    name: str  # file name, or the set's name without the -0000N-of-0000M suffix
    quant: str
    files: tuple[RemoteFile, ...]  # split sets: shards in order, shard 1 first
    shards: int = 1  # what the file names announce (a set may be incomplete on the Hub)
    mmproj: bool = False  # a vision projector, loaded beside a model, not a model itself

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def is_split(self) -> bool:
        return self.shards > 1

    @property
    def complete(self) -> bool:
        return len(self.files) == self.shards

    @property
    def first_file(self) -> RemoteFile:
        """What llama.cpp is given: shard 1 of a split set."""
        return self.files[0]


@dataclass(frozen=True)
class RepoFiles:
    """The GGUF files of a repo at one commit."""

    repo_id: str
    revision: str
    commit: str
    gated: bool
    entries: tuple[GgufEntry, ...] = field(default_factory=tuple)

    @property
    def models(self) -> list[GgufEntry]:
        return [e for e in self.entries if not e.mmproj]

    @property
    def mmproj(self) -> list[GgufEntry]:
        return [e for e in self.entries if e.mmproj]

    def by_quant(self) -> dict[str, list[GgufEntry]]:
        """Model entries grouped by quant name, in listing order (projectors left out)."""
        groups: dict[str, list[GgufEntry]] = defaultdict(list)
        for entry in self.models:
            groups[entry.quant].append(entry)
        return dict(groups)


# --- file names -------------------------------------------------------------------------


def parse_quant(path: str) -> str:
    """The quant named in a GGUF path, upper-cased (``unknown`` when none is named).

    The file name wins over its folders (publishers put split sets in ``Q4_K_M/``); within a
    name the last match wins, since the quant comes last (``…-Q8_0.gguf``).
    """
    parts = path.split("/")
    stem = _SPLIT_RE.sub(r"\g<base>", parts[-1])
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    for part in [stem, *reversed(parts[:-1])]:
        found = _QUANT_RE.findall(part)
        if found:
            return str(found[-1]).upper()
    return UNKNOWN_QUANT


def group_gguf_files(files: list[RemoteFile]) -> list[GgufEntry]:
    """GGUF files as pickable entries: split sets collapse into one entry per set."""
    sets: dict[tuple[str, str, int], dict[int, RemoteFile]] = {}
    slots: list[RemoteFile | tuple[str, str, int]] = []  # listing order, one slot per entry
    for remote in files:
        if not remote.path.lower().endswith(".gguf"):
            continue
        match = _SPLIT_RE.match(remote.name)
        if match is None or int(match["count"]) < 2:
            slots.append(remote)
            continue
        key = (remote.path.rpartition("/")[0], match["base"], int(match["count"]))
        if key not in sets:
            sets[key] = {}
            slots.append(key)
        sets[key].setdefault(int(match["index"]), remote)
    entries: list[GgufEntry] = []
    for slot in slots:
        if isinstance(slot, RemoteFile):
            entries.append(_entry(slot.name, (slot,), 1, slot.path))
        else:
            shards = sets[slot]
            ordered = tuple(shards[i] for i in sorted(shards))
            entries.append(_entry(slot[1], ordered, slot[2], ordered[0].path))
    return entries


def _entry(name: str, files: tuple[RemoteFile, ...], shards: int, path: str) -> GgufEntry:
    return GgufEntry(
        name=name,
        quant=parse_quant(path),
        files=files,
        shards=shards,
        mmproj="mmproj" in name.lower(),
    )


# --- the token --------------------------------------------------------------------------


def may_send_token(endpoint: str) -> bool:
    """True for https, and for plain http to this machine only (a loopback mirror).

    Anyone between here and a plain-http server can read the token off the wire.
    """
    parts = urlsplit(endpoint or DEFAULT_ENDPOINT)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if parts.scheme != "http" or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(endpoint: str, token: str) -> tuple[str, str | None]:
    """The token to send to ``endpoint`` ("" for none) and why it is withheld, if it is."""
    if not token or may_send_token(endpoint):
        return token, None
    return "", (
        f"HF_TOKEN is not sent to {endpoint}: plain http can be read on the way; "
        "use an https address, or a mirror on this machine"
    )


# --- the client -------------------------------------------------------------------------


class Hub:
    """Search and list GGUF repos on one Hub endpoint.

    ``token_withheld`` says why the caller kept HF_TOKEN back (``Settings.hub_token_withheld``),
    so that a refusal can say so; a token plain http may not carry is withheld here too.
    """

    def __init__(
        self, endpoint: str = "", token: str = "", *, token_withheld: str | None = None
    ) -> None:
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.token, withheld = token_for(self.endpoint, token)
        self.token_withheld = withheld or (None if self.token else token_withheld)
        self._api: HfApi | None = None
        self._api_lock = threading.Lock()

    @property
    def api(self) -> HfApi:
        with self._api_lock:
            if self._api is None:
                from huggingface_hub import HfApi

                self._api = HfApi(endpoint=self.endpoint, token=self.token or False)
            return self._api

    def repo_url(self, repo_id: str) -> str:
        return f"{self.endpoint}/{repo_id}"

    def search(
        self, query: str = "", *, sort: SearchSort = "downloads", page_size: int = 30
    ) -> SearchPager:
        """A pager over GGUF repos matching ``query``; call ``next_page()`` for each page."""
        return SearchPager(self, query, sort=sort, page_size=page_size)

    def search_models(
        self,
        query: str = "",
        *,
        sort: SearchSort = "downloads",
        limit: int = 30,
        offset: int = 0,
    ) -> list[RepoSummary]:
        """One page of GGUF repos matching ``query``, most downloaded (liked, ...) first."""
        found = self._list(query, sort=sort, count=offset + limit)
        return found[offset : offset + limit]

    def _list(self, query: str, *, sort: SearchSort, count: int) -> list[RepoSummary]:
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {', '.join(_SORTS)}, not {sort!r}")
        count = max(1, min(count, MAX_SEARCH_RESULTS))
        try:
            models = self.api.list_models(
                search=query or None,
                filter="gguf",
                sort=_SORTS[sort],
                limit=count,
                expand=_SEARCH_EXPAND,
            )
            return [_summary(m) for m in models]
        except Exception as exc:
            raise self.error(exc) from exc

    def list_gguf_files(self, repo_id: str, revision: str = "main") -> RepoFiles:
        """The repo's GGUF files at ``revision``, with sizes, sha256 and the commit they are in."""
        try:
            info = self.api.model_info(repo_id, revision=revision, files_metadata=True)
        except Exception as exc:
            raise self.error(exc, repo_id=repo_id, revision=revision) from exc
        files = [
            RemoteFile(
                path=s.rfilename,
                size=int(s.size or (s.lfs.size if s.lfs else 0) or 0),
                sha256=s.lfs.sha256 if s.lfs else None,
            )
            for s in info.siblings or []
        ]
        files.sort(key=lambda f: f.path)
        return RepoFiles(
            repo_id=repo_id,
            revision=revision,
            commit=info.sha or revision,
            gated=bool(info.gated),
            entries=tuple(group_gguf_files(files)),
        )

    def error(
        self,
        exc: BaseException,
        *,
        repo_id: str | None = None,
        filename: str | None = None,
        revision: str | None = None,
    ) -> HubError:
        """A `HubError` for any failure of a `huggingface_hub` call."""
        return map_hub_exception(
            exc,
            endpoint=self.endpoint,
            has_token=bool(self.token),
            token_withheld=self.token_withheld,
            repo_id=repo_id,
            filename=filename,
            revision=revision,
        )


class SearchPager:
    """Pages of one search. Thread-safe; ``has_more`` turns false on a short page.

    Each page asks the Hub for every result up to the end of that page and drops the repos
    already shown: `list_models` hides the Hub's paging cursor, and when the order moves
    between pages (trending does) a repo is still never shown twice. Page k costs one
    request for k pages of results, cheap for the few pages a person looks at.
    """

    def __init__(
        self, hub: Hub, query: str, *, sort: SearchSort = "downloads", page_size: int = 30
    ) -> None:
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {', '.join(_SORTS)}, not {sort!r}")
        self.hub = hub
        self.query = query
        self.sort: SearchSort = sort
        self.page_size = max(1, page_size)
        self.pages = 0
        self.has_more = True
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def next_page(self) -> list[RepoSummary]:
        with self._lock:
            if not self.has_more:
                return []
            wanted = (self.pages + 1) * self.page_size
            found = self.hub._list(self.query, sort=self.sort, count=wanted)
            page = [r for r in found if r.repo_id not in self._seen][: self.page_size]
            self._seen.update(r.repo_id for r in page)
            self.pages += 1
            self.has_more = len(found) >= wanted and wanted < MAX_SEARCH_RESULTS and bool(page)
            return page


def _summary(model: Any) -> RepoSummary:
    gguf = model.gguf if isinstance(model.gguf, dict) else {}
    total = gguf.get("total")
    context = gguf.get("context_length")
    architecture = gguf.get("architecture")
    return RepoSummary(
        repo_id=str(model.id),
        downloads=int(model.downloads or 0),
        likes=int(model.likes or 0),
        trending_score=int(model.trending_score or 0),
        last_modified=model.last_modified,
        gated=bool(model.gated),
        parameters=int(total) if isinstance(total, int) and total > 0 else None,
        architecture=str(architecture) if architecture else None,
        context_length=int(context) if isinstance(context, int) and context > 0 else None,
    )


def hub_from_settings(settings: Settings) -> Hub:
    return Hub(
        endpoint=settings.hf_endpoint,
        token=settings.hub_token,
        token_withheld=settings.hub_token_withheld,
    )


# --- errors -----------------------------------------------------------------------------


def map_hub_exception(
    exc: BaseException,
    *,
    endpoint: str,
    has_token: bool,
    token_withheld: str | None = None,
    repo_id: str | None = None,
    filename: str | None = None,
    revision: str | None = None,
) -> HubError:
    """Turn a `huggingface_hub`/`httpx` failure into a `HubError` that says what to do."""
    if isinstance(exc, HubError):
        return exc
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        headers = getattr(response, "headers", None) or {}
        return http_error(
            status,
            headers.get("X-Error-Code"),
            endpoint=endpoint,
            has_token=has_token,
            token_withheld=token_withheld,
            repo_id=repo_id or getattr(exc, "repo_id", None),
            filename=filename,
            revision=revision,
            retry_after=headers.get("Retry-After"),
        )
    if type(exc).__name__ == "OfflineModeIsEnabled":
        return HubError(
            "HF_HUB_OFFLINE is set, so the Hub is not contacted", fix="unset HF_HUB_OFFLINE"
        )
    if _is_network_error(exc):
        return network_error(endpoint, exc)
    return HubError(f"the Hub request failed: {exc}", fix="try again; if it persists, report it")


def _is_network_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "NetworkError"}) or isinstance(
        exc, ConnectionError | TimeoutError
    )


def network_error(endpoint: str, exc: BaseException | None = None) -> HubError:
    detail = f" ({exc})" if exc is not None and str(exc) else ""
    return HubError(
        f"cannot reach {endpoint}{detail}",
        fix="check the network or HF_ENDPOINT",
    )


def http_error(
    status: int,
    code: str | None,
    *,
    endpoint: str,
    has_token: bool,
    token_withheld: str | None = None,
    repo_id: str | None = None,
    filename: str | None = None,
    revision: str | None = None,
    retry_after: str | None = None,
) -> HubError:
    """A `HubError` for an error answer, from its status and the Hub's ``X-Error-Code``.

    ``token_withheld`` (why HF_TOKEN was not sent) turns an answer a token might change
    into that reason, so nobody replaces a good token that never left this machine.
    """
    repo = repo_id or "this repo"
    repo_url = f"{endpoint}/{repo_id}" if repo_id else endpoint
    withheld = token_withheld if not has_token else None
    if withheld and code == "GatedRepo":
        return HubError(
            f"{repo} is gated (accept its license at {repo_url}), and HF_TOKEN was withheld",
            fix=withheld,
            status=status,
        )
    if withheld and (code == "RepoNotFound" or status in (401, 403)):
        return HubError(
            f"{endpoint} did not show {repo} ({status}): it is missing or private, "
            "and HF_TOKEN was withheld",
            fix=f"check the name; {withheld}",
            status=status,
        )
    if code == "GatedRepo":
        if has_token:
            return HubError(
                f"{repo} is gated and HF_TOKEN has no access to it yet",
                fix=f"accept its license on the website ({repo_url}) with the account that "
                "owns HF_TOKEN, then retry",
                status=status,
            )
        return HubError(
            f"{repo} is gated: accept its license on the website ({repo_url}) and set HF_TOKEN",
            fix=f"create a read token at {TOKENS_URL} and put it in HF_TOKEN",
            status=status,
        )
    if code == "RevisionNotFound":
        return HubError(
            f"revision {revision or '?'} of {repo} was not found on {endpoint}",
            fix="pick the file again from the repo's current listing",
            status=status,
        )
    if code == "EntryNotFound":
        return HubError(
            f"file {filename or '?'} was not found in {repo}",
            fix="it may have been renamed or deleted: refresh the repo's file list",
            status=status,
        )
    if status in (401, 403) and has_token and code != "RepoNotFound":
        return HubError(
            f"HF_TOKEN was refused by {endpoint} ({status})",
            fix=f"check or replace the token ({TOKENS_URL}), or clear HF_TOKEN",
            status=status,
        )
    if status in (401, 404) or code == "RepoNotFound":
        return HubError(
            f"repository {repo} was not found on {endpoint}",
            fix="check the name"
            + ("" if has_token else "; a private repo also needs HF_TOKEN")
            + (f"; or the token in HF_TOKEN cannot see it ({status})" if has_token else ""),
            status=status,
        )
    if status == 403:
        return HubError(
            f"{endpoint} refused access to {repo} (403)",
            fix="set HF_TOKEN to a token that can read it",
            status=status,
        )
    if status == 429:
        wait = f" for {retry_after} s" if retry_after else ""
        return HubError(
            f"{endpoint} is rate-limiting requests (429)",
            fix=f"wait{wait} and retry; a token in HF_TOKEN raises the limit",
            status=status,
        )
    if status >= 500:
        return HubError(
            f"{endpoint} had a server error ({status})",
            fix="the Hub (or mirror) is having trouble: try again in a few minutes",
            status=status,
        )
    return HubError(
        f"{endpoint} answered {status} for {repo}",
        fix="retry; if it persists, check HF_ENDPOINT",
        status=status,
    )
