"""A fake Hugging Face Hub served over real HTTP on 127.0.0.1.

It speaks the subset of the Hub API that ``huggingface_hub`` and our own downloader use:

* ``GET /api/models`` (search, filter, author, gated, sort, direction, limit, expand, full,
  cursor paging through a ``Link: <...>; rel="next"`` header),
* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (``blobs=true`` adds
  file sizes, blob ids and LFS info to ``siblings``),
* ``GET /api/models/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``, paged),
* ``GET /api/whoami-v2``,
* ``HEAD``/``GET /{repo}/resolve/{rev}/{filename}`` with byte ranges, streamed in chunks so
  that injected faults can strike in the middle of a body,
* ``HEAD``/``GET /_cdn/...``, the target of LFS redirects when ``lfs_redirect=True``.

Errors carry the same ``X-Error-Code`` headers as the real Hub so that the real client raises
its own typed exceptions (``RepositoryNotFoundError``, ``GatedRepoError``, ...).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

CHUNK_SIZE = 64 * 1024
DEFAULT_PAGE_SIZE = 1000
# Suffixes the real Hub's default .gitattributes stores in LFS; .gguf is the one we care about.
LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack")
LFS_MIN_SIZE = 10 * 1024 * 1024
DEFAULT_DATE = "2026-01-01T00:00:00.000Z"

# Fields of a model as the Hub names them, in the order the listing returns them.
_SORT_KEYS = {"downloads", "likes", "trendingScore", "lastModified", "createdAt", "id"}
_SORT_ALIASES = {
    "last_modified": "lastModified",
    "trending_score": "trendingScore",
    "created_at": "createdAt",
}
_LISTING_FIELDS = (
    "_id",
    "id",
    "modelId",
    "author",
    "likes",
    "trendingScore",
    "private",
    "gated",
    "downloads",
    "tags",
    "lastModified",
    "createdAt",
)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _git_blob_id(data: bytes) -> str:
    # The Hub reports git blob ids, i.e. sha1 over "blob <len>\0" + content.
    return _sha1(b"blob %d\0" % len(data) + data)


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def is_lfs_path(path: str, size: int) -> bool:
    """Whether the fake Hub stores this file in LFS (always true for ``.gguf``)."""
    return path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


@dataclass(frozen=True)
class HubFile:
    """One file of one commit."""

    path: str
    data: bytes
    blob_id: str
    sha256: str | None  # set only for LFS files
    pointer_size: int | None

    @classmethod
    def build(cls, path: str, data: bytes) -> HubFile:
        if is_lfs_path(path, len(data)):
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = _lfs_pointer(sha256, len(data))
            return cls(path, data, _git_blob_id(pointer), sha256, len(pointer))
        return cls(path, data, _git_blob_id(data), None, None)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        # LFS files are tagged with their sha256, git files with their blob id, like the Hub.
        return f'"{self.sha256 or self.blob_id}"'

    def lfs_json(self, oid_key: str) -> dict[str, Any] | None:
        if self.sha256 is None:
            return None
        return {oid_key: self.sha256, "size": self.size, "pointerSize": self.pointer_size}


@dataclass(frozen=True)
class Commit:
    sha: str
    files: dict[str, HubFile]
    date: str
    title: str = "Upload folder using huggingface_hub"


@dataclass
class Repo:
    """A model repo; ``commits[-1]`` is what ``main`` points at."""

    repo_id: str
    gated: str | bool = False  # False, "auto" or "manual"
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    last_modified: str = DEFAULT_DATE
    created_at: str = DEFAULT_DATE
    tags: list[str] = field(default_factory=list)
    private: bool = False
    gguf: dict[str, Any] | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    @property
    def sha(self) -> str:
        return self.head.sha

    @property
    def files(self) -> dict[str, bytes]:
        return {path: f.data for path, f in self.head.files.items()}

    @property
    def author(self) -> str:
        return self.repo_id.split("/", 1)[0]

    def resolve(self, revision: str) -> Commit | None:
        """``main`` (and ``HEAD``) is the latest commit; any past commit sha also resolves."""
        if revision in ("main", "HEAD"):
            return self.head
        for commit in reversed(self.commits):
            if commit.sha == revision:
                return commit
        return None

    def add_commit(self, files: dict[str, bytes], date: str) -> Commit:
        built = {
            path.strip("/"): HubFile.build(path.strip("/"), data) for path, data in files.items()
        }
        digest = hashlib.sha1(f"{self.repo_id}\n{len(self.commits)}\n".encode())
        for path in sorted(built):
            digest.update(f"{path}\0{built[path].blob_id}\n".encode())
        commit = Commit(sha=digest.hexdigest(), files=built, date=date)
        self.commits.append(commit)
        self.last_modified = date
        return commit


@dataclass
class Faults:
    """Switches for misbehaviour; ``FakeHub.reset_faults()`` turns them all off."""

    # Close the connection after this many body bytes of a file GET (counted per response).
    drop_after_bytes: int | None = None
    # How many file GETs get dropped before the server behaves again (None: all of them).
    drop_times: int | None = None
    # Sleep between body chunks of a file GET: a slow server.
    delay_per_chunk: float = 0.0
    # Stop each file GET's body after this many bytes (counted per response) and hold the
    # connection open until `FakeHub.release()`: a download caught mid-file for as long as a
    # test needs, which no client can overtake. `FakeHub.wait_held()` waits for it.
    hold_after_bytes: int | None = None
    # Flip one byte at this absolute file offset in every served file body.
    corrupt_byte_at: int | None = None
    # Answer every request with this status (e.g. 500, 503, 429).
    fail_status: int | None = None
    # How many requests fail before the server recovers (None: all of them).
    fail_times: int | None = None
    # Sent as a Retry-After header with injected failures.
    retry_after: int | None = None
    # Answer file GETs with 200 and the whole body, whatever Range asks for (an old proxy).
    ignore_range: bool = False
    # After a file GET's body, keep sending this many more bytes (None: none), chunked with
    # no Content-Length: a server that never stops. -1 sends forever (until the client hangs up).
    # Every byte sent, the extra ones too, counts in `bytes_served`.
    overrun_bytes: int | None = None


@dataclass
class RequestLog:
    method: str
    path: str  # raw path, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    status: int = 0
    body_bytes_sent: int = 0
    file: tuple[str, str] | None = None  # (repo_id, filename) for file bodies

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


class _HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeHub

    def __init__(self, hub: FakeHub) -> None:
        super().__init__((hub.host, 0), _Handler)
        self.hub = hub
        self.open_sockets: set[socket.socket] = set()
        self.stopping = threading.Event()
        self.sockets_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACK
        # add ~40 ms to every keep-alive response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.sockets_lock:
            self.open_sockets.add(sock)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer, or a connection `close_all_connections` cut as
        # the server stops (its handler thread may outlive `stop`, and would print over the
        # next test's output): not the server's error. Anything else keeps its traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) or (
            self.stopping.is_set() and isinstance(error, OSError)
        ):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        # Keep-alive connections outlive serve_forever(); cut them so no thread lingers.
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class FakeHub:
    """A real HTTP server on 127.0.0.1 that behaves like a small Hugging Face Hub."""

    def __init__(
        self,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        lfs_redirect: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.page_size = page_size
        # Where it listens: another address lets a remote engine's host reach it too.
        self.host = host
        # When set, resolve of an LFS file answers 302 to /_cdn/... like the Hub's CDN hop.
        self.lfs_redirect = lfs_redirect
        self.allowed_tokens: set[str] = set()
        self.faults = Faults()
        self._repos: dict[str, Repo] = {}
        self._lock = threading.Lock()
        self._requests: list[RequestLog] = []
        self._served: dict[tuple[str, str], int] = {}
        self._failed = 0
        self._dropped = 0
        self._changed = threading.Condition(self._lock)
        self._held = 0  # responses that reached faults.hold_after_bytes so far
        self._gate = threading.Event()  # set: held responses go on
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeHub:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},  # stop() waits up to one poll
                name="fakehub",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        self.release()
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- content ---------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        gated: bool | str = False,
        downloads: int = 0,
        likes: int = 0,
        trending_score: int = 0,
        last_modified: str = DEFAULT_DATE,
        created_at: str | None = None,
        tags: list[str] | None = None,
        private: bool = False,
        gguf: dict[str, Any] | None = None,
        pipeline_tag: str | None = None,
        library_name: str | None = None,
    ) -> Repo:
        """Create (or replace) a repo whose ``main`` holds ``files``.

        ``gated=True`` means ``"auto"``. A repo with ``.gguf`` files gets the ``gguf`` tag and,
        unless ``gguf`` is given, a stub ``gguf`` block, as the Hub computes both itself.
        """
        if repo_id.count("/") != 1:
            raise ValueError(f"repo_id must be 'namespace/name', got {repo_id!r}")
        has_gguf = any(path.lower().endswith(".gguf") for path in files)
        repo_tags = list(tags or [])
        if has_gguf and "gguf" not in repo_tags:
            repo_tags.append("gguf")
        if gguf is None and has_gguf:
            gguf = {"total": 0, "architecture": "llama", "context_length": 4096}
        repo = Repo(
            repo_id=repo_id,
            gated="auto" if gated is True else gated,
            downloads=downloads,
            likes=likes,
            trending_score=trending_score,
            created_at=created_at or last_modified,
            tags=repo_tags,
            private=private,
            gguf=gguf,
            pipeline_tag=pipeline_tag,
            library_name=library_name,
        )
        repo.add_commit(files, last_modified)
        with self._lock:
            self._repos[repo_id] = repo
        return repo

    def set_files(
        self,
        repo_id: str,
        files: dict[str, bytes | None],
        *,
        last_modified: str | None = None,
    ) -> Commit:
        """Push a new commit on ``main``: each file is replaced, added, or deleted when None."""
        with self._lock:
            repo = self._repos[repo_id]
            current = repo.files
            for path, data in files.items():
                if data is None:
                    current.pop(path, None)
                else:
                    current[path] = data
            return repo.add_commit(current, last_modified or repo.last_modified)

    def remove_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    def repo(self, repo_id: str) -> Repo:
        with self._lock:
            return self._repos[repo_id]

    def repos(self) -> list[Repo]:
        with self._lock:
            return list(self._repos.values())

    # -- observation -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestLog]:
        """A snapshot of every request seen so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def bytes_served(self, repo_id: str, filename: str) -> int:
        """Total file body bytes sent for that file, over every response."""
        with self._lock:
            return self._served.get((repo_id, filename), 0)

    def reset_faults(self) -> None:
        """Turn every fault off; bodies held by ``hold_after_bytes`` go on."""
        with self._lock:
            self.faults = Faults()
            self._failed = 0
            self._dropped = 0
        self.release()

    @property
    def held(self) -> int:
        """How many responses have stopped at ``faults.hold_after_bytes`` so far."""
        with self._lock:
            return self._held

    def wait_held(self, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until ``count`` responses in all have stopped at ``faults.hold_after_bytes``."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._held >= count, timeout=timeout):
                raise AssertionError(f"{self._held} of {count} responses reached the hold")

    def release(self) -> None:
        """Let every held body go on; later responses stop at the hold again while it is set."""
        with self._lock:
            gate, self._gate = self._gate, threading.Event()
        gate.set()

    # -- internals used by the handler -------------------------------------------------------

    def _log(self, entry: RequestLog) -> None:
        with self._lock:
            self._requests.append(entry)

    def _count(self, entry: RequestLog, n: int) -> None:
        with self._lock:
            entry.body_bytes_sent += n
            if entry.file is not None:
                self._served[entry.file] = self._served.get(entry.file, 0) + n

    def _take_failure(self) -> int | None:
        with self._lock:
            status, times = self.faults.fail_status, self.faults.fail_times
            if status is None or (times is not None and self._failed >= times):
                return None
            self._failed += 1
            return status

    def _hold(self, server: _Server) -> bool:
        """Block a response at the hold until `release()`; False when the server stops."""
        with self._changed:
            gate = self._gate
            self._held += 1
            self._changed.notify_all()
        gate.wait()
        return not server.stopping.is_set()

    def _take_drop(self) -> int | None:
        with self._lock:
            limit, times = self.faults.drop_after_bytes, self.faults.drop_times
            if limit is None or (times is not None and self._dropped >= times):
                return None
            self._dropped += 1
            return limit

    def _visible_repo(self, repo_id: str, authorized: bool) -> Repo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise _HubError(404, "Repository not found", "RepoNotFound")
        return repo


def _truthy(values: list[str] | None) -> bool:
    return values is not None and bool(values) and values[-1].lower() in ("1", "true", "yes")


def _int_param(values: list[str] | None, default: int) -> int:
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise _HubError(400, f"Invalid integer: {values[-1]!r}") from None


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _decode_cursor(values: list[str] | None) -> int:
    if not values:
        return 0
    raw = values[-1]
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return int(json.loads(decoded)["offset"])
    except (ValueError, KeyError, TypeError):
        raise _HubError(400, "Invalid cursor") from None


def _unsatisfiable(size: int) -> _HubError:
    return _HubError(
        416, "Requested Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"}
    )


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end_exclusive) of a single byte range; None serves the whole file."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # multi-range or other units: serve the whole file, as RFC 9110 allows
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise _unsatisfiable(size)
            return (max(size - suffix, 0), size)
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None  # malformed: ignored, like most servers do
    if last and end <= start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return (start, min(end, size))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
    server_version = "FakeHub/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silence the default stderr access log

    # -- entry points ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def _handle(self) -> None:
        split = urlsplit(self.path)
        self._entry = RequestLog(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        self._query = self._entry.query
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain any body so keep-alive stays in sync
        try:
            status = self.hub._take_failure()
            if status is not None:
                self._fail(status)
                return
            self._route([unquote(part) for part in split.path.split("/")[1:]])
        except _HubError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _authorized(self) -> bool:
        return self._token() in self.hub.allowed_tokens

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization")
        if auth and auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return None

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._entry.status = status
        self.hub._log(self._entry)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_bytes(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._start(status, {**headers, "Content-Length": str(len(body))})
        if self.command != "HEAD" and body:
            self.hub._count(self._entry, len(body))
            self.wfile.write(body)

    def _send_json(self, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send_bytes(200, body, {"Content-Type": "application/json", **(headers or {})})

    def _send_error(self, err: _HubError) -> None:
        headers = {"Content-Type": "application/json", **err.headers}
        if err.code is not None:
            headers["X-Error-Code"] = err.code
        headers["X-Error-Message"] = err.message
        self._send_bytes(err.status, json.dumps({"error": err.message}).encode(), headers)

    def _fail(self, status: int) -> None:
        headers: dict[str, str] = {}
        if self.hub.faults.retry_after is not None:
            headers["Retry-After"] = str(self.hub.faults.retry_after)
        self._send_error(_HubError(status, f"Injected failure ({status})", headers=headers))

    # -- routing ---------------------------------------------------------------------------------

    def _route(self, parts: list[str]) -> None:
        method = self.command
        if method in ("GET", "HEAD") and parts[:2] == ["api", "models"]:
            rest = parts[2:]
            if rest in ([], [""]):
                return self._list_models()
            if len(rest) == 2:
                return self._model_info("/".join(rest), "main")
            if len(rest) == 4 and rest[2] == "revision":
                return self._model_info("/".join(rest[:2]), rest[3])
            if len(rest) >= 4 and rest[2] == "tree":
                path = "/".join(rest[4:]).strip("/")
                return self._tree("/".join(rest[:2]), rest[3], path)
        if method in ("GET", "HEAD") and parts == ["api", "whoami-v2"]:
            return self._whoami()
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[0] == "_cdn":
            return self._cdn("/".join(parts[1:3]), parts[3], "/".join(parts[4:]))
        raise _HubError(404, "Sorry, we can't find the page you are looking for.")

    # -- API -------------------------------------------------------------------------------------

    def _list_models(self) -> None:
        q = self._query
        authorized = self._authorized()
        repos = [r for r in self.hub.repos() if authorized or not r.private]
        if search := (q.get("search") or [""])[-1].lower():
            repos = [r for r in repos if search in r.repo_id.lower()]
        if author := (q.get("author") or [""])[-1]:
            repos = [r for r in repos if r.author == author]
        for wanted in q.get("filter", []) + q.get("filter[]", []):
            repos = [r for r in repos if wanted in _model_tags(r)]
        if gated := q.get("gated"):
            want = _truthy(gated)
            repos = [r for r in repos if bool(r.gated) == want]
        if sort := (q.get("sort") or [""])[-1]:
            key = _SORT_ALIASES.get(sort, sort)
            if key not in _SORT_KEYS:
                raise _HubError(400, f"Invalid sort: {sort!r}")
            descending = (q.get("direction") or ["-1"])[-1] != "1"
            repos.sort(key=lambda r: r.repo_id)  # deterministic ties
            repos.sort(key=lambda r: _model_fields(r, r.head)[key], reverse=descending)
        limit = _int_param(q.get("limit"), 0)
        page_size = min(limit, self.hub.page_size) if limit > 0 else self.hub.page_size
        offset = _decode_cursor(q.get("cursor"))
        page = repos[offset : offset + page_size]
        expand = _expand_list(q)
        full = _truthy(q.get("full"))
        items = [_model_json(r, r.head, expand=expand, full=full, blobs=False) for r in page]
        headers = self._next_link(offset + page_size, len(repos))
        self._send_json(items, headers)

    def _next_link(self, next_offset: int, total: int) -> dict[str, str]:
        if next_offset >= total:
            return {}
        params = [(k, v) for k, values in self._query.items() if k != "cursor" for v in values]
        params.append(("cursor", _encode_cursor(next_offset)))
        url = f"{self.hub.url}{self._entry.path}?{urlencode(params)}"
        return {"Link": f'<{url}>; rel="next"'}

    def _model_info(self, repo_id: str, revision: str) -> None:
        repo = self.hub._visible_repo(repo_id, self._authorized())
        commit = _resolve_revision(repo, revision)
        expand = _expand_list(self._query)
        blobs = _truthy(self._query.get("blobs"))
        self._send_json(_model_json(repo, commit, expand=expand, full=True, blobs=blobs))

    def _tree(self, repo_id: str, revision: str, path: str) -> None:
        repo = self.hub._visible_repo(repo_id, self._authorized())
        commit = _resolve_revision(repo, revision)
        recursive = _truthy(self._query.get("recursive"))
        expand = _truthy(self._query.get("expand"))
        entries = _tree_entries(commit, path, recursive)
        if entries is None:
            raise _HubError(
                404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.sha}
            )
        offset = _decode_cursor(self._query.get("cursor"))
        page = entries[offset : offset + self.hub.page_size]
        items = [_tree_json(commit, entry, expand) for entry in page]
        self._send_json(items, self._next_link(offset + self.hub.page_size, len(entries)))

    def _whoami(self) -> None:
        token = self._token()
        if token is None or token not in self.hub.allowed_tokens:
            raise _HubError(401, "Invalid credentials in Authorization header")
        self._send_json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": "fake-user",
                "fullname": "Fake User",
                "isPro": False,
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "t", "role": "read"},
                },
            }
        )

    # -- files -----------------------------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self.hub._visible_repo(repo_id, self._authorized())
        if repo.gated:
            self._check_gate(repo)
        commit = _resolve_revision(repo, revision)
        hub_file = commit.files.get(filename)
        if hub_file is None:
            raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        base = {"X-Repo-Commit": commit.sha}
        if self.hub.lfs_redirect and hub_file.is_lfs:
            location = (
                f"{self.hub.url}/_cdn/{quote(repo_id)}/{commit.sha}/{quote(filename)}"
                f"?X-Amz-Signature={hub_file.sha256}"
            )
            self._send_bytes(
                302,
                b"",
                {
                    **base,
                    "Location": location,
                    "ETag": hub_file.etag,
                    "X-Linked-Etag": hub_file.etag,
                    "X-Linked-Size": str(hub_file.size),
                },
            )
            return
        self._serve_file(repo_id, hub_file, base)

    def _check_gate(self, repo: Repo) -> None:
        token = self._token()
        if token is None:
            raise _HubError(
                401,
                f"Access to model {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
                "GatedRepo",
            )
        if token not in self.hub.allowed_tokens:
            raise _HubError(
                403,
                f"Access to model {repo.repo_id} is restricted and you are not in the "
                "authorized list.",
                "GatedRepo",
            )

    def _cdn(self, repo_id: str, commit_sha: str, filename: str) -> None:
        # Signed CDN URLs carry no auth, so neither private nor gated checks apply here.
        with self.hub._lock:
            repo = self.hub._repos.get(repo_id)
        commit = repo.resolve(commit_sha) if repo is not None else None
        hub_file = commit.files.get(filename) if commit is not None else None
        if commit is None or hub_file is None:
            raise _HubError(404, "NoSuchKey")
        self._serve_file(repo_id, hub_file, {"X-Repo-Commit": commit.sha})

    def _serve_file(self, repo_id: str, hub_file: HubFile, base: dict[str, str]) -> None:
        size = hub_file.size
        headers = {
            **base,
            "ETag": hub_file.etag,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        faults = self.hub.faults
        byte_range = None if faults.ignore_range else _parse_range(self.headers.get("Range"), size)
        if byte_range is not None:
            start, end = byte_range
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        else:
            start, end, status = 0, size, 200
        overrun = faults.overrun_bytes if self.command == "GET" else None
        if overrun is None:
            headers["Content-Length"] = str(end - start)
        else:
            headers["Transfer-Encoding"] = "chunked"
            headers["Connection"] = "close"  # the body ends when the connection does
        self._entry.file = (repo_id, hub_file.path)
        self._start(status, headers)
        if self.command == "HEAD":
            return
        if overrun is None:
            self._stream(hub_file.data, start, end)
        else:
            self._stream_overrun(hub_file.data[start:end], overrun)

    def _stream_overrun(self, body: bytes, extra: int) -> None:
        """The body, then ``extra`` more bytes (forever when -1), as HTTP chunks."""
        self.close_connection = True
        filler = b"\0" * CHUNK_SIZE
        pieces = [body[i : i + CHUNK_SIZE] for i in range(0, len(body), CHUNK_SIZE)]
        try:
            for piece in pieces:
                self._send_counted(b"%x\r\n%s\r\n" % (len(piece), piece), len(piece))
            left = extra
            while left != 0 and not self.server.stopping.is_set():
                n = CHUNK_SIZE if left < 0 else min(CHUNK_SIZE, left)
                self._send_counted(b"%x\r\n%s\r\n" % (n, filler[:n]), n)
                left = left - n if left > 0 else left
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    def _send_counted(self, data: bytes, body_bytes: int) -> None:
        self.hub._count(self._entry, body_bytes)
        try:
            self.wfile.write(data)
        except OSError:
            self.hub._count(self._entry, -body_bytes)
            raise

    def _stream(self, data: bytes, start: int, end: int) -> None:
        faults = self.hub.faults
        drop_after = self.hub._take_drop() if end > start else None
        corrupt_at = faults.corrupt_byte_at
        hold_at = faults.hold_after_bytes
        sent = 0
        pos = start
        while pos < end:
            if hold_at is not None and sent >= hold_at:
                hold_at = None  # once per response
                if not self.hub._hold(self.server):
                    break
            n = min(CHUNK_SIZE, end - pos)
            if hold_at is not None:
                n = min(n, hold_at - sent)
            if drop_after is not None:
                n = min(n, drop_after - sent)
                if n <= 0:
                    break
            chunk = data[pos : pos + n]
            if corrupt_at is not None and pos <= corrupt_at < pos + n:
                i = corrupt_at - pos
                chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
            # Count before writing so a client that has the bytes also sees them counted.
            self.hub._count(self._entry, n)
            try:
                self.wfile.write(chunk)
            except OSError:
                self.hub._count(self._entry, -n)
                self.close_connection = True
                return
            sent += n
            pos += n
            delay = faults.delay_per_chunk
            if delay and pos < end and self.server.stopping.wait(delay):
                break  # stop() was called: give up on the rest of the body
        if pos < end:
            # Injected drop: end the connection with the body short of its Content-Length.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _resolve_revision(repo: Repo, revision: str) -> Commit:
    commit = repo.resolve(revision)
    if commit is None:
        raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
    return commit


def _model_tags(repo: Repo) -> list[str]:
    extra = [t for t in (repo.library_name, repo.pipeline_tag) if t]
    return repo.tags + extra


def _expand_list(query: dict[str, list[str]]) -> list[str] | None:
    values = query.get("expand", []) + query.get("expand[]", [])
    return values or None


def _object_id(repo_id: str) -> str:
    return _sha1(repo_id.encode())[:24]


def _model_fields(repo: Repo, commit: Commit) -> dict[str, Any]:
    return {
        "_id": _object_id(repo.repo_id),
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.author,
        "sha": commit.sha,
        "lastModified": commit.date,
        "createdAt": repo.created_at,
        "private": repo.private,
        "gated": repo.gated,
        "disabled": False,
        "downloads": repo.downloads,
        "downloadsAllTime": repo.downloads,
        "likes": repo.likes,
        "trendingScore": repo.trending_score,
        "tags": list(repo.tags),
        "library_name": repo.library_name,
        "pipeline_tag": repo.pipeline_tag,
        "usedStorage": sum(f.size for f in commit.files.values()),
        "gguf": repo.gguf,
    }


def _siblings(commit: Commit, blobs: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(commit.files):
        hub_file = commit.files[path]
        item: dict[str, Any] = {"rfilename": path}
        if blobs:
            item["blobId"] = hub_file.blob_id
            item["size"] = hub_file.size
            if (lfs := hub_file.lfs_json("sha256")) is not None:
                item["lfs"] = lfs
        out.append(item)
    return out


def _model_json(
    repo: Repo,
    commit: Commit,
    *,
    expand: list[str] | None,
    full: bool,
    blobs: bool,
) -> dict[str, Any]:
    fields = _model_fields(repo, commit)
    if expand is not None:
        # With expand the Hub returns exactly the asked properties (plus the ids).
        wanted = ["_id", "id", *expand]
    elif full:
        wanted = [*fields, "siblings"]
    else:
        wanted = list(_LISTING_FIELDS)
    out: dict[str, Any] = {}
    for name in wanted:
        if name == "siblings":
            out[name] = _siblings(commit, blobs)
        elif name in fields and fields[name] is not None:
            out[name] = fields[name]
    return out


@dataclass(frozen=True)
class _TreeEntry:
    path: str
    file: HubFile | None  # None for a directory


def _tree_entries(commit: Commit, path: str, recursive: bool) -> list[_TreeEntry] | None:
    prefix = f"{path}/" if path else ""
    dirs: set[str] = set()
    files: list[_TreeEntry] = []
    for file_path, hub_file in commit.files.items():
        if not file_path.startswith(prefix):
            continue
        rel_parts = file_path[len(prefix) :].split("/")
        for depth in range(1, len(rel_parts)):
            if not recursive and depth > 1:
                break
            dirs.add(prefix + "/".join(rel_parts[:depth]))
        if recursive or len(rel_parts) == 1:
            files.append(_TreeEntry(file_path, hub_file))
    if path and not files and not dirs:
        return None  # unknown folder (or a file path, which the Hub does not list either)
    entries = [_TreeEntry(d, None) for d in dirs] + files
    return sorted(entries, key=lambda e: (e.file is not None, e.path))


def _tree_json(commit: Commit, entry: _TreeEntry, expand: bool) -> dict[str, Any]:
    if entry.file is None:
        item: dict[str, Any] = {
            "type": "directory",
            "oid": _sha1(f"tree\0{commit.sha}\0{entry.path}".encode()),
            "size": 0,
            "path": entry.path,
        }
    else:
        item = {
            "type": "file",
            "oid": entry.file.blob_id,
            "size": entry.file.size,
            "path": entry.path,
        }
        if (lfs := entry.file.lfs_json("oid")) is not None:
            item["lfs"] = lfs
    if expand:
        item["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
    return item


def make_payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes so that offset mix-ups show up in tests."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


__all__ = [
    "Commit",
    "FakeHub",
    "Faults",
    "HubFile",
    "Repo",
    "RequestLog",
    "is_lfs_path",
    "make_payload",
]
