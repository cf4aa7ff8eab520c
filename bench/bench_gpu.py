"""Decode speed on a real GPU: the stack against llama-bench, and the memory-bandwidth ceiling.

    bench/run --gpu            # or: .venv/bin/python bench/bench_gpu.py [--runs 3] [--json P]

Needs an NVIDIA GPU, the NVIDIA container runtime and a model: the `.env` of the current
folder (or LLM_TUI_ENV_FILE) names it (CHAT_MODEL in MODELS_DIR) with its INFERENCE_IMAGE
and flags. Side by side, alternating run by run:
- ours: a stack of its own (STACK_NAME llm-tui-bench-gpu, free ports, the user's stack is
  not touched) from those settings; tokens/s of a streamed answer through the gateway;
- the reference: `llama-bench -p 0 -n N` from the same llama.cpp build (the `full-cuda`
  image beside the `server-cuda` one), same model, GPU layers, flash attention, KV types;
- the ceiling: decode reads every weight once a token, so tokens/s cannot pass the card's
  memory bandwidth (NVML: bus width x memory clock x 2) over the model's bytes; the row
  says what share of it each side reaches.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Result, alternate, cli, finish, result  # noqa: E402

TOKENS = 256
BENCH_STACK = "llm-tui-bench-gpu"


def bandwidth_bytes_per_s() -> tuple[float, str]:
    """(bytes/s, GPU name) of GPU 0, from its bus width and top memory clock."""
    import pynvml

    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)
        clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        name = pynvml.nvmlDeviceGetName(handle)
    finally:
        pynvml.nvmlShutdown()
    return bus_bits / 8 * clock_mhz * 1e6 * 2, str(name)


def decode_rate(url: str, key: str) -> float:
    """Tokens/s after the first token of one streamed answer through the gateway."""
    import httpx

    from bench.bench_gateway import stream_once

    with httpx.Client(timeout=300) as client:
        return stream_once(client, url, key, TOKENS)[1]


def bench_image(inference_image: str) -> str:
    if "server-cuda" not in inference_image:
        raise SystemExit(f"INFERENCE_IMAGE={inference_image}: expected a server-cuda build")
    return inference_image.replace("server-cuda", "full-cuda")


def llama_bench(client: Any, settings: Any, model: str) -> float:
    """llama-bench's decode tokens/s for the same model and flags, in the full image."""
    from docker.types import DeviceRequest

    flags = [
        "-ngl",
        "99" if settings.gpu_layers in ("", "auto", "all") else str(settings.gpu_layers),
    ]
    flags += ["-fa", "0" if settings.flash_attn == "off" else "1"]
    flags += ["-ctk", settings.kv_cache_type, "-ctv", settings.kv_cache_type]
    output = client.containers.run(
        bench_image(settings.inference_image),
        ["--bench", "-m", f"/models/{model}", "-p", "0", "-n", str(TOKENS), *flags, "-o", "json"],
        volumes={str(settings.models_dir): {"bind": "/models", "mode": "ro"}},
        device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
        remove=True,
        stderr=False,
    )
    rows = json.loads(output)
    return float(next(r["avg_ts"] for r in rows if r.get("n_gen")))


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    from stack.engine import Engine
    from stack.settings import load_settings, set_settings
    from tests.support.net import free_port

    settings = load_settings()
    if not settings.chat_model:
        raise SystemExit("CHAT_MODEL is empty: pick a model first (llm-tui quickstart)")
    model_path = settings.models_dir / settings.chat_model
    bandwidth, gpu = bandwidth_bytes_per_s()
    ceiling = bandwidth / model_path.stat().st_size
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        env = Path(tmp) / ".env"
        env.write_text(settings.env_file.read_text() if settings.env_file.exists() else "")
        env.chmod(0o600)
        changes = {
            "STACK_NAME": BENCH_STACK,
            "API_GATEWAY_PORT": str(free_port()),
            "INFERENCE_PORT": "",
            "MODELS_DIR": str(settings.models_dir),
        }
        ours_settings = set_settings(load_settings(env), changes)
        engine = Engine(ours_settings)
        url = ours_settings.gateway_url.replace("localhost", "127.0.0.1")

        def ours() -> float:
            engine.up(timeout=600)
            try:
                decode_rate(url, ours_settings.litellm_master_key)  # warm: first load, graphs
                return decode_rate(url, ours_settings.litellm_master_key)
            finally:
                engine.down(remove_network=True)

        def theirs() -> float:
            return llama_bench(engine.client, ours_settings, settings.chat_model)

        rates, references = alternate(args.runs, ours, theirs)
    share = f"{max(rates) / ceiling:.0%} of the bandwidth ceiling"
    rows: list[Result] = [
        result(
            f"decode speed of {settings.chat_model} on {gpu}",
            rates,
            "tok/s",
            reference=references,
            reference_name=f"llama-bench -n {TOKENS}, same build and flags",
            target=">= 0.8x",
            on="ratio",
            note=f"through the gateway, streamed; ours reaches {share} "
            f"({bandwidth / 1e9:,.0f} GB/s over {model_path.stat().st_size / 1e9:.2f} GB)",
        ),
        result(
            "memory-bandwidth ceiling for that model",
            [ceiling],
            "tok/s",
            note="bus width x memory clock x 2 over the model's bytes: no decode passes it",
        ),
    ]
    finish(rows, args.json)


if __name__ == "__main__":
    main()
