"""Engine benchmarks against a real Docker Engine and the test images (GPU=none).

    eval "$(scripts/dockerd start)"; .venv/bin/python scripts/test-images
    .venv/bin/python bench/bench_engine.py [--rounds 5]

Measures, side by side in one run (this machine is noisy, so ratios and medians):
- swap overhead: `Engine.swap` → first streamed token of the new model through the
  unchanged gateway, minus a bare `run` of the same image/model → first streamed token
  straight from llama-server (target ≤ 1.0 s);
- `up` with everything already running (target ≤ 0.5 s) and `llm-tui status --json` as a
  process (target ≤ 0.3 s);
- log following from a container flooding stdout (target ≥ 50,000 lines/s, bounded memory).
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def bench_swap(client: docker.DockerClient, home: Path, rounds: int) -> dict[str, float]:
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
        engine.swap(model, wait=False)
        first_token(gateway, KEY)
        swaps.append(time.perf_counter() - start)
        engine = Engine(load_settings(home / ".env"), client=client)
    return {
        "swap_to_first_token_s": statistics.median(swaps),
        "bare_start_to_first_token_s": statistics.median(bares),
        "swap_overhead_s": statistics.median(s - b for s, b in zip(swaps, bares, strict=True)),
    }


def bench_up_and_status(client: docker.DockerClient, home: Path, rounds: int) -> dict[str, float]:
    ups = []
    for _ in range(rounds):
        engine = Engine(load_settings(home / ".env"))  # a fresh client, as the CLI would
        start = time.perf_counter()
        engine.up(timeout=60)
        ups.append(time.perf_counter() - start)
        engine.close()
    statuses = []
    command = [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), "status"]
    for _ in range(rounds):
        start = time.perf_counter()
        out = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
        statuses.append(time.perf_counter() - start)
        json.loads(out.stdout)
    return {"up_noop_s": statistics.median(ups), "status_json_s": statistics.median(statuses)}


def bench_logs(client: docker.DockerClient, lines: int = 400_000) -> dict[str, float]:
    """Follow a flooded container's logs: speed in one pass, peak memory in another
    (tracemalloc slows every allocation, so it must not be on while timing)."""
    container = client.containers.run(
        BUSYBOX_IMAGE, ["seq", "1", str(lines)], detach=True, labels={"llm-tui.bench": "1"}
    )
    try:
        container.wait(timeout=60)
        start = time.perf_counter()
        count = sum(len(b) for b in LogFollower(container, timestamps=True).batches())
        elapsed = time.perf_counter() - start
        tracemalloc.start()
        for _ in LogFollower(container, timestamps=True).batches():
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        container.remove(force=True)
    assert count == lines, count
    return {"log_lines_per_s": count / elapsed, "log_peak_mib": peak / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    client = docker.from_env(timeout=60)
    stack = "bench" + uuid.uuid4().hex[:6]
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
            results = bench_swap(client, home, args.rounds)
            results |= bench_up_and_status(client, home, args.rounds)
        finally:
            Engine(load_settings(home / ".env"), client=client).down(remove_network=True)
    results |= bench_logs(client)
    targets = {
        "swap_overhead_s": ("<=", 1.0),
        "up_noop_s": ("<=", 0.5),
        "status_json_s": ("<=", 0.3),
        "log_lines_per_s": (">=", 50_000),
    }
    failed = False
    for name, value in results.items():
        verdict = ""
        if name in targets:
            op, target = targets[name]
            ok = value <= target if op == "<=" else value >= target
            failed |= not ok
            verdict = f"{'ok' if ok else 'MISSED'} (target {op} {target:g})"
        print(f"{name:<30} {value:>12.3f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
