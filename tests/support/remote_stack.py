"""A stack home on this machine that drives the remote host (`remote_host.RemoteHost`).

The `.env` lives here; the engine, the models, the downloads and the containers live on
the host. `cli()` runs the real `llm-tui` in a subprocess with the host's client HOME and
one way of reaching it: ``ssh`` (DOCKER_HOST=ssh://…), ``tls`` (the ``gpu-tls`` context
through ``--context``, with REQUESTS_CA_BUNDLE set as on many machines), or ``box`` (the
``gpu-box`` context through DOCKER_CONTEXT).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.docker_engine import LITELLM_IMAGE, LLAMA_IMAGE
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port
from tests.support.remote_host import RemoteHost

KEY = "sk-remote-test-" + "r" * 32
REPO = Path(__file__).resolve().parents[2]
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class RemoteStack:
    def __init__(self, host: RemoteHost, folder: Path, via: str, **settings: str) -> None:
        self.host = host
        self.folder = folder
        self.via = via
        self.stack = "r" + uuid.uuid4().hex[:8]
        self.gateway_port = free_port()
        self.local_models = folder / "models"
        self.local_models.mkdir(parents=True, exist_ok=True)
        self.env_file = folder / ".env"
        values = {
            "STACK_NAME": self.stack,
            "GPU": "none",
            "INFERENCE_IMAGE": LLAMA_IMAGE,
            "GATEWAY_IMAGE": LITELLM_IMAGE,
            "API_GATEWAY_PORT": str(self.gateway_port),
            "INFERENCE_PORT": str(free_port()),
            "LITELLM_MASTER_KEY": KEY,
            "CTX_SIZE": "2048",
            "PARALLEL": "1",
            "MAX_TOKENS": "16",
            **settings,
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.env_file.chmod(0o600)

    def environment(self, **extra: str) -> dict[str, str]:
        if self.via == "ssh":
            env = self.host.ssh_env()
        elif self.via == "box":
            env = self.host.client_env(DOCKER_CONTEXT="gpu-box")
        else:
            env = self.host.client_env(REQUESTS_CA_BUNDLE=CA_BUNDLE)
        env["PYTHONPATH"] = str(REPO)
        env.update(extra)
        return env

    def engine_environment(self) -> dict[str, str]:
        """`environment()` with the context `--context` names (for code that is not the CLI)."""
        env = self.environment()
        if self.via == "tls":
            from stack.engine.endpoint import CONTEXT_VARIABLE

            env[CONTEXT_VARIABLE] = "gpu-tls"
        return env

    def command(self, *args: str) -> list[str]:
        context = ["--context", "gpu-tls"] if self.via == "tls" else []
        return [sys.executable, "-m", "cli.main", "--env-file", str(self.env_file), *context, *args]

    def cli(
        self, *args: str, check: bool = True, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environment(**env),
            cwd=self.folder,
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    @contextmanager
    def client_env(self) -> Iterator[None]:
        """This process's environment as the CLI's (for in-process calls)."""
        saved = dict(os.environ)
        env = self.engine_environment()
        os.environ.clear()
        os.environ.update(env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def settings(self) -> Any:
        from stack.settings import load_settings

        with self.client_env():
            return load_settings(self.env_file)

    # --- the host's side ------------------------------------------------------------------

    def containers(self, *, helpers: bool = False) -> list[Any]:
        """The stack's containers on the host (its short-lived helpers only if asked)."""
        label = f"llm-tui.stack={self.stack}"
        found = self.host.admin().containers.list(all=True, filters={"label": label})
        return [c for c in found if helpers or c.labels.get("llm-tui.role") != "helper"]

    def container(self, role: str) -> Any:
        return self.host.admin().containers.get(f"{self.stack}-{role}")

    def models_on_host(self) -> list[str]:
        """Model files in the models volume, as the host sees them (hidden files aside)."""
        admin = self.host.admin()
        output = admin.containers.run(
            "llm-tui-test/busybox:1",
            ["sh", "-c", "cd /models && find . -type f ! -name '.*' | sort"],
            volumes={f"{self.stack}-models": {"bind": "/models", "mode": "ro"}},
            remove=True,
        )
        return [line[2:] for line in output.decode().split()]

    def cleanup(self) -> None:
        admin = self.host.admin()
        for container in self.containers(helpers=True):
            container.remove(force=True)
        for network in admin.networks.list(names=[self.stack]):
            network.remove()
        for volume in admin.volumes.list(filters={"label": f"llm-tui.stack={self.stack}"}):
            volume.remove(force=True)


def hub_with_models(host: RemoteHost, tmp: Path) -> FakeHub:
    """A fake Hub the client and the host both reach, with two tiny GGUF repos."""
    hub = FakeHub(host=host.client_address).start()
    for name, seed in (("alpha", 1), ("beta", 2)):
        path = tmp / f"{name}.gguf"
        write_tiny_model(path, name=name, seed=seed)
        hub.add_repo(f"org/{name}-GGUF", {f"{name}-Q8_0.gguf": path.read_bytes()})
    return hub
