"""`stack.hub.client` on the real `huggingface_hub` client against the fake Hub."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx2
import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import GatedRepoError

from stack.errors import LlmTuiError
from stack.hub.client import Hub, hub_from_settings
from stack.hub.errors import HubError, http_error, map_hub_exception, may_send_token
from stack.hub.files import RepoFiles, group_gguf_files, parse_quant
from stack.hub.remote_header import FIRST_PREFIX, fetch_header, fetch_repo_shape
from stack.models.gguf import read_header
from stack.models.header import GgufError
from stack.settings import Settings, load_settings
from tests.support.fakehub import FakeHub, make_payload
from tests.support.gguf_factory import STRING, U64, craft_header, write_split_set, write_tiny_model

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[FakeHub]:
    with FakeHub(page_size=10) as hub:
        yield hub


@pytest.fixture
def hub(fake: FakeHub) -> Hub:
    return Hub(endpoint=fake.url)


def _add_many(fake: FakeHub, count: int = 25) -> None:
    for i in range(count):
        gguf = i % 5 != 0  # every fifth repo ships safetensors only
        files = {f"m-{i}-Q4_K_M.gguf": b"GGUF" + bytes([i])} if gguf else {"w.safetensors": b"s"}
        fake.add_repo(
            f"org{i % 3}/llama-{i:02d}" + ("-GGUF" if gguf else ""),
            files,
            downloads=1000 - i * 7,
            likes=(i * 13) % 25,
            trending_score=(i * 37) % 25,
            last_modified=f"2026-01-{i + 1:02d}T00:00:00.000Z",
        )


# -- search -----------------------------------------------------------------------------------


def test_search_sorts_filters_gguf_and_reads_the_gguf_expand(fake: FakeHub, hub: Hub) -> None:
    _add_many(fake)
    fake.add_repo(
        "meta/big-GGUF",
        {"big-Q8_0.gguf": b"GGUF"},
        downloads=1,
        gated="manual",
        gguf={"total": 8_030_261_248, "architecture": "llama", "context_length": 131072},
    )
    by_downloads = hub.search_models("llama", sort="downloads", limit=5)
    assert [r.repo_id for r in by_downloads][:2] == ["org1/llama-01-GGUF", "org2/llama-02-GGUF"]
    assert [r.downloads for r in by_downloads] == sorted(
        (r.downloads for r in by_downloads), reverse=True
    )
    assert all(r.repo_id.endswith("-GGUF") for r in hub.search_models("", limit=100))
    for sort, key in (("likes", "likes"), ("trending", "trending_score")):
        found = hub.search_models("", sort=sort, limit=30)  # type: ignore[arg-type]
        values = [getattr(r, key) for r in found]
        assert values == sorted(values, reverse=True), sort
    (newest,) = hub.search_models("", sort="recent", limit=1)
    assert newest.repo_id == "org0/llama-24-GGUF"
    assert newest.last_modified is not None and newest.last_modified.day == 25

    (big,) = hub.search_models("big")
    assert big.gated is True
    assert big.parameters == 8_030_261_248
    assert (big.architecture, big.context_length) == ("llama", 131072)
    listing = [r for r in fake.requests if r.path == "/api/models"][-1]
    assert listing.query["filter"] == ["gguf"]
    assert {"gguf", "downloads", "likes", "gated", "lastModified"} <= set(listing.query["expand"])


def test_search_pager_walks_every_page_once(fake: FakeHub, hub: Hub) -> None:
    _add_many(fake)  # 20 GGUF repos; the fake serves 10 per HTTP page
    pager = hub.search("llama", sort="downloads", page_size=7)
    pages = []
    while pager.has_more:
        pages.append([r.repo_id for r in pager.next_page()])
    assert [len(p) for p in pages] == [7, 7, 6]
    ids = [i for page in pages for i in page]
    assert len(ids) == len(set(ids)) == 20
    assert pager.next_page() == []
    # The stateless form pages by offset and agrees with the pager.
    assert [r.repo_id for r in hub.search_models("llama", limit=7, offset=7)] == pages[1]


def test_search_rejects_an_unknown_sort(hub: Hub) -> None:
    with pytest.raises(ValueError, match="sort must be one of"):
        hub.search_models("x", sort="stars")  # type: ignore[arg-type]


# -- files ------------------------------------------------------------------------------------


def test_list_gguf_files_groups_quants_splits_and_projectors(
    fake: FakeHub, hub: Hub, tmp_path: Path
) -> None:
    tiny = write_tiny_model(tmp_path / "tiny.gguf").read_bytes()
    shards = [p.read_bytes() for p in write_split_set(tmp_path, "big-UD-Q4_K_XL", shards=3)]
    files = {
        "Model-Q4_K_M.gguf": tiny,
        "model.q8_0.gguf": make_payload(1000, 1),
        "Model-IQ4_XS.gguf": make_payload(900, 2),
        "Model-BF16.gguf": make_payload(800, 3),
        "mmproj-Model-F16.gguf": make_payload(700, 4),
        "weird-name.gguf": make_payload(600, 5),
        "README.md": b"# model\n",
        **{f"UD-Q4_K_XL/big-UD-Q4_K_XL-0000{i}-of-00003.gguf": s for i, s in enumerate(shards, 1)},
    }
    fake.add_repo("acme/Model-GGUF", files)

    listing = hub.list_gguf_files("acme/Model-GGUF")

    assert isinstance(listing, RepoFiles)
    assert listing.commit == fake.repo("acme/Model-GGUF").sha
    assert listing.gated is False
    groups = listing.by_quant()
    assert set(groups) == {"Q4_K_M", "Q8_0", "IQ4_XS", "BF16", "UD-Q4_K_XL", "unknown"}
    (q4,) = groups["Q4_K_M"]
    assert q4.size == len(tiny)
    assert q4.first_file.sha256 == hashlib.sha256(tiny).hexdigest()
    (split,) = groups["UD-Q4_K_XL"]
    assert split.is_split and split.complete and split.shards == 3
    assert split.name == "big-UD-Q4_K_XL"
    assert [f.path for f in split.files] == [
        f"UD-Q4_K_XL/big-UD-Q4_K_XL-0000{i}-of-00003.gguf" for i in (1, 2, 3)
    ]
    assert split.size == sum(len(s) for s in shards)
    assert [f.sha256 for f in split.files] == [hashlib.sha256(s).hexdigest() for s in shards]
    (projector,) = listing.mmproj
    assert projector.mmproj and projector.quant == "F16"
    assert all(not e.mmproj for e in listing.models)
    assert all(e.files[0].path.endswith(".gguf") for e in listing.entries)


def test_list_gguf_files_at_an_older_commit(fake: FakeHub, hub: Hub) -> None:
    fake.add_repo("acme/m-GGUF", {"m-Q4_K_M.gguf": b"old"})
    old = fake.repo("acme/m-GGUF").sha
    fake.set_files("acme/m-GGUF", {"m-Q4_K_M.gguf": b"newer", "m-Q8_0.gguf": b"q8"})
    assert len(hub.list_gguf_files("acme/m-GGUF").entries) == 2
    pinned = hub.list_gguf_files("acme/m-GGUF", revision=old)
    assert pinned.commit == old
    assert [e.first_file.size for e in pinned.entries] == [3]


def test_split_set_missing_a_shard_is_one_incomplete_entry() -> None:
    from stack.hub.files import RemoteFile

    entries = group_gguf_files(
        [
            RemoteFile("x-Q4_K_M-00001-of-00003.gguf", 10),
            RemoteFile("x-Q4_K_M-00003-of-00003.gguf", 10),
            RemoteFile("other/x-Q4_K_M-00001-of-00002.gguf", 5),
            RemoteFile("notes.txt", 1),
        ]
    )
    assert [(e.name, len(e.files), e.shards, e.complete) for e in entries] == [
        ("x-Q4_K_M", 2, 3, False),
        ("x-Q4_K_M", 1, 2, False),
    ]


@pytest.mark.parametrize(
    ("path", "quant"),
    [
        ("Llama-3.2-3B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("model.q8_0.gguf", "Q8_0"),
        ("Qwen2.5-7B-Instruct-IQ4_XS.gguf", "IQ4_XS"),
        ("gemma-3-27b-it-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
        ("Q4_K_M/model-00001-of-00002.gguf", "Q4_K_M"),
        ("phi-4-iq3_xxs.gguf", "IQ3_XXS"),
        ("x-F16.gguf", "F16"),
        ("x-bf16.gguf", "BF16"),
        ("m-Q4_0_4_4.gguf", "Q4_0_4_4"),
        ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
        ("Qwen3-8B.gguf", "unknown"),
    ],
)
def test_parse_quant(path: str, quant: str) -> None:
    assert parse_quant(path) == quant


# -- errors -----------------------------------------------------------------------------------


def test_unknown_repo_and_revision_say_so(fake: FakeHub, hub: Hub) -> None:
    fake.add_repo("acme/m-GGUF", {"m.gguf": b"GGUF"})
    with pytest.raises(HubError) as missing:
        hub.list_gguf_files("nobody/nothing")
    assert "repository nobody/nothing was not found" in missing.value.message
    assert missing.value.fix is not None and "HF_TOKEN" in missing.value.fix
    with pytest.raises(HubError) as revision:
        hub.list_gguf_files("acme/m-GGUF", revision="f" * 40)
    assert f"revision {'f' * 40} of acme/m-GGUF was not found" in revision.value.message


def test_gated_repo_is_flagged_and_its_error_explains_the_license(
    fake: FakeHub, hub: Hub, tmp_path: Path
) -> None:
    fake.add_repo("meta/gated-GGUF", {"g-Q4_K_M.gguf": b"GGUF"}, gated=True)
    assert hub.list_gguf_files("meta/gated-GGUF").gated is True
    with pytest.raises(GatedRepoError) as raised:
        hf_hub_download(
            "meta/gated-GGUF", "g-Q4_K_M.gguf", endpoint=fake.url, token=False, cache_dir=tmp_path
        )
    error = hub.error(raised.value, repo_id="meta/gated-GGUF")
    assert error.message == (
        "meta/gated-GGUF is gated: accept its license on the website "
        f"({fake.url}/meta/gated-GGUF) and set HF_TOKEN"
    )
    with_token = Hub(endpoint=fake.url, token="hf_not_approved")
    with pytest.raises(GatedRepoError) as refused:
        hf_hub_download(
            "meta/gated-GGUF",
            "g-Q4_K_M.gguf",
            endpoint=fake.url,
            token="hf_not_approved",
            cache_dir=tmp_path,
        )
    assert "HF_TOKEN has no access" in with_token.error(refused.value).message


def test_status_codes_become_plain_messages() -> None:
    kw = {"endpoint": "https://hub.example", "repo_id": "a/b"}
    assert http_error(401, None, has_token=True, **kw).message.startswith("HF_TOKEN was refused")
    assert http_error(403, None, has_token=True, **kw).message.startswith("HF_TOKEN was refused")
    assert "not found" in http_error(401, "RepoNotFound", has_token=False, **kw).message
    server = http_error(503, None, has_token=False, **kw)
    assert server.message == "https://hub.example had a server error (503)"
    assert server.status == 503
    assert "wait for 7 s" in (
        http_error(429, None, has_token=False, retry_after="7", **kw).fix or ""
    )


def test_network_errors_name_the_endpoint() -> None:
    error = map_hub_exception(
        httpx2.ConnectError("[Errno 111] Connection refused"),
        endpoint="http://mirror.local",
        has_token=False,
    )
    assert error.message.startswith("cannot reach http://mirror.local")
    assert error.fix == "check the network or HF_ENDPOINT"


def test_hub_from_settings_defaults_to_huggingface_co(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("HF_TOKEN=hf_abc\n")
    hub = hub_from_settings(load_settings(env))
    assert (hub.endpoint, hub.token, hub.token_withheld) == (
        "https://huggingface.co",
        "hf_abc",
        None,
    )
    env.write_text("HF_ENDPOINT=http://mirror.local:8080/\n")
    mirror = hub_from_settings(load_settings(env))
    assert (mirror.endpoint, mirror.token, mirror.token_withheld) == (
        "http://mirror.local:8080",
        "",
        None,  # no token to withhold
    )


# -- HF_TOKEN: only where it may go ---------------------------------------------------------------

SECRET = "hf_secret_token"


def _settings(tmp_path: Path, endpoint: str, *, trust: bool) -> Settings:
    env = tmp_path / ".env"
    trusted = "HF_TRUST_ENDPOINT=true\n" if trust else ""
    env.write_text(f"HF_TOKEN={SECRET}\nHF_ENDPOINT={endpoint}\n{trusted}")
    return load_settings(env)


def _authorizations(fake: FakeHub) -> set[str | None]:
    return {r.headers.get("authorization") for r in fake.requests}


def test_the_token_stays_home_from_an_untrusted_mirror(fake: FakeHub, tmp_path: Path) -> None:
    fake.allowed_tokens.add(SECRET)
    fake.add_repo("acme/private-GGUF", {"p-Q4_K_M.gguf": b"GGUF"}, private=True)
    fake.add_repo("meta/gated-GGUF", {"g-Q4_K_M.gguf": b"GGUF" + bytes(60)}, gated=True)
    settings = _settings(tmp_path, fake.url, trust=False)
    hub = hub_from_settings(settings)
    assert hub.token == "" and hub.token_withheld == settings.hub_token_withheld is not None

    with pytest.raises(HubError) as private:
        hub.list_gguf_files("acme/private-GGUF")
    assert private.value.message == (
        f"{fake.url} did not show acme/private-GGUF (404): it is missing or private, "
        "and HF_TOKEN was withheld"
    )
    assert private.value.fix == f"check the name; {settings.hub_token_withheld}"

    gated = hub.list_gguf_files("meta/gated-GGUF")
    with pytest.raises(HubError) as refused:
        fetch_header(
            settings.hf_endpoint,
            settings.hub_token,
            "meta/gated-GGUF",
            gated.commit,
            "g-Q4_K_M.gguf",
            64,
            token_withheld=settings.hub_token_withheld,
        )
    assert refused.value.message == (
        f"meta/gated-GGUF is gated (accept its license at {fake.url}/meta/gated-GGUF), "
        "and HF_TOKEN was withheld"
    )
    assert refused.value.fix == settings.hub_token_withheld
    # The fake Hub logs every request's headers: none carried the token.
    assert len(fake.requests) >= 3
    assert _authorizations(fake) == {None}


def test_the_token_goes_to_a_trusted_mirror_on_this_machine(fake: FakeHub, tmp_path: Path) -> None:
    fake.allowed_tokens.add(SECRET)
    model = write_tiny_model(tmp_path / "p.gguf").read_bytes()
    fake.add_repo("acme/private-GGUF", {"p-Q4_K_M.gguf": model}, private=True)
    settings = _settings(tmp_path, fake.url, trust=True)
    hub = hub_from_settings(settings)
    assert (hub.token, hub.token_withheld) == (SECRET, None)

    listing = hub.list_gguf_files("acme/private-GGUF")
    shape = fetch_repo_shape(settings.hf_endpoint, settings.hub_token, listing)
    assert shape is not None and shape.n_layers == 2
    assert _authorizations(fake) == {f"Bearer {SECRET}"}


def test_the_token_never_travels_over_plain_http_to_another_host(tmp_path: Path) -> None:
    for endpoint in (
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:1",
        "http://[::1]:8080",
        "https://mirror.example",
        "https://huggingface.co",
    ):
        assert may_send_token(endpoint), endpoint
    for endpoint in (
        "http://mirror.example",
        "http://10.0.0.2:8080",
        "http://127.0.0.1.example",
        "http://[::2]",
        "ftp://127.0.0.1",
        "http://",
        "mirror.example",
    ):
        assert not may_send_token(endpoint), endpoint  # fmt: skip
    # Trusted or not, plain http to another machine gets no token, and says why.
    settings = _settings(tmp_path, "http://mirror.example:8080", trust=True)
    assert settings.hub_token == SECRET
    hub = hub_from_settings(settings)
    assert hub.token == ""
    assert hub.token_withheld == (
        "HF_TOKEN is not sent to http://mirror.example:8080: plain http can be read on the way; "
        "use an https address, or a mirror on this machine"
    )
    https = hub_from_settings(_settings(tmp_path, "https://mirror.example", trust=True))
    assert (https.token, https.token_withheld) == (SECRET, None)


def test_refusals_with_a_withheld_token_say_so() -> None:
    kw = {"endpoint": "http://m", "repo_id": "a/b", "token_withheld": "HF_TOKEN is not sent"}
    gated = http_error(401, "GatedRepo", has_token=False, **kw)
    assert (
        gated.message
        == "a/b is gated (accept its license at http://m/a/b), and HF_TOKEN was withheld"
    )
    assert gated.fix == "HF_TOKEN is not sent"
    for status in (401, 403):
        refused = http_error(status, None, has_token=False, **kw)
        assert refused.message.endswith("and HF_TOKEN was withheld")
        assert refused.status == status
    # A token that was sent is the one to blame; other answers are unchanged.
    assert http_error(401, None, has_token=True, **kw).message.startswith("HF_TOKEN was refused")
    assert (
        http_error(503, None, has_token=False, **kw).message == "http://m had a server error (503)"
    )


# -- the remote header read ---------------------------------------------------------------------

T = TypeVar("T")


def _peak(call: Callable[[], T]) -> tuple[T, int]:
    """What ``call`` returns and the most memory held meanwhile, every thread counted."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _file_get(fake: FakeHub, name: str) -> list[int]:
    return [r.status for r in fake.requests if r.method == "GET" and r.file and r.file[1] == name]


