"""The fake Hub must satisfy the real ``huggingface_hub`` client, or tests built on it lie."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.fakehub import CHUNK_SIZE, FakeHub, make_payload

pytestmark = pytest.mark.integration

GGUF = "model.Q4_K_M.gguf"
BIG = make_payload(3 * CHUNK_SIZE + 123, seed=1)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub(page_size=10)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One client for the module: building an httpx client (SSL context) costs ~50 ms.
    with httpx.Client() as client:
        yield client


@pytest.fixture
def api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=False)


@pytest.fixture
def big_repo(hub: FakeHub) -> str:
    hub.add_repo(
        "acme/big-GGUF",
        {GGUF: BIG, "README.md": b"# big\n", "sub/extra/notes.txt": b"notes"},
        downloads=5,
    )
    return "acme/big-GGUF"


def _file_url(hub: FakeHub, repo_id: str, filename: str, revision: str = "main") -> str:
    return f"{hub.url}/{repo_id}/resolve/{revision}/{filename}"


def _add_many(hub: FakeHub, count: int = 25) -> None:
    for i in range(count):
        gguf = i % 5 != 0  # every fifth repo ships safetensors only
        name = f"org{i % 3}/llama-{i:02d}" + ("-GGUF" if gguf else "")
        files = {f"w-{i}.gguf": b"GGUF" + bytes([i])} if gguf else {"w.safetensors": b"st"}
        hub.add_repo(
            name,
            files,
            downloads=1000 - i * 7,
            likes=i,
            trending_score=(i * 37) % 25,
            last_modified=f"2026-01-{i + 1:02d}T00:00:00.000Z",
        )


def _list_requests(hub: FakeHub) -> list[str]:
    return [r.path for r in hub.requests if r.path == "/api/models"]


# -- listing ----------------------------------------------------------------------------------


def test_list_models_pages_through_link_header(hub: FakeHub, api: HfApi) -> None:
    _add_many(hub)
    models = list(api.list_models(filter="gguf", sort="downloads"))
    ids = [m.id for m in models]
    assert len(ids) == 20  # 25 minus the five safetensors-only repos
    assert all(i.endswith("-GGUF") for i in ids)
    downloads = [m.downloads or 0 for m in models]
    assert downloads == sorted(downloads, reverse=True)
    listing = [r for r in hub.requests if r.path == "/api/models"]
    assert len(listing) == 2  # page_size=10
    assert "cursor" not in listing[0].query
    assert "cursor" in listing[1].query
    assert listing[1].query["filter"] == ["gguf"]  # the next link keeps the query


def test_list_models_limit_stops_early(hub: FakeHub, api: HfApi) -> None:
    _add_many(hub)
    models = list(api.list_models(sort="likes", limit=12))
    assert [m.likes for m in models] == list(range(24, 12, -1))
    assert len(_list_requests(hub)) == 2  # 10 + 2 of the second page, no third request


def test_list_models_all_pages_without_filter(hub: FakeHub, api: HfApi) -> None:
    _add_many(hub)
    ids = [m.id for m in api.list_models()]
    assert len(ids) == len(set(ids)) == 25
    assert len(_list_requests(hub)) == 3


def test_list_models_search_author_and_sorts(hub: FakeHub, api: HfApi) -> None:
    _add_many(hub)
    found = [m.id for m in api.list_models(search="LLAMA-1", filter="gguf")]
    assert set(found) == {f"org{i % 3}/llama-{i:02d}-GGUF" for i in range(11, 20) if i % 5}
    by_author = {m.id.split("/")[0] for m in api.list_models(author="org1")}
    assert by_author == {"org1"}
    trending = [m.trending_score or 0 for m in api.list_models(sort="trending_score")]
    assert trending == sorted(trending, reverse=True)
    newest = next(iter(api.list_models(sort="last_modified", limit=1)))
    assert newest.id == "org0/llama-24-GGUF"
    assert newest.last_modified is not None and newest.last_modified.day == 25


def test_list_models_expand_returns_only_those_fields(hub: FakeHub, api: HfApi) -> None:
    hub.add_repo("acme/tiny-GGUF", {GGUF: b"GGUF"}, downloads=3, likes=4, gated="manual")
    hub.add_repo("acme/plain", {"config.json": b"{}"})
    (model,) = api.list_models(filter="gguf", expand=["gguf", "downloads", "gated"])
    assert model.id == "acme/tiny-GGUF"
    assert model.downloads == 3
    assert model.gated == "manual"
    assert model.gguf is not None and model.gguf["architecture"] == "llama"
    assert model.likes is None  # not asked for
    (plain,) = api.list_models(search="plain", full=True)
    assert plain.gated is False
    assert plain.sha == hub.repo("acme/plain").sha
    assert [s.rfilename for s in plain.siblings or []] == ["config.json"]


def test_private_repo_hidden_without_allowed_token(hub: FakeHub) -> None:
    hub.add_repo("acme/secret", {"a.txt": b"a"}, private=True)
    hub.allowed_tokens.add("hf_good")
    anon = HfApi(endpoint=hub.url, token=False)
    assert list(anon.list_models()) == []
    with pytest.raises(RepositoryNotFoundError):
        anon.model_info("acme/secret")
    authed = HfApi(endpoint=hub.url, token="hf_good")
    assert [m.id for m in authed.list_models()] == ["acme/secret"]
    assert authed.model_info("acme/secret").private is True


# -- repo metadata ----------------------------------------------------------------------------


def test_list_repo_tree_recursive_with_lfs(hub: FakeHub, api: HfApi, big_repo: str) -> None:
    entries = {e.path: e for e in api.list_repo_tree(big_repo, recursive=True)}
    assert set(entries) == {GGUF, "README.md", "sub", "sub/extra", "sub/extra/notes.txt"}
    gguf = entries[GGUF]
    assert getattr(gguf, "size", None) == len(BIG)
    lfs = getattr(gguf, "lfs", None)
    assert lfs is not None
    assert lfs.sha256 == hashlib.sha256(BIG).hexdigest()
    assert lfs.size == len(BIG)
    assert getattr(entries["README.md"], "lfs", "missing") is None
    top = {e.path for e in api.list_repo_tree(big_repo)}
    assert top == {GGUF, "README.md", "sub"}
    nested = [e.path for e in api.list_repo_tree(big_repo, path_in_repo="sub/extra")]
    assert nested == ["sub/extra/notes.txt"]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(big_repo, path_in_repo="nope"))


def test_model_info_files_metadata(hub: FakeHub, api: HfApi, big_repo: str) -> None:
    info = api.model_info(big_repo, files_metadata=True)
    repo = hub.repo(big_repo)
    assert info.id == big_repo
    assert info.sha == repo.sha and len(repo.sha) == 40
    assert info.gated is False
    assert info.tags is not None and "gguf" in info.tags
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert siblings[GGUF].size == len(BIG)
    gguf_lfs = siblings[GGUF].lfs
    assert gguf_lfs is not None
    assert gguf_lfs.sha256 == hashlib.sha256(BIG).hexdigest()
    assert siblings["README.md"].lfs is None
    assert siblings["README.md"].size == len(b"# big\n")
    # Without blobs=true the Hub only names the files.
    bare = api.model_info(big_repo)
    assert {s.size for s in bare.siblings or []} == {None}
    pinned = api.model_info(big_repo, revision=repo.sha)
    assert pinned.sha == repo.sha


def test_new_commit_moves_main_and_old_sha_still_resolves(
    hub: FakeHub, api: HfApi, big_repo: str, tmp_path: Path
) -> None:
    old = hub.repo(big_repo).sha
    new = hub.set_files(big_repo, {"README.md": b"v2", "sub/extra/notes.txt": None}).sha
    assert new != old
    assert api.model_info(big_repo).sha == new
    old_files = {s.rfilename for s in api.model_info(big_repo, revision=old).siblings or []}
    assert "sub/extra/notes.txt" in old_files
    path = hf_hub_download(
        big_repo, "README.md", revision=old, endpoint=hub.url, token=False, cache_dir=tmp_path
    )
    assert Path(path).read_bytes() == b"# big\n"


# -- errors -------------------------------------------------------------------------------------


def test_unknown_repo_file_and_revision(
    hub: FakeHub, api: HfApi, big_repo: str, tmp_path: Path
) -> None:
    with pytest.raises(RepositoryNotFoundError) as info_err:
        api.model_info("nobody/nothing")
    assert not isinstance(info_err.value, GatedRepoError)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(
            "nobody/nothing", "x.gguf", endpoint=hub.url, token=False, cache_dir=tmp_path
        )
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(big_repo, "missing.gguf", endpoint=hub.url, token=False, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        api.model_info(big_repo, revision="f" * 40)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            big_repo, GGUF, revision="nope", endpoint=hub.url, token=False, cache_dir=tmp_path
        )


def test_gated_repo_needs_allowed_token(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_repo("meta/gated-GGUF", {GGUF: b"GGUF-gated"}, gated=True)
    hub.allowed_tokens.add("hf_ok")

    def fetch(token: str | bool) -> str:
        return hf_hub_download(
            "meta/gated-GGUF", GGUF, endpoint=hub.url, token=token, cache_dir=tmp_path
        )

    with pytest.raises(GatedRepoError):
        fetch(False)
    with pytest.raises(GatedRepoError):
        fetch("hf_not_approved")
    assert [r.status for r in hub.requests] == [401, 403]
    assert Path(fetch("hf_ok")).read_bytes() == b"GGUF-gated"
    # Metadata stays public on the Hub; only the files are gated.
    assert HfApi(endpoint=hub.url, token=False).model_info("meta/gated-GGUF").gated == "auto"


def test_fail_status_and_recovery(
    hub: FakeHub, http: httpx.Client, api: HfApi, big_repo: str
) -> None:
    hub.faults.fail_status = 503
    hub.faults.fail_times = 1
    hub.faults.retry_after = 7
    with pytest.raises(HfHubHTTPError) as err:
        api.model_info(big_repo)
    assert err.value.response.status_code == 503
    assert err.value.response.headers["Retry-After"] == "7"
    assert api.model_info(big_repo).id == big_repo  # recovered after one failure
    hub.reset_faults()
    hub.faults.fail_status = 500
    assert http.get(_file_url(hub, big_repo, GGUF)).status_code == 500
    assert http.get(f"{hub.url}/api/models").status_code == 500


# -- file transfer ------------------------------------------------------------------------------


def test_hf_hub_download_into_cache(hub: FakeHub, big_repo: str, tmp_path: Path) -> None:
    path = hf_hub_download(big_repo, GGUF, endpoint=hub.url, token=False, cache_dir=tmp_path)
    assert Path(path).read_bytes() == BIG
    assert hub.repo(big_repo).sha in path  # cached under snapshots/<commit>
    assert hub.bytes_served(big_repo, GGUF) == len(BIG)
    methods = [(r.method, r.status) for r in hub.requests]
    assert methods == [("HEAD", 200), ("GET", 200)]
    nested = hf_hub_download(
        big_repo, "sub/extra/notes.txt", endpoint=hub.url, token=False, cache_dir=tmp_path
    )
    assert Path(nested).read_bytes() == b"notes"


def test_resolve_headers(hub: FakeHub, http: httpx.Client, big_repo: str) -> None:
    repo = hub.repo(big_repo)
    head = http.head(_file_url(hub, big_repo, GGUF))
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == repo.sha
    assert head.headers["ETag"] == f'"{hashlib.sha256(BIG).hexdigest()}"'
    assert head.headers["Content-Length"] == str(len(BIG))
    assert head.headers["Accept-Ranges"] == "bytes"
    by_sha = http.head(_file_url(hub, big_repo, GGUF, revision=repo.sha))
    assert by_sha.status_code == 200
    small = http.head(_file_url(hub, big_repo, "README.md"))
    assert small.headers["ETag"] == f'"{repo.head.files["README.md"].blob_id}"'
    missing = http.head(_file_url(hub, big_repo, "nope.bin"))
    assert missing.status_code == 404
    assert missing.headers["X-Error-Code"] == "EntryNotFound"


def test_range_requests(hub: FakeHub, http: httpx.Client, big_repo: str) -> None:
    url = _file_url(hub, big_repo, GGUF)
    tail = http.get(url, headers={"Range": "bytes=100000-"})
    assert tail.status_code == 206
    assert tail.content == BIG[100000:]
    assert tail.headers["Content-Range"] == f"bytes 100000-{len(BIG) - 1}/{len(BIG)}"
    mid = http.get(url, headers={"Range": "bytes=10-19"})
    assert (mid.status_code, mid.content) == (206, BIG[10:20])
    suffix = http.get(url, headers={"Range": "bytes=-5"})
    assert suffix.content == BIG[-5:]
    past = http.get(url, headers={"Range": f"bytes={len(BIG)}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{len(BIG)}"
    ranges = [r.range for r in hub.requests]
    assert ranges == ["bytes=100000-", "bytes=10-19", "bytes=-5", f"bytes={len(BIG)}-"]
    assert [r.body_bytes_sent for r in hub.requests[:2]] == [len(BIG) - 100000, 10]


def test_drop_after_bytes_cuts_the_body(hub: FakeHub, http: httpx.Client, big_repo: str) -> None:
    hub.faults.drop_after_bytes = CHUNK_SIZE + 1000
    received = bytearray()
    url = _file_url(hub, big_repo, GGUF)
    with pytest.raises(httpx.RemoteProtocolError), http.stream("GET", url) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
    assert bytes(received) == BIG[: CHUNK_SIZE + 1000]
    assert hub.bytes_served(big_repo, GGUF) == CHUNK_SIZE + 1000
    # A resume with Range picks up exactly where the drop happened.
    hub.reset_faults()
    rest = http.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert bytes(received) + rest.content == BIG
    assert hub.bytes_served(big_repo, GGUF) == len(BIG)


def test_drop_times_limits_drops(hub: FakeHub, http: httpx.Client, big_repo: str) -> None:
    hub.faults.drop_after_bytes = 10
    hub.faults.drop_times = 1
    url = _file_url(hub, big_repo, GGUF)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    assert http.get(url).content == BIG


def test_corrupt_byte_at_flips_exactly_one_byte(
    hub: FakeHub, http: httpx.Client, big_repo: str
) -> None:
    offset = CHUNK_SIZE + 5  # inside the second chunk
    hub.faults.corrupt_byte_at = offset
    body = http.get(_file_url(hub, big_repo, GGUF)).content
    diffs = [i for i, (a, b) in enumerate(zip(body, BIG, strict=True)) if a != b]
    assert diffs == [offset]
    ranged = http.get(_file_url(hub, big_repo, GGUF), headers={"Range": f"bytes={offset - 1}-"})
    assert ranged.content[1] != BIG[offset]
    assert ranged.content[0] == BIG[offset - 1] and ranged.content[2:] == BIG[offset + 1 :]


def test_ignore_range_answers_200_with_the_whole_body(
    hub: FakeHub, http: httpx.Client, big_repo: str
) -> None:
    hub.faults.ignore_range = True
    answer = http.get(_file_url(hub, big_repo, GGUF), headers={"Range": "bytes=10-19"})
    assert (answer.status_code, answer.content) == (200, BIG)
    assert "Content-Range" not in answer.headers
    assert hub.requests[-1].range == "bytes=10-19"
    hub.reset_faults()
    assert (
        http.get(_file_url(hub, big_repo, GGUF), headers={"Range": "bytes=10-19"}).content
        == (BIG[10:20])
    )


def test_overrun_bytes_sends_more_than_the_file(hub: FakeHub, big_repo: str) -> None:
    # A client of its own: the server hangs up after an overrun without saying so first,
    # and a kept-alive connection would be reused after that.
    hub.faults.overrun_bytes = 1000
    url = _file_url(hub, big_repo, GGUF)
    with httpx.Client() as http:
        answer = http.get(url, headers={"Range": "bytes=0-99"})
    assert answer.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in answer.headers
    assert answer.content == BIG[:100] + bytes(1000)
    # -1 never ends: a client must stop reading on its own.
    hub.faults.overrun_bytes = -1
    received = 0
    with httpx.Client() as http, http.stream("GET", url) as endless:
        for chunk in endless.iter_raw():
            received += len(chunk)
            if received > 4 * len(BIG):
                break
    assert received > 4 * len(BIG)


def test_delay_per_chunk_slows_the_body(hub: FakeHub, http: httpx.Client, big_repo: str) -> None:
    hub.faults.delay_per_chunk = 0.05
    started = time.monotonic()
    body = http.get(_file_url(hub, big_repo, GGUF)).content
    assert body == BIG
    assert time.monotonic() - started >= 0.15  # three pauses between four chunks


def test_lfs_redirect_mode(http: httpx.Client, tmp_path: Path) -> None:
    with FakeHub(lfs_redirect=True) as hub:
        hub.add_repo("acme/cdn-GGUF", {GGUF: BIG, "README.md": b"r"})
        url = _file_url(hub, "acme/cdn-GGUF", GGUF)
        first = http.head(url)
        assert first.status_code == 302
        assert first.headers["X-Linked-Size"] == str(len(BIG))
        assert "/_cdn/" in first.headers["Location"]
        ranged = http.get(url, headers={"Range": "bytes=7-"}, follow_redirects=True)
        assert (ranged.status_code, ranged.content) == (206, BIG[7:])
        assert http.head(_file_url(hub, "acme/cdn-GGUF", "README.md")).status_code == 200
        path = hf_hub_download(
            "acme/cdn-GGUF", GGUF, endpoint=hub.url, token=False, cache_dir=tmp_path
        )
        assert Path(path).read_bytes() == BIG


def test_whoami(hub: FakeHub) -> None:
    hub.allowed_tokens.add("hf_me")
    assert HfApi(endpoint=hub.url, token="hf_me").whoami()["name"] == "fake-user"
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=hub.url, token="hf_other").whoami()
