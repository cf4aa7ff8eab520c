"""The stack engine against a real Docker Engine, with locally built images (GPU=none)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.engine import Engine
from stack.engine.errors import EngineError
from stack.settings import Settings, load_settings
from tests.support.docker_engine import assert_same_rows
from tests.support.gguf_factory import write_tiny_model, write_truncated
from tests.support.net import free_port
from tests.support.tiers import unavailable

LLAMA_IMAGE = "llm-tui-test/llama-server:cpu"
LITELLM_IMAGE = "llm-tui-test/litellm:1.106.2"
BUSYBOX_IMAGE = "llm-tui-test/busybox:1"
KEY = "sk-engine-test-" + "z" * 32


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as exc:
        unavailable("Docker Engine", f'{exc} (start one: eval "$(scripts/dockerd start)")')
    for image in (LLAMA_IMAGE, LITELLM_IMAGE, BUSYBOX_IMAGE):
        try:
            client.images.get(image)
        except ImageNotFound:
            unavailable("test image", f"{image} is missing; run scripts/test-images")
    yield client
    client.close()


class Home:
    """A stack home (.env + models/) with a unique STACK_NAME, cleaned up afterwards."""

    def __init__(self, root: Path, client: Any) -> None:
        self.root = root
        self.client = client
        self.stack = "t" + uuid.uuid4().hex[:8]
        self.models = root / "models"
        self.models.mkdir()
        write_tiny_model(self.models / "alpha.gguf", name="alpha", seed=1)
        write_tiny_model(self.models / "beta.gguf", name="beta", seed=2)
        write_truncated(self.models / "broken.gguf", name="broken")
        self.gateway_port = free_port()
        self.inference_port = free_port()
        self.env = root / ".env"
        self.env.write_text(
            "# engine test stack\n"
            f"STACK_NAME={self.stack}\nCHAT_MODEL=alpha.gguf\nGPU=none\n"
            f"INFERENCE_IMAGE={LLAMA_IMAGE}\nGATEWAY_IMAGE={LITELLM_IMAGE}\n"
            f"API_GATEWAY_PORT={self.gateway_port}\nINFERENCE_PORT={self.inference_port}\n"
            f"LITELLM_MASTER_KEY={KEY}\nCTX_SIZE=2048\nPARALLEL=2\nMAX_TOKENS=16\n"
        )

    def settings(self) -> Settings:
        settings = load_settings(self.env)
        assert settings.problems == (), settings.problems
        return settings

    def engine(self) -> Engine:
        return Engine(self.settings(), client=self.client)

    def ours(self) -> list[Any]:
        label = f"llm-tui.stack={self.stack}"
        return list(self.client.containers.list(all=True, filters={"label": label}))

    def cleanup(self) -> None:
        for container in self.ours():
            container.remove(force=True)
        for network in self.client.networks.list(names=[self.stack]):
            network.remove()


@pytest.fixture
def home(tmp_path: Path, docker_client: Any) -> Iterator[Home]:
    h = Home(tmp_path, docker_client)
    yield h
    h.cleanup()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Home]:
    h = Home(tmp_path_factory.mktemp("stack"), docker_client)
    try:
        h.engine().up(timeout=120)
        yield h
    finally:
        h.cleanup()


def chat(home: Home, *, stream: bool = False, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {
        "model": "local-chat",
        "max_tokens": 12,
        "temperature": 0,
        "stream": stream,
        "messages": [{"role": "user", "content": "Tell me a story"}],
    }
    return httpx.post(
        f"http://127.0.0.1:{home.gateway_port}/v1/chat/completions",
        json=body,
        headers=headers,
        timeout=60,
    )


def answer_of(home: Home) -> tuple[str, str]:
    response = chat(home)
    assert response.status_code == 200, response.text
    data = response.json()
    return data["choices"][0]["message"]["content"], data.get("model", "")


# --- the full path -------------------------------------------------------------------


def test_up_gives_healthy_services_and_a_working_gateway(running: Home) -> None:
    rows = {row.role: row for row in running.engine().status()}
    assert rows["inference"].state == "running"
    assert rows["inference"].health in ("healthy", "starting")
    assert rows["inference"].model == "alpha.gguf"
    assert rows["inference"].gpu is False
    assert rows["api-gateway"].state == "running"
    assert any(str(running.gateway_port) in port for port in rows["api-gateway"].ports)
    text, _ = answer_of(running)
    assert text
    # Both containers' own healthchecks turn healthy (the gateway's uses python3).
    deadline = time.monotonic() + 20
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        health = {row.role: row.health for row in running.engine().status()}
        if set(health.values()) == {"healthy"}:
            break
        time.sleep(0.2)
    assert health == {"inference": "healthy", "api-gateway": "healthy"}


def test_gateway_requires_the_key(running: Home) -> None:
    assert chat(running, key=None).status_code == 401
    assert chat(running, key="sk-wrong").status_code in (400, 401)


def test_streamed_chat_and_messages_endpoint(running: Home) -> None:
    response = chat(running, stream=True)
    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) > 3
    messages = httpx.post(
        f"http://127.0.0.1:{running.gateway_port}/v1/messages",
        json={
            "model": "local-chat",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        timeout=60,
    )
    assert messages.status_code == 200, messages.text
    assert messages.json()["content"][0]["text"]


def test_inference_port_is_published_on_loopback_only(running: Home) -> None:
    rows = {row.role: row for row in running.engine().status()}
    assert rows["inference"].ports == (f"127.0.0.1:{running.inference_port}->8080/tcp",)
    health = httpx.get(f"http://127.0.0.1:{running.inference_port}/health", timeout=5)
    assert health.status_code == 200


def test_up_again_changes_nothing(running: Home) -> None:
    before = {c.name: c.id for c in running.ours()}
    result = running.engine().up(timeout=60)
    assert result.created == () and result.recreated == ()
    assert {c.name: c.id for c in running.ours()} == before


def test_swap_recreates_inference_only_and_output_changes(running: Home) -> None:
    gateway_id = running.client.containers.get(f"{running.stack}-api-gateway").id
    before, _ = answer_of(running)
    running.engine().swap("beta.gguf", progress=lambda _: None, timeout=60)
    after, _ = answer_of(running)
    assert after != before
    assert running.client.containers.get(f"{running.stack}-api-gateway").id == gateway_id
    assert "CHAT_MODEL=beta.gguf\n" in running.env.read_text()
    assert running.env.read_text().startswith("# engine test stack\n")
    rows = {row.role: row for row in running.engine().status()}
    assert rows["inference"].model == "beta.gguf"


def test_failed_swap_puts_the_previous_model_back(running: Home) -> None:
    engine = running.engine()
    current = engine.settings.chat_model
    with pytest.raises(EngineError) as err:
        engine.swap("broken.gguf", timeout=60)
    assert "could not serve broken.gguf" in err.value.message
    assert "exit code" in err.value.message
    assert f"CHAT_MODEL={current}\n" in running.env.read_text()
    rows = {row.role: row for row in running.engine().status()}
    assert rows["inference"].model == current and rows["inference"].state == "running"
    assert answer_of(running)[0]


def test_changing_ctx_size_recreates_inference_only(running: Home) -> None:
    before = {c.name: c.id for c in running.ours()}
    running.env.write_text(running.env.read_text().replace("CTX_SIZE=2048", "CTX_SIZE=1024"))
    result = running.engine().up(timeout=60)
    assert result.recreated == (f"{running.stack}-inference",)
    after = {c.name: c.id for c in running.ours()}
    gateway = f"{running.stack}-api-gateway"
    assert after[gateway] == before[gateway]
    assert after[f"{running.stack}-inference"] != before[f"{running.stack}-inference"]


def test_restart_keeps_the_container_and_waits_for_health(running: Home) -> None:
    name = f"{running.stack}-inference"
    before = running.client.containers.get(name)
    running.engine().restart("inference", progress=lambda _: None)
    after = running.client.containers.get(name)
    assert after.id == before.id
    assert after.attrs["State"]["StartedAt"] != before.attrs["State"]["StartedAt"]
    assert answer_of(running)[0]
    with pytest.raises(EngineError, match="no service 'vision'"):
        running.engine().restart("vision")


def test_status_json_and_logs_cli(running: Home) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "cli.main", "--env-file", str(running.env)]
    status = subprocess.run([*command, "status", "--json"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    roles = {row["role"]: row for row in json.loads(status.stdout)}
    assert roles["inference"]["state"] == "running"
    logs = subprocess.run(
        [*command, "logs", "inference", "--tail", "50"], capture_output=True, text=True
    )
    assert logs.returncode == 0, logs.stderr
    assert "llama" in logs.stdout.lower() or "server" in logs.stdout.lower()
    out = subprocess.run(
        [*command, "chat", "Hello there", "--max-tokens", "6"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_down_removes_only_ours(running: Home) -> None:
    foreign = running.client.containers.run(
        BUSYBOX_IMAGE, ["sleep", "60"], detach=True, name=f"{running.stack}-bystander", init=True
    )
    try:
        removed = running.engine().down()
        assert sorted(removed) == sorted(
            [f"{running.stack}-inference", f"{running.stack}-api-gateway"]
        )
        assert running.ours() == []
        foreign.reload()
        assert foreign.status == "running"
    finally:
        foreign.remove(force=True)


# --- errors, provoked for real ---------------------------------------------------------


def test_port_in_use_is_named_and_nothing_is_left(home: Home) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", home.gateway_port))
        listener.listen()
        with pytest.raises(EngineError) as err:
            home.engine().up(timeout=60)
    assert f"port {home.gateway_port}" in err.value.message
    assert "API_GATEWAY_PORT" in (err.value.message + (err.value.fix or ""))
    assert not [c for c in home.ours() if c.status == "created"]


def test_missing_image_offline(home: Home) -> None:
    home.env.write_text(home.env.read_text().replace(LLAMA_IMAGE, "llm-tui-test/absent:1"))
    with pytest.raises(EngineError) as err:
        home.engine().up(timeout=30)
    text = str(err.value)
    assert "llm-tui-test/absent:1" in text
    assert "pulled" in text or "pull" in text
    assert home.ours() == []


def test_corrupt_model_reports_exit_code_and_log_lines(home: Home) -> None:
    home.env.write_text(
        home.env.read_text().replace("CHAT_MODEL=alpha.gguf", "CHAT_MODEL=broken.gguf")
    )
    with pytest.raises(EngineError) as err:
        home.engine().up(timeout=60)
    message = err.value.message
    assert "stopped while starting: exit code 1" in message
    assert "last log lines" in message


def test_not_gguf_and_missing_shard_refused_before_any_container(home: Home) -> None:
    (home.models / "notes.gguf").write_text("hello")
    (home.models / "big-00001-of-00002.gguf").write_bytes((home.models / "alpha.gguf").read_bytes())
    engine = home.engine()
    with pytest.raises(EngineError, match="not a GGUF file"):
        engine.swap("notes.gguf")
    with pytest.raises(EngineError, match=r"missing big-00002-of-00002\.gguf"):
        engine.swap("big-00001-of-00002.gguf")
    assert home.ours() == []
    assert "CHAT_MODEL=alpha.gguf\n" in home.env.read_text()


def test_foreign_container_with_our_name_is_left_alone(home: Home) -> None:
    foreign = home.client.containers.run(
        BUSYBOX_IMAGE, ["sleep", "60"], detach=True, name=f"{home.stack}-inference", init=True
    )
    try:
        with pytest.raises(EngineError) as err:
            home.engine().up(timeout=30)
        assert f"{home.stack}-inference" in err.value.message
        assert "not created by llm-tui" in err.value.message
        foreign.reload()
        assert foreign.status == "running"
        home.engine().down()
        foreign.reload()
        assert foreign.status == "running"
    finally:
        foreign.remove(force=True)


def test_gpu_request_without_nvidia_runtime(home: Home) -> None:
    home.env.write_text(home.env.read_text().replace("GPU=none", "GPU=all"))
    with pytest.raises(EngineError) as err:
        home.engine().up(timeout=30)
    assert "no NVIDIA container runtime" in err.value.message
    assert "GPU none" in (err.value.fix or "")
    assert not [c for c in home.ours() if c.status == "created"]


def test_killed_inference_shows_exit_code_in_status(home: Home) -> None:
    engine = home.engine()
    engine.up(timeout=60)
    home.client.containers.get(f"{home.stack}-inference").kill()
    rows = {row.role: row for row in engine.status()}
    assert rows["inference"].state == "exited"
    assert rows["inference"].exit_code == 137
    assert rows["api-gateway"].state == "running"
    # An engine without an SDK client (a command line) reads the same straight from the
    # socket, and without importing docker at all.
    assert_same_status_without_the_sdk(home, engine)
    # `up` brings it back without touching the gateway.
    gateway_id = home.client.containers.get(f"{home.stack}-api-gateway").id
    engine.up(timeout=60)
    assert home.client.containers.get(f"{home.stack}-api-gateway").id == gateway_id
    assert {row.role: row.state for row in engine.status()}["inference"] == "running"


def assert_same_status_without_the_sdk(home: Home, engine: Any) -> None:
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from stack.engine import Engine\n"
        "from stack.settings import load_settings\n"
        "rows = Engine(load_settings(sys.argv[1])).status()\n"
        "print(json.dumps({'docker': 'docker' in sys.modules,"
        " 'rows': [row.as_dict() for row in rows]}))\n"
    )
    before = engine.status()
    done = subprocess.run(
        [sys.executable, "-c", script, str(home.env)], capture_output=True, text=True
    )
    after = engine.status()
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["docker"] is False
    assert_same_rows(answer["rows"], before, after)


def test_cancel_ends_a_long_model_load_at_once(home: Home) -> None:
    """A load that never finishes (nothing answers /health) ends as soon as it is cancelled."""
    import threading

    from stack.cancel import Cancelled, CancelToken

    engine = home.engine()
    spec = next(s for s in engine.plan() if s.role == "inference")
    engine.ensure_network()
    # Running, on the plan's name, but never healthy: `wait_ready` would wait an hour.
    home.client.containers.run(
        BUSYBOX_IMAGE,
        ["sleep", "3600"],
        detach=True,
        name=spec.name,
        init=True,
        labels=spec.labels(home.stack),
        network=home.stack,
    )
    token = CancelToken()
    waiting = threading.Event()
    outcome: dict[str, BaseException] = {}

    def progress(line: str) -> None:
        if "starting" in line:
            waiting.set()

    def wait() -> None:
        try:
            engine.wait_ready(spec, progress=progress, timeout=3600, cancel=token)
        except BaseException as exc:
            outcome["error"] = exc

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert waiting.wait(60), "wait_ready never started polling"
    token.cancel()
    waiter.join(30)
    assert not waiter.is_alive(), "wait_ready kept waiting after cancel()"
    assert isinstance(outcome.get("error"), Cancelled)
    assert outcome["error"].message == f"waiting for {spec.name} was cancelled"


def test_down_network_with_a_foreign_container_attached_is_one_line(home: Home) -> None:
    """The engine refuses to remove a network in use: say whose, touch nothing of theirs."""
    import subprocess
    import sys

    home.engine().ensure_network()
    bystander = home.client.containers.run(
        BUSYBOX_IMAGE,
        ["sleep", "3600"],
        detach=True,
        name=f"{home.stack}-bystander",
        init=True,
        network=home.stack,
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "--env-file", str(home.env), "down", "--network"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"llm-tui: error: the network '{home.stack}' was kept")
        assert f"{home.stack}-bystander" in result.stderr
        assert "docker network disconnect" in result.stderr
        bystander.reload()
        assert bystander.status == "running"
        assert home.client.networks.list(names=[home.stack])
    finally:
        bystander.remove(force=True)


def test_status_names_the_keys_changed_since_each_container_was_made(home: Home) -> None:
    import subprocess
    import sys

    engine = home.engine()
    engine.up(timeout=120)
    assert all(row.up_to_date for row in home.engine().status())
    cli = [sys.executable, "-m", "cli", "--env-file", str(home.env)]
    for key, value in (("CTX_SIZE", "1024"), ("MAX_TOKENS", "32")):
        done = subprocess.run([*cli, "config", "set", key, value], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    rows = {row.role: row for row in home.engine().status()}
    assert rows["inference"].drift == ("CTX_SIZE",)
    assert rows["api-gateway"].drift == ("MAX_TOKENS",)
    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True)
    as_json = {row["role"]: row for row in json.loads(status.stdout)}
    assert as_json["inference"]["drift"] == ["CTX_SIZE"]
    assert as_json["inference"]["up_to_date"] is False
    text = subprocess.run([*cli, "status"], capture_output=True, text=True).stdout
    assert "out of date: CTX_SIZE (`llm-tui up` applies)" in text
    # A secret's change is named, its value never shown (labels are readable by anyone).
    done = subprocess.run(
        [*cli, "config", "set", "LITELLM_MASTER_KEY", "sk-" + "n" * 40],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    gateway = home.client.containers.get(f"{home.stack}-api-gateway")
    assert KEY not in json.dumps(gateway.labels) and "n" * 40 not in json.dumps(gateway.labels)
    rows = {row.role: row for row in home.engine().status()}
    assert set(rows["api-gateway"].drift) == {"MAX_TOKENS", "LITELLM_MASTER_KEY"}
    result = home.engine().up(timeout=120)
    assert set(result.recreated) == {f"{home.stack}-inference", f"{home.stack}-api-gateway"}
    assert all(row.up_to_date for row in home.engine().status())


def test_up_makes_a_key_when_the_env_has_none(home: Home) -> None:
    """A hand-written .env without LITELLM_MASTER_KEY: the gateway would refuse to start."""
    home.env.write_text(home.env.read_text().replace(f"LITELLM_MASTER_KEY={KEY}\n", ""))
    engine = home.engine()
    said: list[str] = []
    engine.up(timeout=120, progress=said.append)
    key = load_settings(home.env).litellm_master_key
    assert key.startswith("sk-") and len(key) > 30
    assert engine.settings.litellm_master_key == key
    assert any("generated a LITELLM_MASTER_KEY" in line for line in said)
    assert key not in " ".join(said)  # said, never shown
    assert home.env.stat().st_mode & 0o077 == 0  # a file holding a secret is private
    response = httpx.get(
        f"http://127.0.0.1:{home.gateway_port}/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