def _warm_up(fake: FakeHub, commit: str, size: int) -> None:
    """One read while the server behaves: imports and caches are not what is measured."""
    fetch_header(fake.url, "", "acme/m-GGUF", commit, "m-Q4_K_M.gguf", size)


def test_a_server_ignoring_range_costs_only_the_prefix(fake: FakeHub, tmp_path: Path) -> None:
    # The header sits in the first 0.3 MB of a 16 MB file that the server sends whole.
    path = write_tiny_model(tmp_path / "m.gguf")
    with path.open("ab") as handle:
        handle.write(bytes(4 * FIRST_PREFIX - path.stat().st_size))
    data = path.read_bytes()
    fake.add_repo("acme/m-GGUF", {"m-Q4_K_M.gguf": data})
    commit = fake.repo("acme/m-GGUF").sha
    _warm_up(fake, commit, len(data))
    fake.faults.ignore_range = True

    header, peak = _peak(
        lambda: fetch_header(fake.url, "", "acme/m-GGUF", commit, "m-Q4_K_M.gguf", len(data))
    )

    assert header == read_header(path)
    assert _file_get(fake, "m-Q4_K_M.gguf") == [206, 200]  # then Range was ignored
    # The prefix (4 MiB) and a chunk or two; reading the whole answer held 16 MiB and more.
    assert peak < 2 * FIRST_PREFIX, f"{peak:,} bytes"


