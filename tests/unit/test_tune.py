"""`stack.models.tune` for the 8B and 3B shapes on 6 and 8 GiB, and `llm-tui tune` itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.gpu import GpuProcess, GpuSample
from stack.models.fit import MIB, Verdict
from stack.models.header import GgufHeader
from stack.models.tune import (
    AGENT_CONTEXT,
    TuneError,
    Tuning,
    describe,
    held_by,
    tune,
    tune_settings,
)
from stack.models.tune_stack import apply_tuning, free_for_a_model, free_for_tuning
from stack.settings import load_settings
from tests.support.real_shapes import LLAMA_3_1_8B, write_sparse_model

pytestmark = pytest.mark.unit

GIB = 1 << 30
MARGIN = 512 * MIB  # VRAM_MARGIN_MIB's default

# (model, GiB free, use) -> PARALLEL, CTX_SIZE, KV_CACHE_TYPE, GPU_LAYERS
PROPOSALS = {
    ("8b", 6, "agent"): ("1", "32768", "q8_0", "22"),
    ("8b", 6, "shared"): ("2", "65536", "q8_0", "16"),
    ("8b", 6, "chat"): ("1", "6912", "q8_0", "all"),
    ("8b", 8, "agent"): ("1", "35584", "q8_0", "all"),
    ("8b", 8, "shared"): ("2", "65536", "q8_0", "24"),
    ("8b", 8, "chat"): ("4", "19456", "f16", "all"),
    ("3b", 6, "agent"): ("1", "47872", "q8_0", "all"),
    ("3b", 6, "shared"): ("2", "65536", "q8_0", "23"),
    ("3b", 6, "chat"): ("4", "26624", "f16", "all"),
    ("3b", 8, "agent"): ("1", "45824", "f16", "all"),
    ("3b", 8, "shared"): ("2", "65536", "q8_0", "all"),
    ("3b", 8, "chat"): ("4", "32768", "f16", "all"),
}


def proposal(real: dict[str, GgufHeader], model: str, gib: int, use: str) -> Tuning:
    header = real["3b-llama-quantize" if model == "3b" else model]
    return tune(header, use, free_vram=gib * GIB, margin=MARGIN)


@pytest.mark.parametrize(("model", "gib", "use"), sorted(PROPOSALS))
def test_proposals_for_8b_and_3b_on_6_and_8_gib(
    real_headers: dict[str, GgufHeader], model: str, gib: int, use: str
) -> None:
    tuning = proposal(real_headers, model, gib, use)
    keys = ("PARALLEL", "CTX_SIZE", "KV_CACHE_TYPE", "GPU_LAYERS")
    assert tuple(tuning.values[k] for k in keys) == PROPOSALS[(model, gib, use)]
    assert set(tuning.reasons) == set(keys) and all(tuning.reasons.values())
    # Never more than the estimate allows: what it needs plus the margin fits the card.
    fit = tuning.fit
    assert fit is not None and fit.verdict in (Verdict.FITS, Verdict.PARTIAL)
    assert fit.total_bytes + MARGIN <= gib * GIB
    assert (fit.verdict is Verdict.FITS) == (tuning.values["GPU_LAYERS"] == "all")
    assert tuning.slot_ctx == int(tuning.values["CTX_SIZE"]) // int(tuning.values["PARALLEL"])


def test_an_agent_gets_one_slot_and_never_less_than_claude_code_needs(
    real_headers: dict[str, GgufHeader],
) -> None:
    for model in ("8b", "3b"):
        for gib in (6, 8):
            tuning = proposal(real_headers, model, gib, "agent")
            assert tuning.values["PARALLEL"] == "1"
            assert tuning.slot_ctx >= AGENT_CONTEXT
    # Where f16 already gives more than 32k, the cache stays f16 (3B on 8 GiB)...
    assert "full precision" in proposal(real_headers, "3b", 8, "agent").reasons["KV_CACHE_TYPE"]
    # ...and q8_0 is taken where f16 stays under it (8B on 8 GiB: 19,968 vs 35,584).
    reason = proposal(real_headers, "8b", 8, "agent").reasons["KV_CACHE_TYPE"]
    assert (
        reason == "q8_0: half the bytes per token, 35,584 tokens a slot instead of 19,968 with f16"
    )


def test_chat_has_more_slots_with_fewer_tokens_than_an_agent(
    real_headers: dict[str, GgufHeader],
) -> None:
    chat = proposal(real_headers, "3b", 8, "chat")
    agent = proposal(real_headers, "3b", 8, "agent")
    assert int(chat.values["PARALLEL"]) > int(agent.values["PARALLEL"])
    assert chat.slot_ctx < agent.slot_ctx
    assert chat.slot_ctx == 8192  # a chat slot needs no more
    # Where four slots cannot hold 4k each, chat gives up slots first (8B on 6 GiB).
    few = proposal(real_headers, "8b", 6, "chat")
    assert few.reasons["PARALLEL"] == "1 slot: 4 cannot hold 4,096 tokens each on this GPU"


def test_a_model_too_big_for_the_window_keeps_some_layers_on_the_cpu(
    real_headers: dict[str, GgufHeader],
) -> None:
    tuning = proposal(real_headers, "8b", 6, "agent")
    assert tuning.values["GPU_LAYERS"] == "22"
    assert tuning.reasons["GPU_LAYERS"].startswith("only 22 of 33 layers fit beside a 32,768")
    assert any("smaller quant" in note for note in tuning.notes)
    nothing = tune(real_headers["8b"], "agent", free_vram=GIB, margin=MARGIN)
    assert nothing.values["GPU_LAYERS"] == "0"
    assert nothing.reasons["GPU_LAYERS"].startswith("not even one layer fits")


def test_the_training_context_caps_the_window(real_headers: dict[str, GgufHeader]) -> None:
    tuning = tune(real_headers["3b"], "agent", free_vram=80 * GIB, margin=MARGIN)
    assert tuning.values["CTX_SIZE"] == "131072" and tuning.values["KV_CACHE_TYPE"] == "f16"
    assert tuning.reasons["CTX_SIZE"].endswith("the model's whole training context")


def test_without_a_gpu_reading_the_sizes_are_for_the_cpu(
    real_headers: dict[str, GgufHeader],
) -> None:
    tuning = tune(real_headers["3b"], "agent", free_vram=None)
    assert tuning.fit is None
    assert tuning.values == {
        "PARALLEL": "1", "CTX_SIZE": "32768", "KV_CACHE_TYPE": "f16", "GPU_LAYERS": "auto"
    }  # fmt: skip
    assert any("--vram" in note for note in tuning.notes)


def test_flash_attention_off_keeps_an_f16_cache(real_headers: dict[str, GgufHeader]) -> None:
    tuning = tune(real_headers["8b"], "agent", free_vram=8 * GIB, margin=MARGIN, flash_attn="off")
    assert tuning.values["KV_CACHE_TYPE"] == "f16"


def test_unknown_use_is_refused(real_headers: dict[str, GgufHeader]) -> None:
    with pytest.raises(TuneError, match="unknown use 'coding'") as caught:
        tune(real_headers["8b"], "coding", free_vram=GIB)
    assert caught.value.fix is not None and "agent" in caught.value.fix


def test_the_diff_and_its_lines_against_dot_env(
    tmp_path: Path, real_headers: dict[str, GgufHeader]
) -> None:
    (tmp_path / ".env").write_text("CTX_SIZE=8192\nPARALLEL=4\n")
    settings = load_settings(tmp_path / ".env")
    tuning = tune_settings(settings, real_headers["8b"], "agent", free_vram=8 * GIB, file="8b.gguf")
    assert tuning.changes(settings) == {
        "PARALLEL": ("4", "1"),
        "CTX_SIZE": ("8192", "35584"),
        "KV_CACHE_TYPE": ("f16", "q8_0"),
        "GPU_LAYERS": ("auto", "all"),
        "CHAT_MODEL": ("", "8b.gguf"),
    }
    lines = describe(tuning, settings)
    assert lines[0].startswith("PARALLEL       4 → 1")
    assert any(line.startswith("CHAT_MODEL     (empty) → 8b.gguf") for line in lines)
    assert (
        lines[-1].startswith("= needs ~") and "one request holds up to 35,584 tokens" in lines[-1]
    )


def test_apply_writes_dot_env_and_recreates_only_when_the_stack_runs(tmp_path: Path) -> None:
    from stack.settings import set_settings

    (tmp_path / ".env").write_text("# mine\nCTX_SIZE=8192\n")
    settings = load_settings(tmp_path / ".env")
    ups: list[dict[str, object]] = []

    class Recorder:
        def __init__(self, settings: object) -> None:
            self.settings = settings

        def status(self) -> list[object]:
            return []

        def up(self, **kwargs: object) -> None:
            ups.append({"ctx": self.settings.ctx_size, **kwargs})  # type: ignore[attr-defined]

        def close(self) -> None:
            ups.append({"closed": True})

    new = apply_tuning(
        settings, {"CTX_SIZE": "32768"}, write=set_settings, engine_for=Recorder,  # type: ignore[arg-type]
        running=False, progress=lambda _: None,
    )  # fmt: skip
    assert new.ctx_size == 32768 and ups == []
    assert (tmp_path / ".env").read_text() == "# mine\nCTX_SIZE=32768\n"
    apply_tuning(
        new, {"PARALLEL": "1"}, write=set_settings, engine_for=Recorder,  # type: ignore[arg-type]
        running=True, progress=lambda _: None,
    )  # fmt: skip
    assert ups[0]["ctx"] == 32768 and ups[-1] == {"closed": True}


def _sample(free: int, processes: tuple[GpuProcess, ...] | None) -> GpuSample:
    total = 8 * GIB
    return GpuSample(0, "RTX 4060", total, total - free, None, None, None, None,
                     processes=processes)  # fmt: skip


class _Running:
    role, state, gpu, container_id = "inference", "running", True, "abc123def4567890"


def test_free_vram_counts_what_the_running_llama_server_holds() -> None:
    # NVML is the seam: no GPU here. The running llama-server (pid 7) holds 5 GiB.
    processes = (GpuProcess(7, 5 * GIB), GpuProcess(9, GIB))
    containers = {7: "abc123def4567890" + "0" * 48, 9: None}
    sample = _sample(2 * GIB, processes)
    assert held_by([sample], ["abc123def456"], containers.get) == 5 * GIB
    free = free_for_tuning(
        None,
        [_Running()],
        read_gpus=lambda: [sample],
        container_of=containers.get,  # type: ignore[list-item]
    )
    assert free.free == 7 * GIB and free.running
    assert "counting the 5.00 GiB the running llama-server holds" in free.note
    # A driver that lists no processes: the reading is what it is, and says so.
    blind = free_for_tuning(None, [_Running()], read_gpus=lambda: [_sample(2 * GIB, None)])  # type: ignore[list-item]
    assert blind.free == 2 * GIB and "stop the stack first" in blind.note
    given = free_for_tuning(6.5, [])
    assert (given.free, given.running) == (int(6.5 * GIB), False)


def test_the_model_being_served_fits_against_the_memory_it_holds() -> None:
    # 8B Q4_K_M on a 6 GiB card, already served: NVML says 0.4 GiB free, the llama-server
    # holds 5.2 GiB. Counting only what is free, the model it serves would read "does not fit".
    processes = (GpuProcess(7, int(5.2 * GIB)),)
    sample = _sample(int(0.4 * GIB), processes)

    class Engine:
        def status(self) -> list[_Running]:
            return [_Running()]

    containers = {7: "abc123def4567890" + "0" * 48}
    reads: list[int] = []

    def read() -> list[GpuSample]:
        reads.append(1)
        return [sample]

    memory = free_for_a_model(Engine(), read, containers.get)  # type: ignore[arg-type]
    assert memory.free == int(0.4 * GIB) + int(5.2 * GIB)
    assert len(reads) == 1  # one NVML reading for the free memory and the processes
    assert "the running llama-server holds" in memory.note

    class Stopped:
        def status(self) -> list[object]:
            return []

    alone = free_for_a_model(Stopped(), lambda: [sample])  # type: ignore[arg-type]
    assert alone.free == int(0.4 * GIB)


# -- the command, in a subprocess --------------------------------------------------------------


def llm_tui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "XDG_CACHE_HOME": str(home / "cache"), "DOCKER_HOST": "unix:///nonexistent"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_sparse_model(folder / "8b.gguf", LLAMA_3_1_8B)
    return folder


@pytest.fixture
def home(tmp_path: Path, models: Path) -> Path:
    (tmp_path / ".env").write_text(
        f"# my stack\nMODELS_DIR={models}\nCHAT_MODEL=8b.gguf\nLITELLM_MASTER_KEY=sk-x\n"
    )
    os.chmod(tmp_path / ".env", 0o600)
    return tmp_path


def test_tune_shows_the_diff_and_refuses_to_write_unasked(home: Path) -> None:
    result = llm_tui(home, "tune", "--vram", "8", "--use", "agent")
    assert result.returncode == 1
    assert "8b.gguf for agent use, 8 GiB (--vram):" in result.stdout
    assert "CTX_SIZE       8192 → 35584" in result.stdout
    assert "fix: add --yes to write it" in result.stderr
    assert "CTX_SIZE" not in (home / ".env").read_text()


def test_tune_yes_writes_dot_env_and_says_so(home: Path) -> None:
    before = (home / ".env").read_text()
    result = llm_tui(home, "tune", "--vram", "6", "--use", "chat", "--yes")
    assert result.returncode == 0, result.stderr
    assert "saved to .env; start it with `llm-tui up`" in result.stdout
    text = (home / ".env").read_text()
    assert text.startswith(before)  # comments and order kept; new keys appended
    settings = load_settings(home / ".env")
    assert (settings.parallel, settings.ctx_size, settings.kv_cache_type) == (1, 6912, "q8_0")
    assert settings.gpu_layers == "all"
    again = llm_tui(home, "tune", "--vram", "6", "--use", "chat")
    assert again.returncode == 0 and "already tuned for chat: nothing to change" in again.stdout


def test_fit_of_the_8b_at_8k_on_6_gib_does_not_simply_say_fits(home: Path) -> None:
    result = llm_tui(home, "fit", "8b.gguf", "--ctx", "8192", "--vram", "6")
    assert result.returncode == 0, result.stderr
    verdict = next(line for line in result.stdout.splitlines() if "free VRAM" in line)
    assert verdict.endswith("layers on the GPU") and not verdict.endswith(": fits")
    assert "`llm-tui tune` proposes settings that fit" in result.stdout
