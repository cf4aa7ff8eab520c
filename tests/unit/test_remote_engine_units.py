"""The pure parts of driving a remote engine: which engine, where models live, the plan.

The real thing (SSH, TLS, a host that cannot see our files) is in tests/engine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stack.engine.endpoint import CONTEXT_VARIABLE, Endpoint, resolve_endpoint
from stack.engine.forward import gateway_route
from stack.engine.logs import LogLine, _after, since_value
from stack.engine.plan import GATEWAY_CONFIG_IN_CONTAINER, plan_services
from stack.engine.remote_models import on_host_words
from stack.settings import load_settings

pytestmark = pytest.mark.unit


def make_context(config: Path, name: str, host: str, *, tls: bool = False) -> None:
    """A context as `docker context create` leaves it (no config.json is written)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}})
    )
    if tls:
        folder = config / "contexts" / "tls" / digest / "docker"
        folder.mkdir(parents=True)
        for part in ("ca", "cert", "key"):
            (folder / f"{part}.pem").write_text("-")


@pytest.fixture
def docker_config(tmp_path: Path) -> Path:
    config = tmp_path / "docker-config"
    make_context(config, "gpu-box", "ssh://me@10.0.0.7:2222")
    make_context(config, "lab", "tcp://10.0.0.8:2376", tls=True)
    make_context(config, "desktop", "unix:///home/me/.docker/desktop/docker.sock")
    return config


def test_the_engine_is_chosen_like_the_docker_cli_does(docker_config: Path) -> None:
    base = {"DOCKER_CONFIG": str(docker_config)}
    assert resolve_endpoint(base).source == "default"
    assert resolve_endpoint(base).url == "unix:///var/run/docker.sock"
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    current = resolve_endpoint(base)
    assert (current.source, current.context, current.transport) == ("current context", "lab", "tls")
    named = resolve_endpoint({**base, "DOCKER_CONTEXT": "gpu-box"})
    assert (named.context, named.transport, named.hostname, named.port) == (
        "gpu-box", "ssh", "10.0.0.7", 2222
    )  # fmt: skip
    host = resolve_endpoint({**base, "DOCKER_CONTEXT": "gpu-box", "DOCKER_HOST": "tcp://h:1"})
    assert host.source == "DOCKER_HOST"  # DOCKER_HOST wins over DOCKER_CONTEXT
    chosen = resolve_endpoint({**base, "DOCKER_HOST": "tcp://h:1", CONTEXT_VARIABLE: "desktop"})
    assert (chosen.source, chosen.context) == ("--context", "desktop")  # and --context over both
    missing = resolve_endpoint({**base, CONTEXT_VARIABLE: "nope"})
    assert missing.problem == "no such context"


def test_what_counts_as_another_machine() -> None:
    def remote(url: str, **kw: bool) -> bool:
        return Endpoint(url, "DOCKER_HOST", **kw).is_remote

    assert not remote("unix:///var/run/docker.sock")
    assert not remote("npipe:////./pipe/docker_engine")
    assert not remote("tcp://127.0.0.1:2375") and not remote("ssh://me@localhost")
    assert remote("ssh://me@gpu-box") and remote("tcp://192.168.1.9:2376", tls=True)
    assert Endpoint("ssh://me@10.0.0.7:22", "context", context="gpu-box").label == (
        "gpu-box over ssh"
    )
    assert Endpoint("tcp://10.0.0.8:2376", "DOCKER_HOST", tls=True).label == "10.0.0.8 over tls"
    assert Endpoint("unix:///var/run/docker.sock", "default").label == "local engine"


def write_env(folder: Path, text: str) -> Path:
    (folder / "models").mkdir(exist_ok=True)
    path = folder / ".env"
    path.write_text(text)
    return path


def test_a_model_on_the_remote_host_is_not_looked_for_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    env = write_env(tmp_path, "CHAT_MODEL=only-there.gguf\nREMOTE_ENGINE=true\n")
    settings = load_settings(env)
    assert settings.engine_remote and settings.problems == ()
    write_env(tmp_path, "CHAT_MODEL=only-there.gguf\nREMOTE_ENGINE=false\n")
    assert [p.key for p in load_settings(env).problems] == ["CHAT_MODEL"]
    # The form is still checked: a model must stay inside the models folder.
    write_env(tmp_path, "CHAT_MODEL=../x.gguf\nREMOTE_ENGINE=true\n")
    assert [p.key for p in load_settings(env).problems] == ["CHAT_MODEL"]


@pytest.mark.parametrize("value", ["models", "/srv/../etc", "/srv/my models", "/a:/b"])
def test_remote_models_dir_must_be_an_absolute_folder(tmp_path: Path, value: str) -> None:
    settings = load_settings(write_env(tmp_path, f"REMOTE_MODELS_DIR={value}\n"))
    assert [p.key for p in settings.problems] == ["REMOTE_MODELS_DIR"]


def test_an_ssh_engine_makes_the_stack_remote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@10.0.0.7")
    settings = load_settings(write_env(tmp_path, "LITELLM_MASTER_KEY=sk-k\n"))
    assert (settings.engine_remote, settings.engine_host) == (True, "10.0.0.7")
    assert settings.gateway_url == "http://localhost:8000/v1"  # through the SSH forward
    assert gateway_route(settings).kind == "ssh-forward"
    lan = load_settings(write_env(tmp_path, "LITELLM_MASTER_KEY=sk-k\nBIND_ADDRESS=0.0.0.0\n"))
    assert lan.gateway_url == "http://10.0.0.7:8000/v1"  # published on the host's network
    assert gateway_route(lan).kind == "host"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.7:2376")
    tls = load_settings(write_env(tmp_path, "LITELLM_MASTER_KEY=sk-k\n"))
    route = gateway_route(tls)
    assert route.kind == "none" and "BIND_ADDRESS=0.0.0.0" in route.detail


