"""A Docker Engine on another machine vs this machine's, side by side in one run.

    eval "$(scripts/dockerd start)"; .venv/bin/python scripts/test-images
    .venv/bin/python bench/bench_remote.py [--rounds 5] [--size-mib 2048]

The "other machine" is tests/support/remote_host.py (its own network and mount
namespaces, reached over SSH with docker[ssh], as a laptop reaches a GPU box; needs root).
Measures, alternating local and remote so that this noisy machine's drift cancels out:
- `llm-tui status --json` as a process, over SSH vs the local socket (target ≤ 2.0x), with
  the login the last command kept and with a new one;
- following a flooding container's logs over SSH (target ≥ 40,000 lines/s), beside the
  same over the local socket;
- a download into the remote host's models (the helper container runs the downloader
  there) vs a local download, both from the same Hub-like file server on this machine
  (bench_download.py's, listening where the host reaches it) (target ≥ 0.9x).
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Result, report  # noqa: E402
from stack.engine.logs import LogFollower  # noqa: E402
from tests.support.docker_engine import BUSYBOX_IMAGE, LITELLM_IMAGE  # noqa: E402
from tests.support.remote_host import RUN, RemoteHost, start_remote_host  # noqa: E402

STATUS_TARGET = 2.0
LOG_TARGET = 40_000
DOWNLOAD_TARGET = 0.9
MiB = 1024 * 1024
BENCH_DOWNLOAD = ROOT / "bench" / "bench_download.py"
REPO, FILE_NAME, COMMIT = "bench/one-GGUF", "bench-Q4_K_M.gguf", "b" * 40


def with_env(env: dict[str, str]) -> Any:
    """Run a block with ``env`` as this process's environment (settings read it)."""

    class Scope:
        def __enter__(self) -> None:
            self.saved = dict(os.environ)
            os.environ.clear()
            os.environ.update(env)

        def __exit__(self, *exc: object) -> None:
            os.environ.clear()
            os.environ.update(self.saved)

    return Scope()


# --- status ----------------------------------------------------------------------------------


def bench_status(local: Any, host: RemoteHost, home: Path, rounds: int) -> dict[str, float]:
    """Two containers of the stack on each engine; `status --json` against each."""
    stack = "bench" + uuid.uuid4().hex[:6]
    (home / ".env").write_text(f"STACK_NAME={stack}\nGPU=none\nLITELLM_MASTER_KEY=sk-b\n")
    made = []
    for client in (local, host.admin()):
        for role in ("inference", "api-gateway"):
            made.append(
                client.containers.run(
                    BUSYBOX_IMAGE,
                    ["sleep", "3600"],
                    detach=True,
                    init=True,
                    network_mode="none",  # status reads containers, not their networks
                    name=f"{stack}-{role}",
                    labels={"llm-tui.stack": stack, "llm-tui.role": role},
                )
            )
    command = [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), "status"]
    local_env = {**os.environ}
    remote_env = host.ssh_env()
    kept = kept_login(remote_env)
    times: dict[str, list[float]] = {"local": [], "ssh": [], "ssh_first": []}
    try:
        for round_no in range(rounds + 1):
            order = [("local", local_env), ("ssh_first", remote_env), ("ssh", remote_env)]
            order = order[round_no % 3 :] + order[: round_no % 3]
            for label, env in order:
                if label == "ssh_first":  # the login the last command kept, closed
                    subprocess.run(["ssh", "-S", kept, "-O", "exit", "host"], capture_output=True)
                start = time.perf_counter()
                subprocess.run([*command, "--json"], env=env, capture_output=True, check=True)
                if round_no:  # the first round warms the page cache
                    times[label].append(time.perf_counter() - start)
    finally:
        subprocess.run(["ssh", "-S", kept, "-O", "exit", "host"], capture_output=True)
        for container in made:
            container.remove(force=True)
    local_s, ssh_s = statistics.median(times["local"]), statistics.median(times["ssh"])
    first_s = statistics.median(times["ssh_first"])
    return {
        "status_local_s": local_s,
        "status_ssh_s": ssh_s,
        "status_ratio": ssh_s / local_s,
        "status_ssh_first_s": first_s,
        "status_first_ratio": first_s / local_s,
    }


def kept_login(env: dict[str, str]) -> str:
    """The socket the ssh client keeps `status`'s login open on (stack.engine.direct_api)."""
    from stack.engine.direct_api import ssh_command
    from stack.engine.endpoint import resolve_endpoint

    command = ssh_command(resolve_endpoint(env), env)
    assert command is not None
    return next(p.partition("=")[2] for p in command if p.startswith("ControlPath="))


