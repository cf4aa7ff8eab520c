"""A real ``llama-server`` process on a free loopback port, for the integration tier.

The binary comes from ``scripts/build-llama-server`` (a static CPU build cached outside the
clone) or from ``$LLM_TUI_LLAMA_SERVER``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.net import free_port
from tests.support.tiers import unavailable

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
DEFAULT_CACHE = Path.home() / ".cache" / "llm-tui-test"


def llama_server_binary() -> Path | None:
    """The llama-server to test against, or None when it has not been built."""
    override = os.environ.get("LLM_TUI_LLAMA_SERVER")
    if override:
        candidate = Path(override).expanduser()
    else:
        cache = Path(os.environ.get("LLM_TUI_CACHE") or DEFAULT_CACHE).expanduser()
        candidate = cache / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}" / "llama-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def require_llama_server_binary() -> Path:
    """For fixtures: the binary, or skip (fail under CI) with how to build it."""
    binary = llama_server_binary()
    if binary is None:
        unavailable(
            "llama-server",
            "binary not built (run scripts/build-llama-server or set LLM_TUI_LLAMA_SERVER)",
        )
    return binary


class LlamaServerError(RuntimeError):
    """llama-server exited or never became healthy; ``output`` holds its last log lines."""

    def __init__(self, message: str, *, returncode: int | None, output: str) -> None:
        super().__init__(f"{message}\n--- llama-server output (tail) ---\n{output}")
        self.returncode = returncode
        self.output = output


class LlamaServer:
    """``with LlamaServer(model) as server:`` starts llama-server and waits for /health."""

    def __init__(
        self,
        model: Path,
        *,
        alias: str = "local-chat",
        ctx: int = 2048,
        parallel: int = 2,
        threads: int | None = 2,
        extra: Sequence[str] = (),
        binary: Path | None = None,
    ) -> None:
        self.model = Path(model)
        self.alias = alias
        self.ctx = ctx
        self.parallel = parallel
        self.threads = threads
        self.extra = list(extra)
        self.binary = binary or llama_server_binary()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="llama-server-"))
        self.log_path = self._dir / "llama-server.log"
        self._final_log: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def command(self) -> list[str]:
        if self.binary is None:
            raise LlamaServerError("llama-server binary not found", returncode=None, output="")
        cmd = [
            str(self.binary),
            "-m", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "-a", self.alias,
            "-c", str(self.ctx),
            "-np", str(self.parallel),
            "-ngl", "0",
            "--metrics",
        ]  # fmt: skip
        if self.threads is not None:
            cmd += ["-t", str(self.threads)]
        return cmd + self.extra

    def start(self, timeout: float = 30) -> LlamaServer:
        if self.process is not None:
            raise RuntimeError("llama-server already started")
        # LLAMA_ARG_* variables would silently override the flags above.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
        began = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the test run must not hit it first
            )
        deadline = began + timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    self.stop()
                    raise LlamaServerError(
                        f"llama-server exited with code {code} while loading {self.model.name}",
                        returncode=code,
                        output=self.tail(),
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        self.startup_s = time.monotonic() - began
                        return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise LlamaServerError(
                        f"llama-server not healthy after {timeout:.0f} s",
                        returncode=self.process.returncode,
                        output=self.tail(),
                    )
                time.sleep(0.05)

    def stop(self, timeout: float = 5) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL) and return its exit code."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._final_log is None and self._dir.exists():
            self._final_log = self.log_text()
            shutil.rmtree(self._dir, ignore_errors=True)
        return None if proc is None else proc.returncode

    def log_text(self) -> str:
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> LlamaServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
