"""A container removed between the engine's listing and its inspect is gone, not an error.

It happens for real while `down` runs, and all the time on a remote engine's host, where
short-lived helper containers (a library scan, a download) come and go under the stack's
label. The removal is made to land exactly in that gap, on the real engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.engine import Engine
from stack.settings import load_settings
from tests.support.docker_engine import BUSYBOX_IMAGE, require_engine, require_images

pytestmark = pytest.mark.engine


@pytest.fixture
def client() -> Iterator[Any]:
    made = require_engine()
    require_images(made, BUSYBOX_IMAGE)
    yield made
    made.close()


def test_status_while_a_container_goes_away(client: Any, tmp_path: Path) -> None:
    stack = "race" + uuid.uuid4().hex[:8]
    (tmp_path / ".env").write_text(f"STACK_NAME={stack}\nGPU=none\n")
    labels = {"llm-tui.stack": stack}
    staying = client.containers.run(
        BUSYBOX_IMAGE, ["sleep", "600"], detach=True, init=True,
        name=f"{stack}-inference", labels={**labels, "llm-tui.role": "inference"},
    )  # fmt: skip
    leaving = client.containers.run(
        BUSYBOX_IMAGE, ["sleep", "600"], detach=True, init=True,
        labels={**labels, "llm-tui.role": "helper"},
    )  # fmt: skip
    inspect = client.api.inspect_container

    def removed_first(container_id: str) -> Any:
        if container_id == leaving.id:
            leaving.remove(force=True)  # gone after the listing, before its inspect
        return inspect(container_id)

    client.api.inspect_container = removed_first
    try:
        rows = Engine(load_settings(tmp_path / ".env"), client=client).status()
    finally:
        client.api.inspect_container = inspect
        staying.remove(force=True)
        if leaving.id in {c.id for c in client.containers.list(all=True)}:
            leaving.remove(force=True)
    states = {row.role: row.state for row in rows}
    assert states["inference"] == "running"
    assert "helper" not in states  # a helper is never a row of the stack