def test_the_plan_for_a_remote_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@10.0.0.7")
    env = write_env(tmp_path, "STACK_NAME=box\nCHAT_MODEL=m.gguf\nLITELLM_MASTER_KEY=sk-k\n")
    inference, gateway = plan_services(load_settings(env))
    # Models from the host's volume, never a path of this machine; the config put inside.
    assert inference.mounts == (("box-models", "/models", "ro"),)
    assert gateway.mounts == ()
    assert [path for path, _ in gateway.files] == [GATEWAY_CONFIG_IN_CONTAINER]
    assert "model_name: local-chat" in gateway.files[0][1]
    env.write_text(env.read_text() + "REMOTE_MODELS_DIR=/srv/models\n")
    folder_plan = plan_services(load_settings(env))
    assert folder_plan[0].mounts == (("/srv/models", "/models", "ro"),)
    assert folder_plan[0].settings_hash != inference.settings_hash  # a change recreates
    assert folder_plan[0].inputs["REMOTE_MODELS_DIR"] == "/srv/models"


def test_a_local_plan_is_what_it_always_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local containers keep their hash: nothing about remotes may recreate them."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    env = write_env(tmp_path, "CHAT_MODEL=m.gguf\nLITELLM_MASTER_KEY=sk-k\n")
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    settings = load_settings(env)
    inference, gateway = plan_services(settings)
    assert inference.mounts == ((str((tmp_path / "models").resolve()), "/models", "ro"),)
    config = str(settings.gateway_config_path.resolve())
    assert gateway.mounts == ((config, GATEWAY_CONFIG_IN_CONTAINER, "ro"),)
    assert inference.files == () and gateway.files == ()
    canonical = json.dumps(
        {
            "image": gateway.image,
            "command": gateway.command,
            "environment": {
                k: hashlib.sha256(v.encode()).hexdigest() for k, v in gateway.environment.items()
            },
            "mounts": gateway.mounts,
            "ports": gateway.ports,
            "gpu": None,
            "healthcheck": gateway.healthcheck,
            "extra": hashlib.sha256(gateway.extra_hash_input.encode()).hexdigest(),
        },
        sort_keys=True,
    )
    assert gateway.settings_hash == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_messages_from_the_host_speak_of_the_host() -> None:
    where = "the volume box-models on gpu-box"
    said = on_host_words(
        "file not found in MODELS_DIR (/models/a.gguf); download it or fix the name", where
    )
    assert said == (
        "file not found in the models (the volume box-models on gpu-box: a.gguf); "
        "download it or fix the name"
    )
    full = on_host_words("the disk is full: x.gguf stopped in /models (1 MiB kept)", where)
    assert full == f"the disk is full: x.gguf stopped in {where} (1 MiB kept)"
    assert on_host_words("set MODELS_DIR to a bigger one", where) == (
        "set REMOTE_MODELS_DIR to a bigger one"
    )


def test_a_resumed_log_stream_gives_nothing_twice() -> None:
    """The engine trims trailing zeros of nanoseconds: the order is by value, not by text."""
    assert since_value("2026-12-01T21:30:31.3025Z") == "1796160631.302500000"
    assert since_value("2026-12-01T21:30:31Z") == "1796160631.000000000"
    seen = ("2026-12-01T21:30:31.3Z", 1)  # one line with that stamp was given already
    batch = [
        LogLine("old", "2026-12-01T21:30:31.29Z"),
        LogLine("given", "2026-12-01T21:30:31.3Z"),
        LogLine("new", "2026-12-01T21:30:31.30000001Z"),
        LogLine("newer", "2026-12-01T21:30:32Z"),
    ]
    kept, rest = _after(batch, seen)
    assert [line.text for line in kept] == ["new", "newer"] and rest is None
    kept, rest = _after(batch[:2], seen)
    assert kept == [] and rest == ("2026-12-01T21:30:31.3Z", 0)


def test_a_context_is_read_without_a_docker_config_file(
    docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker-py finds no context when ~/.docker/config.json does not exist; we do."""
    from stack.engine.connection import EngineUnavailable, connect

    make_context(docker_config, "gone", "unix:///tmp/llm-tui-no-engine-in-this-context.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv(CONTEXT_VARIABLE, "gone")
    with pytest.raises(EngineUnavailable) as failure:
        connect(timeout=2)
    assert "llm-tui-no-engine-in-this-context.sock" in failure.value.message


def test_the_hosts_gpu_numbers_are_read_from_nvidia_smi() -> None:
    from stack.engine.remote_gpu import parse_gpu_query

    # As nvidia-smi 550 prints them: a laptop GPU that reports no power, then an H100.
    text = (
        "0, NVIDIA GeForce RTX 4060 Laptop GPU, 8188, 6123, 97, 71, [N/A], [N/A], 2370, 8001, "
        "3105\n"
        "1, NVIDIA H100 80GB HBM3, 81559, 0, 0, 31, 69.52, 700.00, 345, 2619, 1980\n"
    )
    laptop, h100 = parse_gpu_query(text)
    assert (laptop.index, laptop.name, laptop.memory_total, laptop.memory_used) == (
        0,
        "NVIDIA GeForce RTX 4060 Laptop GPU",
        8188 * 1024 * 1024,
        6123 * 1024 * 1024,
    )
    assert (laptop.utilization, laptop.temperature, laptop.power_watts) == (97, 71, None)
    assert (h100.power_watts, h100.power_limit_watts, h100.clock_graphics_max_mhz) == (
        69.52,
        700.0,
        1980,
    )
    assert h100.processes is None  # host PIDs mean nothing here
    assert parse_gpu_query("No devices were found\n") == []
