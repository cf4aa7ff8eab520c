"""A real LiteLLM proxy process on loopback, for integration tests.

LiteLLM lives in its own virtualenv (``scripts/litellm-venv``), never in the project's: the
app only talks HTTP to it. Point ``LLM_TUI_LITELLM`` at a ``litellm`` executable to use
another install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from tests.support.net import free_port

LITELLM_VERSION = "1.106.2"

# Inherited variables that would make the proxy reach past loopback (a database, a cache,
# a callback service) or change how it reads its config. Tests pass what they need in
# ``env`` instead.
_SCRUBBED_ENV = (
    "DATABASE_URL",
    "DATABASE_URL_READ_REPLICA",
    "DIRECT_URL",
    "STORE_MODEL_IN_DB",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_URL",
    "USE_AWS_KMS",
    "CONFIG_FILE_PATH",
    "WORKER_CONFIG",
    "LITELLM_LOG",
    "LITELLM_DEV_ENV_HOT_RELOAD",
)

# Fixed settings for every proxy started here:
# - LITELLM_LOCAL_MODEL_COST_MAP: use the bundled price list instead of downloading it
#   from GitHub at import (a retried fetch that stalls startup offline).
# - LITELLM_MODE=PRODUCTION: the default DEV mode calls ``load_dotenv()``, which would
#   pick up a ``.env`` found above the venv (e.g. ``~/.env``).
# - DISABLE_SCHEMA_UPDATE: never run ``prisma`` schema migrations (no database here).
_FIXED_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "DISABLE_SCHEMA_UPDATE": "true",
}


# Keep in step with scripts/litellm-venv.
PRISMA_VERSION = "0.11.0"


def default_cache_dir() -> Path:
    cache = os.environ.get("LLM_TUI_CACHE")
    return Path(cache) if cache else Path.home() / ".cache" / "llm-tui-test"


def litellm_executable() -> Path | None:
    """``LLM_TUI_LITELLM``, else the venv made by ``scripts/litellm-venv``; None if absent."""
    override = os.environ.get("LLM_TUI_LITELLM")
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    venv_root = default_cache_dir() / f"litellm-{LITELLM_VERSION}-prisma-{PRISMA_VERSION}"
    path = venv_root / "venv" / "bin" / "litellm"
    if (venv_root / "installed").is_file() and os.access(path, os.X_OK):
        return path
    return None


class LiteLLMProxy:
    """``litellm --config CONFIG`` on a free 127.0.0.1 port, as a context manager."""

    def __init__(
        self,
        config: Path,
        *,
        master_key: str,
        env: dict[str, str] | None = None,
        executable: Path | None = None,
    ) -> None:
        self.config = config
        self.master_key = master_key
        self.extra_env = dict(env or {})
        self.executable = executable
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._final_log = ""

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env.update(_FIXED_ENV)
        env["LITELLM_MASTER_KEY"] = self.master_key
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> None:
        if self._proc is not None:
            raise RuntimeError("LiteLLM proxy already started")
        executable = self.executable or litellm_executable()
        if executable is None:
            raise FileNotFoundError("no litellm executable (run scripts/litellm-venv)")
        # The proxy appends its cwd to sys.path; an empty temp dir keeps the project tree
        # (and any stray ``.env`` or ``litellm.secrets``) out of its reach.
        self._workdir = Path(tempfile.mkdtemp(prefix="llm-tui-litellm-"))
        self._log_path = self._workdir / "litellm.log"
        self._log_file = self._log_path.open("wb")
        argv = [
            str(executable),
            "--config",
            str(self.config.resolve()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            "1",
        ]
        self._proc = subprocess.Popen(
            argv,
            cwd=self._workdir,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_live(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_live(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise RuntimeError(
                        f"litellm exited with status {code} before becoming live:\n{self._tail()}"
                    )
                try:
                    response = client.get(f"{self.url}/health/liveliness")
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"litellm not live on {self.url} after {timeout:.0f} s:\n{self._tail()}"
                    )
                time.sleep(0.1)

    def _tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_text(self) -> str:
        if self._log_path is not None and self._log_path.exists():
            return self._log_path.read_text(errors="replace")
        return self._final_log

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # Own session: signal the whole group, in case the server forked workers.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None:
            self._final_log = self.log_text()
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._log_path = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
