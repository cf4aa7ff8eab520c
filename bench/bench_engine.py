"""Engine benchmarks against a real Docker Engine and the test images (GPU=none).

    eval "$(scripts/dockerd start)"; .venv/bin/python scripts/test-images
    .venv/bin/python bench/bench_engine.py [--runs 5] [--json PATH]

Measures, side by side in one run (this machine is noisy, so ratios and medians):
- swap overhead: `Engine.swap` → first streamed token of the new model through the
  unchanged gateway, minus a bare `run` of the same image/model → first streamed token
  straight from llama-server (target ≤ 1.0 s);
- `up` with everything already running (target ≤ 0.5 s) and `llm-tui status --json` as a
  process (target ≤ 0.3 s);
- log following from a container flooding stdout (target ≥ 50,000 lines/s, bounded memory).
Exits 1 when a target is missed. References beside ours: the bare start, `docker ps`,
`docker logs`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Result, alternate, cli, finish, result  # noqa: E402
from stack.engine import Engine  # noqa: E402
from stack.engine.logs import LogFollower  # noqa: E402
from stack.settings import load_settings  # noqa: E402
from tests.support.gguf_factory import write_tiny_model  # noqa: E402
from tests.support.net import free_port  # noqa: E402

LLAMA_IMAGE = "llm-tui-test/llama-server:cpu"
LITELLM_IMAGE = "llm-tui-test/litellm:1.106.2"
BUSYBOX_IMAGE = "llm-tui-test/busybox:1"
KEY = "sk-bench-" + "b" * 32


def first_token(url: str, key: str | None = None, deadline_s: float = 120) -> None:
    """Block until ``url`` (…/v1) streams a first content token; retries while starting."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {
        "model": "local-chat",
        "stream": True,
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "hi"}],
    }
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with httpx.stream(
                "POST", f"{url}/chat/completions", json=body, headers=headers, timeout=30
            ) as response:
                if response.status_code == 200:
                    for line in response.iter_lines():
                        if line.startswith("data: ") and '"content"' in line:
                            return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(url)


def bare_start(client: docker.DockerClient, models: Path, model: str) -> float:
    """Start the inference image on its own and time run() → first streamed token."""
    port = free_port()
    start = time.perf_counter()
    container = client.containers.run(
        LLAMA_IMAGE,
        ["-m", f"/models/{model}", "--host", "0.0.0.0", "--port", "8080", "-a", "local-chat"],
        detach=True,
        init=True,
        volumes={str(models): {"bind": "/models", "mode": "ro"}},
        ports={"8080/tcp": ("127.0.0.1", port)},
        labels={"llm-tui.bench": "1"},
    )
    try:
        first_token(f"http://127.0.0.1:{port}/v1")
        return time.perf_counter() - start
    finally:
        container.remove(force=True)


def bench_swap(client: docker.DockerClient, home: Path, rounds: int) -> list[Result]:
    models = home / "models"
    engine = Engine(load_settings(home / ".env"), client=client)
    engine.up(timeout=120)
    gateway = engine.settings.gateway_url.replace("localhost", "127.0.0.1")
    swaps, bares = [], []
    names = ["beta.gguf", "alpha.gguf"]
    for i in range(rounds):
        model = names[i % 2]
        bares.append(bare_start(client, models, model))
        start = time.perf_counter()
        engine.swap(model)  # waits for /health, as `llm-tui swap` and the TUI do
        first_token(gateway, KEY)
        swaps.append(time.perf_counter() - start)
        engine = Engine(load_settings(home / ".env"), client=client)
    overheads = [s - b for s, b in zip(swaps, bares, strict=True)]
    return [
        result(
            "swap to the first token through the gateway",
            swaps,
            "s",
            reference=bares,
            reference_name="a bare container start + load, first token straight from it",
        ),
        result(
            "what a swap adds to a bare start",
            overheads,
            "s",
            target="<= 1.0",
            note="writes .env, recreates inference only, waits for /health, keeps the gateway",
        ),
    ]


