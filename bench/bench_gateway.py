"""The gateway's cost: a streamed chat through LiteLLM vs straight to llama-server.

    .venv/bin/python bench/bench_gateway.py [--runs 30] [--json PATH]

A real llama-server (the tiny test model, on the CPU) and a real LiteLLM proxy with the
generated config, both on loopback. Requests alternate between the two routes; reported:
time to first token (p50 and p99) and decode tokens/s, each with the direct route as the
reference. The tiny model decodes far faster than a real one on a GPU, so the added
milliseconds are the number that carries over, not the ratio.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Result, cli, finish, percentile, result  # noqa: E402
from stack.engine.gateway import write_config  # noqa: E402
from stack.settings import load_settings  # noqa: E402
from tests.support.gguf_factory import write_tiny_model  # noqa: E402
from tests.support.litellm_proxy import LiteLLMProxy  # noqa: E402
from tests.support.llama_server import LlamaServer  # noqa: E402

KEY = "sk-bench-" + "g" * 32
TOKENS = 64


def stream_once(
    client: httpx.Client, url: str, key: str | None, max_tokens: int = TOKENS
) -> tuple[float, float]:
    """(seconds to the first content token, decode tokens/s after it)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {
        "model": "local-chat",
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Tell me about the sea."}],
    }
    start = time.perf_counter()
    first = None
    tokens = 0
    with client.stream("POST", f"{url}/chat/completions", json=body, headers=headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            usage = event.get("usage")
            if usage:
                tokens = int(usage.get("completion_tokens") or tokens)
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content") and first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    if first is None:
        raise RuntimeError(f"no token from {url}")
    return first - start, max(tokens - 1, 1) / max(end - first, 1e-9)


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    runs = max(args.runs, 10)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        home = Path(tmp)
        (home / "models").mkdir()
        model = write_tiny_model(home / "models" / "tiny.gguf", name="tiny", seed=1)
        (home / ".env").write_text(f"CHAT_MODEL=tiny.gguf\nLITELLM_MASTER_KEY={KEY}\n")
        settings = load_settings(home / ".env")
        with LlamaServer(model, parallel=1) as llama:
            config = write_config(settings, api_bases={"chat": llama.base_url, "code": ""})
            with LiteLLMProxy(config, master_key=KEY) as proxy, httpx.Client(timeout=60) as c:
                for _ in range(3):  # warm both routes (connection pools, first load)
                    stream_once(c, llama.base_url, None)
                    stream_once(c, proxy.base_url, KEY)
                direct: list[tuple[float, float]] = []
                gateway: list[tuple[float, float]] = []
                for i in range(runs):
                    pair = [(direct, llama.base_url, None), (gateway, proxy.base_url, KEY)]
                    for samples, url, key in pair if i % 2 == 0 else reversed(pair):
                        samples.append(stream_once(c, url, key))
    ttft_d = [t * 1000 for t, _ in direct]
    ttft_g = [t * 1000 for t, _ in gateway]
    added = [g - d for g, d in zip(ttft_g, ttft_d, strict=True)]
    results: list[Result] = [
        result(
            "time to first token through the gateway, p50",
            ttft_g,
            "ms",
            reference=ttft_d,
            reference_name="straight to llama-server",
        ),
        Result(
            "time to first token through the gateway, p99",
            percentile(ttft_g, 99),
            "ms",
            runs=runs,
            reference=percentile(ttft_d, 99),
            reference_name="straight to llama-server",
        ),
        result(
            "time the gateway adds before the first token, p50",
            added,
            "ms",
            target="<= 50",
            note="LiteLLM parses, routes and re-streams each request",
        ),
        result(
            "decode speed through the gateway",
            [s for _, s in gateway],
            "tok/s",
            reference=[s for _, s in direct],
            reference_name="straight to llama-server",
            target=">= 300",
            note="LiteLLM re-streams every chunk in Python, so the gateway has a ceiling: "
            "the tiny CPU model outruns it, a real GPU (FACTS: an 8B decodes 228-265 tok/s "
            "on an H100, ~40 on an RTX 4050) stays under it",
        ),
    ]
    finish(results, args.json)


if __name__ == "__main__":
    main()
