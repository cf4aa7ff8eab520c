"""Throughput of our resumable downloader vs `huggingface_hub.hf_hub_download`.

Both fetch the same 1 GiB file from the same loopback server, alternating, for a few rounds;
the script prints MB/s for each and exits non-zero when ours is below 0.95x theirs.

    .venv/bin/python bench/bench_download.py [--size-mib 1024] [--rounds 5] [--dir DIR]

``--pacing`` instead measures, on the wall clock, what the tests check with an injected one:
that a bandwidth limit holds the transfer to its rate (within the limiter's quarter second of
burst) and that progress events come at most ten a second, about every 0.1 s:

    .venv/bin/python bench/bench_download.py --pacing [--size-mib 16] [--limit-mb 8]

The test fake Hub keeps every file in memory, so this script brings its own file-backed
server: a separate process (so it does not compete for our GIL) that answers HEAD and GET
with byte ranges on ``/{repo}/resolve/{rev}/{file}``, sends the headers `hf_hub_download`
needs (``X-Repo-Commit``, ``ETag``, ``Content-Length``) and streams bodies with
``sendfile``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REPO = "bench/one-GGUF"
FILE_NAME = "bench-Q4_K_M.gguf"
COMMIT = "b" * 40
MiB = 1024 * 1024
THRESHOLD = 0.95


# --- the server (runs in its own process) ------------------------------------------------


class _FileServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: Path, sha256: str, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _FileHandler)
        self.path = path
        self.size = path.stat().st_size
        self.sha256 = sha256

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr


class _FileHandler(BaseHTTPRequestHandler):
    server: _FileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        server = self.server
        if self.path.split("?")[0] != f"/{REPO}/resolve/{COMMIT}/{FILE_NAME}" and (
            self.path.split("?")[0] != f"/{REPO}/resolve/main/{FILE_NAME}"
        ):
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end, status = 0, server.size, 200
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and "," not in ranged:
            first, _, last = ranged[6:].partition("-")
            if first:
                start = int(first)
                end = min(int(last) + 1, server.size) if last else server.size
                status = 206
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{server.sha256}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{server.size}")
        self.end_headers()
        if not body:
            return
        self.wfile.flush()
        with open(server.path, "rb") as handle:
            try:
                self.connection.sendfile(handle, start, end - start)
            except OSError:
                self.close_connection = True


def serve(path: Path, sha256: str, host: str = "127.0.0.1") -> None:
    server = _FileServer(path, sha256, host)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# --- the measurement ---------------------------------------------------------------------


def make_file(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(16 * MiB, left))
            hasher.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    return hasher.hexdigest()


def run_ours(url: str, sha256: str, size: int, out: Path) -> float:
    from stack.hub.downloads import Downloader, DownloadRequest, JobState
    from stack.hub.files import RemoteFile

    request = DownloadRequest(REPO, (RemoteFile(FILE_NAME, size, sha256),), COMMIT)
    started = time.perf_counter()
    with Downloader(out, endpoint=url) as downloader:
        result = downloader.enqueue(request).wait()
    elapsed = time.perf_counter() - started
    if result.state is not JobState.DONE:
        raise SystemExit(f"our download failed: {result.error}")
    return elapsed


def run_theirs(url: str, sha256: str, size: int, out: Path) -> float:
    from huggingface_hub import hf_hub_download

    started = time.perf_counter()
    path = hf_hub_download(
        REPO, FILE_NAME, revision=COMMIT, endpoint=url, token=False, cache_dir=out
    )
    elapsed = time.perf_counter() - started
    if os.path.getsize(path) != size:
        raise SystemExit("hf_hub_download wrote the wrong size")
    return elapsed


def check_pacing(url: str, sha256: str, size: int, out: Path, limit: int) -> bool:
    """A limited download on the wall clock: its rate, and the spacing of its progress events."""
    from stack.hub.downloads import BURST, PROGRESS_INTERVAL, Downloader, DownloadRequest, JobState
    from stack.hub.files import RemoteFile

    stamps: list[float] = []
    request = DownloadRequest(REPO, (RemoteFile(FILE_NAME, size, sha256),), COMMIT)
    started = time.perf_counter()
    with Downloader(
        out,
        endpoint=url,
        bandwidth_limit=limit,
        on_progress=lambda _: stamps.append(time.monotonic()),
    ) as downloader:
        result = downloader.enqueue(request).wait()
    elapsed = time.perf_counter() - started
    if result.state is not JobState.DONE:
        raise SystemExit(f"our download failed: {result.error}")
    gaps = [b - a for a, b in itertools.pairwise(stamps[:-1])]  # not the final event
    smallest = min(gaps, default=PROGRESS_INTERVAL)
    rate = size / elapsed
    print(f"limit  {limit / 1e6:8.1f} MB/s, got {rate / 1e6:8.1f} MB/s in {elapsed:.2f} s")
    print(f"events {len(stamps):8d}, smallest gap {smallest * 1000:.1f} ms")
    checks = {
        # An idle limiter lets BURST seconds of bytes through at once, never more.
        "not faster than the limit": elapsed >= size / limit - BURST,
        "close to the limit (loopback is much faster)": rate >= 0.9 * limit,
        "at most ten progress events a second": len(stamps) <= elapsed / PROGRESS_INTERVAL + 2,
        "progress events about 0.1 s apart": smallest >= PROGRESS_INTERVAL - 0.001,
    }
    for what, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'}   {what}")
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=None, help="default 1024 (16: --pacing)")
    parser.add_argument("--rounds", "--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here (for bench/run)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: tmp)")
    parser.add_argument("--pacing", action="store_true", help="check the limit and progress pace")
    parser.add_argument("--limit-mb", type=float, default=8.0, help="MB/s for --pacing")
    # FILE SHA256 [HOST]: the server process (bench_remote.py has it listen on another address).
    parser.add_argument("--serve", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), args.serve[1], *args.serve[2:3])
        return 0

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if args.size_mib is None:
        args.size_mib = 16 if args.pacing else 1024
    size = args.size_mib * MiB
    scratch = Path(tempfile.mkdtemp(prefix="bench-download-", dir=args.dir))
    server: subprocess.Popen[str] | None = None
    try:
        source = scratch / "source.gguf"
        print(f"generating {args.size_mib} MiB in {scratch} ...", flush=True)
        sha256 = make_file(source, size)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(source), sha256],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        if args.pacing:
            out = scratch / "pacing"
            out.mkdir()
            return 0 if check_pacing(url, sha256, size, out, int(args.limit_mb * 1e6)) else 1
        ours: list[float] = []
        theirs: list[float] = []
        for round_no in range(1, args.rounds + 1):
            # Alternate who goes first so page-cache and CPU-frequency drift cancel out.
            order = [("ours", run_ours), ("theirs", run_theirs)]
            if round_no % 2 == 0:
                order.reverse()
            for label, runner in order:
                out = scratch / f"{label}-{round_no}"
                out.mkdir()
                os.sync()  # the last run's dirty pages must not be flushed on this one's clock
                elapsed = runner(url, sha256, size, out)
                (ours if label == "ours" else theirs).append(elapsed)
                print(f"round {round_no} {label:<6} {size / elapsed / 1e6:8.1f} MB/s", flush=True)
                shutil.rmtree(out)
        rate_ours = size * len(ours) / sum(ours) / 1e6
        rate_theirs = size * len(theirs) / sum(theirs) / 1e6
        ratio = rate_ours / rate_theirs
        print(f"ours   {rate_ours:8.1f} MB/s (mean over {len(ours)} rounds)")
        print(f"theirs {rate_theirs:8.1f} MB/s (hf_hub_download)")
        print(f"ratio  {ratio:8.3f} (threshold {THRESHOLD})")
        if args.json:
            from bench.common import report, result

            row = result(
                f"download of {args.size_mib} MiB from a local Hub server",
                [size / t / 1e6 for t in ours],
                "MB/s",
                reference=[size / t / 1e6 for t in theirs],
                reference_name="huggingface_hub.hf_hub_download",
                target=f">= {THRESHOLD}x",
                on="ratio",
                note="resumable .part, sha256 verified while it streams; same server, same file",
            )
            return report([row], args.json)
        return 0 if ratio >= THRESHOLD else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