def bench_up_and_status(
    client: docker.DockerClient, home: Path, rounds: int, stack: str
) -> list[Result]:
    ups = []
    for _ in range(rounds):
        engine = Engine(load_settings(home / ".env"))  # a fresh client, as the CLI would
        start = time.perf_counter()
        engine.up(timeout=60)
        ups.append(time.perf_counter() - start)
        engine.close()
    command = [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), "status"]
    docker_ps = ["docker", "ps", "--all", "--filter", f"label=llm-tui.stack={stack}"]

    def status() -> float:
        start = time.perf_counter()
        out = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - start
        json.loads(out.stdout)
        return elapsed

    def ps() -> float:
        start = time.perf_counter()
        subprocess.run(docker_ps, capture_output=True, check=True)
        return time.perf_counter() - start

    statuses, pses = alternate(rounds, status, ps)
    return [
        result("up with everything already running", ups, "s", target="<= 0.5"),
        result(
            "llm-tui status --json, a process",
            statuses,
            "s",
            reference=pses,
            reference_name="docker ps --filter (the Docker CLI)",
            target="<= 0.3",
            note="read straight from the local socket (no docker import); the interpreter, "
            "the settings and the plan (its YAML gateway config) are what is left",
        ),
    ]


def bench_logs(client: docker.DockerClient, rounds: int, lines: int = 400_000) -> list[Result]:
    """Read a flooded container's logs: ours vs `docker logs` to /dev/null; peak memory in
    another pass (tracemalloc slows every allocation, so it must not be on while timing)."""
    container = client.containers.run(
        BUSYBOX_IMAGE, ["seq", "1", str(lines)], detach=True, labels={"llm-tui.bench": "1"}
    )
    try:
        container.wait(timeout=60)

        def ours() -> float:
            start = time.perf_counter()
            count = sum(len(b) for b in LogFollower(container, timestamps=True).batches())
            assert count == lines, count
            return count / (time.perf_counter() - start)

        def theirs() -> float:
            start = time.perf_counter()
            with open(os.devnull, "wb") as null:
                subprocess.run(["docker", "logs", "-t", container.id], stdout=null, check=True)
            return lines / (time.perf_counter() - start)

        rates, references = alternate(rounds, ours, theirs)
        tracemalloc.start()
        for _ in LogFollower(container, timestamps=True).batches():
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        container.remove(force=True)
    return [
        result(
            f"log reading, {lines:,} lines",
            rates,
            "lines/s",
            reference=references,
            reference_name="docker logs -t > /dev/null",
            target=">= 50000",
        ),
        result("peak memory while reading them", [peak / 2**20], "MiB", target="<= 16"),
    ]


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    client = docker.from_env(timeout=60)
    stack = "bench" + uuid.uuid4().hex[:6]
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "models").mkdir()
        write_tiny_model(home / "models" / "alpha.gguf", name="alpha", seed=1)
        write_tiny_model(home / "models" / "beta.gguf", name="beta", seed=2)
        (home / ".env").write_text(
            f"STACK_NAME={stack}\nCHAT_MODEL=alpha.gguf\nGPU=none\nINFERENCE_IMAGE={LLAMA_IMAGE}\n"
            f"GATEWAY_IMAGE={LITELLM_IMAGE}\nAPI_GATEWAY_PORT={free_port()}\nINFERENCE_PORT=\n"
            f"LITELLM_MASTER_KEY={KEY}\nCTX_SIZE=2048\nPARALLEL=1\n"
        )
        try:
            results += bench_swap(client, home, args.runs)
            results += bench_up_and_status(client, home, args.runs, stack)
        finally:
            Engine(load_settings(home / ".env"), client=client).down(remove_network=True)
    results += bench_logs(client, max(3, args.runs // 2))
    finish(results, args.json)


if __name__ == "__main__":
    main()
