"""The pure container plan: commands, GPU rules, ports, labels and change detection."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.engine.compose import build_compose, write_compose
from stack.engine.plan import GATEWAY, INFERENCE, INFERENCE_CODE, gpu_request, plan_services
from stack.settings import Settings, load_settings
from tests.support.tiers import unavailable


def make(tmp_path: Path, extra: str = "") -> Settings:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    for name in ("a.gguf", "b.gguf"):
        (models / name).write_bytes(b"GGUF" + b"\0" * 28)
    (tmp_path / ".env").write_text(f"CHAT_MODEL=a.gguf\nLITELLM_MASTER_KEY=sk-x\n{extra}")
    settings = load_settings(tmp_path / ".env")
    assert settings.problems == ()
    return settings


def test_inference_command_follows_settings(tmp_path: Path) -> None:
    settings = make(tmp_path, "CTX_SIZE=4096\nPARALLEL=2\nFLASH_ATTN=on\nKV_CACHE_TYPE=q8_0\n")
    inference = plan_services(settings, engine_has_nvidia=True)[0]
    assert inference.role == INFERENCE and inference.name == "llm-tui-inference"
    command = " ".join(inference.command)
    assert command.startswith("-m /models/a.gguf --host 0.0.0.0 --port 8080 -ngl auto")
    for fragment in ("-c 4096", "-np 2", "-fa on", "-ctk q8_0 -ctv q8_0", "-a local-chat"):
        assert fragment in command
    assert "--metrics" in inference.command
    assert inference.mounts == ((str((tmp_path / "models").resolve()), "/models", "ro"),)
    assert inference.ports == ((8080, "127.0.0.1", 8001),)
    assert inference.healthcheck and "/health" in " ".join(inference.healthcheck["test"])  # type: ignore[arg-type]


def test_gpu_rules(tmp_path: Path) -> None:
    assert gpu_request(make(tmp_path, "GPU=auto\n"), engine_has_nvidia=False) is None
    assert gpu_request(make(tmp_path, "GPU=auto\n"), engine_has_nvidia=True).count == -1  # type: ignore[union-attr]
    assert gpu_request(make(tmp_path, "GPU=none\n"), engine_has_nvidia=True) is None
    ids = gpu_request(make(tmp_path, "GPU=0,1\n"), engine_has_nvidia=False)
    assert ids is not None and ids.device_ids == ("0", "1") and ids.count == 0
    # Without a GPU, layers are not offloaded whatever GPU_LAYERS says.
    cpu = plan_services(make(tmp_path, "GPU=none\nGPU_LAYERS=all\n"))[0]
    assert cpu.command[cpu.command.index("-ngl") + 1] == "0"


def test_gateway_spec(tmp_path: Path) -> None:
    settings = make(tmp_path, "API_GATEWAY_PORT=9100\nINFERENCE_PORT=\n")
    specs = plan_services(settings)
    assert [s.role for s in specs] == [INFERENCE, GATEWAY]
    gateway = specs[-1]
    assert gateway.ports == ((4000, "127.0.0.1", 9100),)
    assert gateway.environment["LITELLM_MASTER_KEY"] == "sk-x"
    assert gateway.command == ("--config", "/app/config.yaml", "--port", "4000")
    assert specs[0].ports == ()  # INFERENCE_PORT empty: not published
    # The key never appears in labels.
    assert "sk-x" not in str(gateway.labels("llm-tui"))


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.168.1.5", "::", "10.0.0.7"])
def test_llama_server_is_never_published_beyond_loopback(tmp_path: Path, bind: str) -> None:
    """llama-server has no key: whatever BIND_ADDRESS says, only the gateway leaves the host."""
    specs = {s.role: s for s in plan_services(make(tmp_path, f"BIND_ADDRESS={bind}\n"))}
    assert specs[INFERENCE].ports == ((8080, "127.0.0.1", 8001),)
    assert specs[GATEWAY].ports == ((4000, bind, 8000),)
    published = build_compose(make(tmp_path, f"BIND_ADDRESS={bind}\n"))["services"]
    assert published["inference"]["ports"] == ["127.0.0.1:8001:8080"]


def test_a_loopback_bind_address_is_kept_for_llama_server(tmp_path: Path) -> None:
    specs = {s.role: s for s in plan_services(make(tmp_path, "BIND_ADDRESS=127.0.0.2\n"))}
    assert specs[INFERENCE].ports == ((8080, "127.0.0.2", 8001),)


def test_code_model_gets_its_own_container(tmp_path: Path) -> None:
    specs = plan_services(make(tmp_path, "CODE_MODEL=b.gguf\n"))
    assert [s.role for s in specs] == [INFERENCE, INFERENCE_CODE, GATEWAY]
    code = specs[1]
    assert code.name == "llm-tui-inference-code"
    assert "-a local-code" in " ".join(code.command)
    assert code.ports == ()


def test_hash_changes_only_for_the_affected_service(tmp_path: Path) -> None:
    base = {s.role: s.settings_hash for s in plan_services(make(tmp_path))}
    ctx = {s.role: s.settings_hash for s in plan_services(make(tmp_path, "CTX_SIZE=1024\n"))}
    assert ctx[INFERENCE] != base[INFERENCE] and ctx[GATEWAY] == base[GATEWAY]
    temp = {s.role: s.settings_hash for s in plan_services(make(tmp_path, "TEMPERATURE=0.9\n"))}
    assert temp[GATEWAY] != base[GATEWAY] and temp[INFERENCE] == base[INFERENCE]
    swapped = {
        s.role: s.settings_hash
        for s in plan_services(
            make(tmp_path).__class__(**{**make(tmp_path).__dict__, "chat_model": "b.gguf"})
        )
    }
    assert swapped[INFERENCE] != base[INFERENCE] and swapped[GATEWAY] == base[GATEWAY]


def test_compose_export_uses_real_gpu_syntax(tmp_path: Path) -> None:
    settings = make(tmp_path, "GPU=all\n")
    compose = build_compose(settings)
    inference = compose["services"]["inference"]
    devices = inference["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "capabilities": ["gpu"], "count": "all"}]
    assert "device_requests" not in str(compose)
    gateway = compose["services"]["api-gateway"]
    assert gateway["environment"]["LITELLM_MASTER_KEY"] == "${LITELLM_MASTER_KEY}"
    assert gateway["ports"] == ["127.0.0.1:8000:4000"]
    path = write_compose(settings)
    assert "sk-x" not in path.read_text()
    assert yaml.safe_load(path.read_text())["services"]["inference"]["image"].startswith("ghcr.io/")


def test_compose_file_validates_with_docker_compose(tmp_path: Path) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        unavailable("docker-compose", "the Debian package docker-compose is not installed")
    settings = make(tmp_path, "GPU=0\n")
    path = write_compose(settings)
    result = subprocess.run(
        [tool, "-f", str(path), "--env-file", str(settings.env_file), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_pull_events_fold_into_one_progress_line() -> None:
    from stack.engine.pull import PullSummary

    summary = PullSummary("ghcr.io/ggml-org/llama.cpp:server-cuda-b10666")
    events = [
        {"status": "Pulling from ggml-org/llama.cpp", "id": "server-cuda-b10666"},
        {"status": "Pulling fs layer", "id": "a1"},
        {"status": "Pulling fs layer", "id": "b2"},
        {"status": "Downloading", "id": "a1", "progressDetail": {"current": 5e8, "total": 1e9}},
        {"status": "Downloading", "id": "b2", "progressDetail": {"current": 1e8, "total": 2e9}},
        {"status": "Already exists", "id": "c3"},
    ]
    for event in events:
        summary.update(event)
    assert summary.line() == (
        "pulling ghcr.io/ggml-org/llama.cpp:server-cuda-b10666: 0.60/3.00 GB, 1/3 layers"
    )
    summary.update({"status": "Pull complete", "id": "a1"})
    assert "1.10/3.00 GB, 2/3 layers" in summary.line()


@pytest.mark.parametrize(
    ("code", "oom", "label", "words"),
    [
        (137, False, "exit code 137 · killed", "exit code 137 (killed by SIGKILL: out of memory"),
        (137, True, "exit code 137 · OOM-killed", "it was killed for using too much memory (OOM)"),
        (139, False, "exit code 139 · crashed", "exit code 139 (crashed with SIGSEGV)"),
        (1, False, "exit code 1", "exit code 1"),
        (None, False, "", ""),
    ],
)
def test_an_exit_code_says_what_ended_the_container(
    code: int | None, oom: bool, label: str, words: str
) -> None:
    from stack.engine.exits import exit_label, exit_words

    assert exit_label(code, oom) == label
    assert exit_words(code, oom).startswith(words)