# --- logs ------------------------------------------------------------------------------------


def follow_rate(container: Any, lines: int) -> float:
    start = time.perf_counter()
    count = sum(len(batch) for batch in LogFollower(container, timestamps=True).batches())
    elapsed = time.perf_counter() - start
    assert count == lines, count
    return count / elapsed


def bench_logs(local: Any, host: RemoteHost, lines: int = 400_000) -> dict[str, float]:
    from stack.engine.connection import connect

    flooded = []
    for client in (local, host.admin()):
        container = client.containers.run(
            BUSYBOX_IMAGE,
            ["seq", "1", str(lines)],
            detach=True,
            network_mode="none",
            labels={"llm-tui.bench": "1"},
        )
        container.wait(timeout=120)
        flooded.append(container)
    try:
        local_rate = follow_rate(flooded[0], lines)
        with with_env(host.ssh_env()):
            remote = connect(timeout=60)
            try:
                ssh_rate = follow_rate(remote.containers.get(flooded[1].id), lines)
            finally:
                remote.close()
    finally:
        for container in flooded:
            container.remove(force=True)
    return {"log_local_lines_per_s": local_rate, "log_ssh_lines_per_s": ssh_rate}


# --- downloads -------------------------------------------------------------------------------


def bench_downloads(host: RemoteHost, scratch: Path, size: int, rounds: int) -> dict[str, float]:
    from stack.hub.downloads import Downloader, DownloadRequest, JobState
    from stack.hub.files import RemoteFile
    from stack.hub.remote_downloads import RemoteDownloader
    from stack.settings import load_settings

    sys.path.insert(0, str(BENCH_DOWNLOAD.parent))
    from bench_download import make_file

    source = scratch / "source.gguf"
    print(f"generating {size // MiB} MiB ...", flush=True)
    sha256 = make_file(source, size)
    server = subprocess.Popen(
        [sys.executable, str(BENCH_DOWNLOAD), "--serve", str(source), sha256, host.client_address],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = f"http://{host.client_address}:{server.stdout.readline().strip()}"
    request = DownloadRequest(REPO, (RemoteFile(FILE_NAME, size, sha256),), COMMIT)
    stack = "bench" + uuid.uuid4().hex[:6]
    home = scratch / "home"
    home.mkdir()
    (home / ".env").write_text(
        f"STACK_NAME={stack}\nGATEWAY_IMAGE={LITELLM_IMAGE}\nHF_ENDPOINT={url}\n"
    )
    volume = f"{RUN}/data/volumes/{stack}-models/_data"
    times: dict[str, list[float]] = {"local": [], "remote": []}

    def local_run() -> float:
        out = scratch / "local"
        out.mkdir()
        try:
            start = time.perf_counter()
            with Downloader(out, endpoint=url) as downloader:
                result = downloader.enqueue(request).wait()
            elapsed = time.perf_counter() - start
        finally:
            shutil.rmtree(out)
        if result.state is not JobState.DONE:
            raise SystemExit(f"the local download failed: {result.error}")
        return elapsed

    def remote_run() -> float:
        with with_env(host.ssh_env()):
            settings = load_settings(home / ".env")
            start = time.perf_counter()
            downloader = RemoteDownloader(settings)
            try:
                result = downloader.enqueue(request).wait()
            finally:
                downloader.close()
            elapsed = time.perf_counter() - start
        host.run("rm", "-f", f"{volume}/{FILE_NAME}")
        if result.state is not JobState.DONE:
            raise SystemExit(f"the remote download failed: {result.error}")
        return elapsed

    try:
        for round_no in range(1, rounds + 1):
            order = [("local", local_run), ("remote", remote_run)]
            if round_no % 2 == 0:
                order.reverse()
            for label, run in order:
                os.sync()  # the last run's dirty pages are not flushed on this one's clock
                elapsed = run()
                times[label].append(elapsed)
                print(f"round {round_no} {label:<6} {size / elapsed / 1e6:8.1f} MB/s", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
        for volume_obj in host.admin().volumes.list(filters={"label": f"llm-tui.stack={stack}"}):
            volume_obj.remove(force=True)
    local_rate = size * len(times["local"]) / sum(times["local"]) / 1e6
    remote_rate = size * len(times["remote"]) / sum(times["remote"]) / 1e6
    return {
        "download_local_mb_s": local_rate,
        "download_remote_mb_s": remote_rate,
        "download_ratio": remote_rate / local_rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--download-rounds", type=int, default=2)
    parser.add_argument("--size-mib", type=int, default=2048, help="the download's size")
    parser.add_argument("--runs", type=int, help="--rounds, as bench/run names it")
    parser.add_argument("--json", type=Path, help="also write the results here (for bench/run)")
    args = parser.parse_args()
    if args.runs:
        args.rounds = args.runs
    local = docker.from_env(timeout=120)
    scratch = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    host = start_remote_host(scratch / "host", local, (BUSYBOX_IMAGE, LITELLM_IMAGE))
    try:
        results = bench_status(local, host, scratch, args.rounds)
        results |= bench_logs(local, host)
        results |= bench_downloads(host, scratch, args.size_mib * MiB, args.download_rounds)
    finally:
        host.stop()
        local.close()
        shutil.rmtree(scratch, ignore_errors=True)
    checks = {
        f"status over SSH / local ≤ {STATUS_TARGET}": results["status_ratio"] <= STATUS_TARGET,
        f"status over SSH, a new login / local ≤ {STATUS_TARGET}": (
            results["status_first_ratio"] <= STATUS_TARGET
        ),
        f"log following over SSH ≥ {LOG_TARGET:,} lines/s": (
            results["log_ssh_lines_per_s"] >= LOG_TARGET
        ),
        f"remote download / local ≥ {DOWNLOAD_TARGET}": (
            results["download_ratio"] >= DOWNLOAD_TARGET
        ),
    }
    for key, value in results.items():
        print(f"{key:<26} {value:,.3f}")
    for what, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'}  {what}")
    if args.json:
        report(rows(results, args), args.json)
    return 0 if all(checks.values()) else 1


def rows(results: dict[str, float], args: argparse.Namespace) -> list[Result]:
    """The table's rows for bench/run (medians of the rounds above)."""
    return [
        Result(
            "llm-tui status --json over SSH, the login kept from the last command",
            results["status_ssh_s"],
            "s",
            runs=args.rounds,
            reference=results["status_local_s"],
            reference_name="the same against the local socket",
            target=f"<= {STATUS_TARGET}x",
            ok=results["status_ratio"] <= STATUS_TARGET,
        ),
        Result(
            "llm-tui status --json over SSH, a new login",
            results["status_ssh_first_s"],
            "s",
            runs=args.rounds,
            reference=results["status_local_s"],
            reference_name="the same against the local socket",
            target=f"<= {STATUS_TARGET}x",
            ok=results["status_first_ratio"] <= STATUS_TARGET,
            note="`status` reads through the system ssh client (docker system dial-stdio, "
            "stack.engine.direct_api), its login begun before the parser and the settings "
            "load (~50 ms into the process, ~110 ms before) and kept a minute for the next "
            "command. What is left is the login, ~0.17 s here, ~80 ms of it two 40 ms "
            "delayed-ACK stalls (Nagle on both ends before the session; measured with "
            "quickack on the routes: 91 ms); OpenSSH offers no option for them",
        ),
        Result(
            "log following over SSH",
            results["log_ssh_lines_per_s"],
            "lines/s",
            reference=results["log_local_lines_per_s"],
            reference_name="the same container's logs over the local socket",
            target=f">= {LOG_TARGET}",
            ok=results["log_ssh_lines_per_s"] >= LOG_TARGET,
        ),
        Result(
            f"download of {args.size_mib} MiB into the remote host's models",
            results["download_remote_mb_s"],
            "MB/s",
            runs=args.download_rounds,
            reference=results["download_local_mb_s"],
            reference_name="a local download from the same Hub server",
            target=f">= {DOWNLOAD_TARGET}x",
            ok=results["download_ratio"] >= DOWNLOAD_TARGET,
            note="a fixed ~0.85 s before and after the bytes (a timeline of 2 GiB runs: the "
            "SSH login 0.19 s, the volume and image checks 0.05, the helper's create 0.08, "
            "its copy of `stack` 0.11, its start 0.13, Python and imports in it ~0.2 (httpx "
            "0.12), its removal 0.05), and the transfer itself at 280-310 MB/s against the "
            "local 320-440 in the same runs. Neither the link nor the container is the cause "
            "alone: a plain GET over the host's veth runs at 95-99 % of loopback, and the "
            "same Downloader in a container of the helper image on this machine's engine at "
            "par with it; what is left is the emulated host as a whole (its own dockerd, "
            "network namespace and volume) on the same two cores",
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