def test_a_body_that_never_ends_is_read_to_the_prefix_only(fake: FakeHub, tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "m.gguf")
    data = path.read_bytes()
    fake.add_repo("acme/m-GGUF", {"m-Q4_K_M.gguf": data})
    commit = fake.repo("acme/m-GGUF").sha
    _warm_up(fake, commit, len(data))
    fake.faults.ignore_range = True
    fake.faults.overrun_bytes = -1  # chunked, no length, forever

    header, peak = _peak(
        lambda: fetch_header(fake.url, "", "acme/m-GGUF", commit, "m-Q4_K_M.gguf", len(data))
    )

    assert header == read_header(path)
    assert _file_get(fake, "m-Q4_K_M.gguf") == [206, 200]
    assert peak < 4 * len(data) + 2**20, f"{peak:,} bytes"


def test_a_crafted_header_on_the_hub_is_a_problem_of_that_repo_only(
    fake: FakeHub, hub: Hub, tmp_path: Path
) -> None:
    crafted = craft_header(
        [("general.architecture", STRING, "llama"), ("llama.block_count", U64, 2**40)]
    )
    fake.add_repo("evil/m-GGUF", {"sub/m-Q4_K_M.gguf": crafted})
    fake.add_repo(
        "good/m-GGUF", {"m-Q4_K_M.gguf": write_tiny_model(tmp_path / "m.gguf").read_bytes()}
    )

    with pytest.raises(GgufError) as raised:
        fetch_repo_shape(hub.endpoint, "", hub.list_gguf_files("evil/m-GGUF"))
    assert isinstance(raised.value, LlmTuiError)  # what the Hugging Face screen shows
    assert raised.value.message == (
        "sub/m-Q4_K_M.gguf: not a plausible GGUF: llama.block_count 1,099,511,627,776 "
        "is more than 4,096"
    )
    shape = fetch_repo_shape(hub.endpoint, "", hub.list_gguf_files("good/m-GGUF"))
    assert shape is not None and shape.n_layers == 2
