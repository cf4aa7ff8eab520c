"""The locally built test images run on the engine, and user networks resolve names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.docker_engine import (
    BUSYBOX_IMAGE,
    LITELLM_IMAGE,
    LITELLM_VERSION,
    LLAMA_IMAGE,
    RUN_LABEL,
    EngineSandbox,
    require_engine,
    require_images,
)

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    docker_client = require_engine()
    require_images(docker_client, BUSYBOX_IMAGE, LLAMA_IMAGE, LITELLM_IMAGE)
    yield docker_client
    docker_client.close()


@pytest.fixture
def sandbox(client: Any) -> Iterator[EngineSandbox]:
    with EngineSandbox(client) as box:
        yield box


def test_llama_server_image_runs_the_binary(sandbox: EngineSandbox) -> None:
    result = sandbox.run(LLAMA_IMAGE, ["--version"])
    assert result.exit_code == 0, result.output
    assert "version:" in result.output


def test_llama_server_image_matches_the_official_layout(client: Any) -> None:
    config = client.images.get(LLAMA_IMAGE).attrs["Config"]
    assert config["Entrypoint"] == ["/app/llama-server"]
    assert "8080/tcp" in config["ExposedPorts"]


def test_busybox_image_runs_a_shell(sandbox: EngineSandbox) -> None:
    result = sandbox.run(BUSYBOX_IMAGE, ["sh", "-c", "echo hello from busybox; exit 3"])
    assert result.exit_code == 3
    assert result.output == "hello from busybox\n"


def test_litellm_image_imports_litellm(sandbox: EngineSandbox, client: Any) -> None:
    config = client.images.get(LITELLM_IMAGE).attrs["Config"]
    assert config["Entrypoint"] == ["/opt/litellm/bin/litellm"]
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in config["Env"]
    script = (
        "import importlib.metadata as m, litellm, prisma; "
        "print(m.version('litellm'), m.version('prisma'))"
    )
    result = sandbox.run(
        LITELLM_IMAGE, ["-c", script], entrypoint=["/opt/litellm/bin/python"], timeout=120
    )
    assert result.exit_code == 0, result.output
    assert result.output.split()[0] == LITELLM_VERSION


def test_containers_on_a_user_network_reach_each_other_by_name(
    client: Any, sandbox: EngineSandbox
) -> None:
    network = sandbox.network()
    server = sandbox.name("server")
    sandbox.start(
        BUSYBOX_IMAGE,
        ["sh", "-c", "echo pong > /tmp/ping; exec httpd -f -p 8080 -h /tmp"],
        name=server,
        network=network.name,
    )
    # `timeout`, not `wget -T`: the -T option segfaults in Debian's static busybox 1.35.
    probe = (
        f"nslookup {server} >/dev/null || exit 10; "
        "for i in $(seq 50); do "
        f"timeout 2 wget -q -O - http://{server}:8080/ping && exit 0; sleep 0.1; "
        "done; exit 11"
    )
    result = sandbox.run(BUSYBOX_IMAGE, ["sh", "-c", probe], network=network.name)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("pong")

    sandbox.cleanup()
    assert sandbox.leftovers() == []
    label = f"{RUN_LABEL}={sandbox.run_id}"
    assert client.containers.list(all=True, filters={"label": label}) == []
