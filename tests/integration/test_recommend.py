"""First-run recommendations against the fake Hub: real listings, real headers, the real fit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.hub.client import Hub
from stack.hub.files import RepoFiles
from stack.hub.remote_header import fetch_repo_shape
from stack.models.fit import FitEstimate, ModelShape, estimate
from stack.models.recommend import (
    CPU_WARNING,
    DISK_MARGIN,
    Recommendation,
    load_catalog,
    recommend,
)
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_tiny_model

CATALOG = """
[[model]]
repo = "acme/Coder-Big-GGUF"
use = "code"
params = 7.0
quants = ["Q8_0", "Q4_K_M"]
note = "a big coder"

[[model]]
repo = "acme/Coder-Small-GGUF"
use = "code"
params = 1.5
quants = ["Q8_0"]
note = "a small coder"

[[model]]
repo = "acme/Chat-GGUF"
use = "chat"
params = 3.0
quants = ["Q6_K", "Q4_K_M"]
note = "a chat model"

[[model]]
repo = "acme/Gone-GGUF"
use = "chat"
params = 9.0
quants = ["Q4_K_M"]
note = "not on the Hub"
"""


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeHub]:
    def model(name: str, layers: int) -> bytes:
        path = write_tiny_model(tmp_path / f"{name}.gguf", name=name, n_layers=layers)
        return path.read_bytes()

    with FakeHub() as hub:
        # The better quant is the bigger file: more layers stand in for more bits.
        hub.add_repo(
            "acme/Coder-Big-GGUF",
            {"big-Q8_0.gguf": model("big8", 12), "big-Q4_K_M.gguf": model("big4", 4)},
        )
        hub.add_repo("acme/Coder-Small-GGUF", {"small-Q8_0.gguf": model("small", 2)})
        hub.add_repo(
            "acme/Chat-GGUF",
            {"chat-Q6_K.gguf": model("chat6", 6), "chat-Q4_K_M.gguf": model("chat4", 3)},
        )
        yield hub


def run(
    fake: FakeHub, use: str, free_vram: int | None, free_disk: int = 1 << 40
) -> list[Recommendation]:
    hub = Hub(endpoint=fake.url)

    def shape_of(listing: RepoFiles) -> ModelShape | None:
        return fetch_repo_shape(fake.url, "", listing)

    def fit(shape: ModelShape) -> FitEstimate | None:
        return estimate(shape, ctx=2048, free_vram=free_vram)

    return recommend(
        hub,
        use,
        shape_of=shape_of,
        estimate=fit,
        free_vram=free_vram,
        free_disk=free_disk,
        catalog=load_catalog(CATALOG),
    )


def overhead_plus(fake: FakeHub, repo: str, name: str) -> int:
    """Free VRAM that fits ``name`` of ``repo`` fully, and nothing bigger of that repo."""
    listing = Hub(endpoint=fake.url).list_gguf_files(repo)
    shape = fetch_repo_shape(fake.url, "", listing)
    assert shape is not None
    from stack.models.fit import scaled_to_size

    entry = next(e for e in listing.models if e.first_file.path == name)
    return estimate(scaled_to_size(shape, entry.size), ctx=2048).total_bytes


def test_an_agent_gets_code_models_first_each_with_the_best_quant_that_fits(
    fake: FakeHub,
) -> None:
    # Room for the big coder's Q4_K_M, not its Q8_0.
    free = overhead_plus(fake, "acme/Coder-Big-GGUF", "big-Q4_K_M.gguf")
    found = run(fake, "agent", free)
    assert [r.label for r in found] == [
        "acme/Coder-Big-GGUF Q4_K_M",
        "acme/Coder-Small-GGUF Q8_0",
        "acme/Chat-GGUF Q6_K",  # smaller than the big coder's Q4_K_M, so it fits too
    ]
    assert all(r.fit is not None and r.fit.verdict.value == "fits" for r in found)
    assert "a big coder; Q4_K_M" in found[0].why and ": fits, 2k context" in found[0].why


def test_a_chat_gets_chat_models_first(fake: FakeHub) -> None:
    found = run(fake, "chat", 1 << 40)
    assert found[0].label == "acme/Chat-GGUF Q6_K"
    assert [r.model.use for r in found] == ["chat", "code", "code"]
    # A repo the Hub does not have is left out, not an error.
    assert "acme/Gone-GGUF" not in {r.model.repo for r in found}


def test_the_disk_rules_out_what_it_cannot_hold(fake: FakeHub) -> None:
    listing = Hub(endpoint=fake.url).list_gguf_files("acme/Coder-Big-GGUF")
    q4 = next(e for e in listing.models if e.quant == "Q4_K_M")
    found = run(fake, "agent", 1 << 40, free_disk=q4.size + DISK_MARGIN)
    big = next(r for r in found if r.model.repo == "acme/Coder-Big-GGUF")
    assert big.entry.quant == "Q4_K_M"  # Q8_0 would not leave the margin free


def test_without_a_gpu_only_small_models_and_an_honest_warning(fake: FakeHub) -> None:
    found = run(fake, "agent", None)
    assert [r.label for r in found] == ["acme/Coder-Small-GGUF Q8_0", "acme/Chat-GGUF Q6_K"]
    assert all(CPU_WARNING in r.why for r in found)


def test_the_shipped_catalog_parses_and_covers_both_uses() -> None:
    catalog = load_catalog()
    assert {m.use for m in catalog} == {"chat", "code"}
    assert all(m.quants and m.repo.count("/") == 1 for m in catalog)
    assert any(m.params <= 3.5 for m in catalog if m.use == "code")  # something for a CPU
