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

import threading
from typing import TYPE_CHECKING, Any, Literal

from stack.hub.errors import (
    DEFAULT_ENDPOINT,
    HubError,
    map_hub_exception,
    token_for,
)
from stack.hub.files import RemoteFile, RepoFiles, RepoSummary, group_gguf_files

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from stack.settings import Settings

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
