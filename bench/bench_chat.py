"""The chat pane under a fast model: the real pane against Textual's plain MarkdownStream.

Run: ``.venv/bin/python bench/bench_chat.py [--rate 2000] [--kib 70]``.

A local SSE server (a process of its own, speaking the gateway's OpenAI format) streams
realistic markdown (headings, lists, tables, code fences, quotes) at ``--rate`` tokens/s
into one answer of ``--kib`` KiB. Each case runs the app headless in a fresh process, with
every frame converted to terminal output as a real terminal would get it, and reports:

- tok/s absorbed: tokens over the time from the first token's arrival to the frame that
  shows the whole answer (the server's own rate is the ceiling);
- event-loop lag: how late a 10 ms sleep wakes, p50 / p99 / max;
- first token: from its arrival in the client to the first frame that shows it;
- typing: a key pressed every 100 ms into the input, until the input holds it;
- exact: the pane's final text equals the streamed text.

The cases, side by side in the same run: ``markdownstream`` (one `Markdown` fed by
`Markdown.get_stream()`, the way Textual documents it) and ``pane`` (the real Chat screen,
its real client, its real conversation file). ``open`` times opening a saved conversation
of 500 messages. Targets (exit 1 on a miss): the pane's lag p99 ≤ 50 ms, first token
≤ 30 ms, tok/s ≥ 95 % of the rate, typing p99 ≤ 50 ms, exact text, open ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAG_TARGET_S = 0.050
FIRST_TOKEN_TARGET_S = 0.030
TYPING_TARGET_S = 0.050
RATE_SHARE_TARGET = 0.95
OPEN_TARGET_S = 0.5
OPEN_MESSAGES = 500
SIZE = (120, 40)
LAG_TICK_S = 0.010
TYPING_EVERY_S = 0.100
KEY = "sk-bench-" + "c" * 32


# --- what the model says --------------------------------------------------------------------

WORDS = [
    "model",
    "context",
    "tokens",
    "layer",
    "cache",
    "weights",
    "quant",
    "slot",
    "gateway",
    "server",
    "stream",
    "request",
    "answer",
    "kernel",
    "memory",
    "batch",
    "prompt",
    "sample",
    "decode",
    "thread",
    "socket",
    "buffer",
    "header",
    "table",
    "offset",
    "shard",
    "alias",
    "config",
    "value",
    "parser",
    "widget",
    "render",
    "frame",
]


def sentence(rng: random.Random, words: int) -> str:
    picked = [rng.choice(WORDS) for _ in range(words)]
    for index in range(len(picked)):
        roll = rng.random()
        if roll < 0.06:
            picked[index] = f"**{picked[index]}**"
        elif roll < 0.10:
            picked[index] = f"`{picked[index]}_{rng.randint(0, 99)}`"
        elif roll < 0.12:
            picked[index] = f"*{picked[index]}*"
    text = " ".join(picked)
    return text[0].upper() + text[1:] + "."


def section(rng: random.Random, number: int) -> str:
    """One section of an answer: a heading, prose, a list, a table, a fence, a quote."""
    parts = [f"## {number}. The {rng.choice(WORDS)} {rng.choice(WORDS)}\n"]
    parts.append(" ".join(sentence(rng, rng.randint(8, 16)) for _ in range(rng.randint(2, 4))))
    parts.append(
        "\n".join(
            f"- {sentence(rng, rng.randint(4, 9))}"
            + (f"\n  - {sentence(rng, 5)}" if rng.random() < 0.3 else "")
            for _ in range(rng.randint(3, 6))
        )
    )
    if rng.random() < 0.6:
        rows = [
            f"| {rng.choice(WORDS)} | {rng.randint(1, 9999)} | {sentence(rng, 3)} |"
            for _ in range(rng.randint(3, 6))
        ]
        parts.append("| name | value | note |\n|---|---:|---|\n" + "\n".join(rows))
    if rng.random() < 0.7:
        body = "\n".join(
            f"    {rng.choice(WORDS)}_{i} = {rng.choice(WORDS)}({rng.randint(0, 9)}, "
            f'"{rng.choice(WORDS)}")'
            for i in range(rng.randint(4, 14))
        )
        parts.append(f"```python\ndef {rng.choice(WORDS)}_{number}():\n{body}\n    return 0\n```")
    if rng.random() < 0.3:
        parts.append("> " + sentence(rng, 12))
    parts.append(
        "\n".join(f"{i}. {sentence(rng, rng.randint(5, 10))}" for i in range(1, rng.randint(3, 5)))
    )
    return "\n\n".join(parts) + "\n\n"


def realistic_markdown(size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    parts = ["# An answer\n\n"]
    number = 1
    while sum(map(len, parts)) < size:
        parts.append(section(rng, number))
        number += 1
    return "".join(parts)[:size]


TOKEN = re.compile(r"\s*[^\s]{1,4}|\s+")


def tokens(text: str) -> list[str]:
    """Pieces of about a real tokenizer's size (1 to 4 characters and the space before)."""
    pieces = TOKEN.findall(text)
    assert "".join(pieces) == text
    return pieces


# --- the local model ------------------------------------------------------------------------

SHORT_TOKENS = 150  # a question starting "short" gets this much of the answer


def serve(port: int, rate: float, size: int, reasoning: int) -> None:
    """The SSE server (run in a process of its own, so its work is not the app's)."""
    answer = tokens(realistic_markdown(size))
    thinking = tokens(realistic_markdown(reasoning, seed=3)) if reasoning else []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            question = str(body["messages"][-1]["content"])
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            if question.startswith("short"):
                events = [("content", piece) for piece in answer[:SHORT_TOKENS]]
            else:
                events = [("reasoning_content", piece) for piece in thinking]
                events += [("content", piece) for piece in answer]
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.stream(events)  # the client may go away mid-answer

        def stream(self, events: list[tuple[str, str]]) -> None:
            started = time.perf_counter()
            sent = 0
            while sent < len(events):
                due = min(len(events), int((time.perf_counter() - started) * rate) + 1)
                if due > sent:
                    self.wfile.write(
                        b"".join(
                            b"data: "
                            + json.dumps({"choices": [{"index": 0, "delta": {k: v}}]}).encode()
                            + b"\n\n"
                            for k, v in events[sent:due]
                        )
                    )
                    self.wfile.flush()
                    sent = due
                wait = started + sent / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            usage = {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"completion_tokens": len(events), "prompt_tokens": 12},
            }
            self.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- measuring inside the app ---------------------------------------------------------------


class Probe:
    """Frames, loop lag and key latency of one app run, first tokens of each answer."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.keys: list[float] = []
        self.firsts: list[float] = []  # first token on screen, one per answer
        self.first_arrival: float | None = None
        self.first_frame: float | None = None
        self.long_arrival: float | None = None
        self.done_frame: float | None = None
        self.cpu_began: float | None = None  # process CPU seconds (every thread) then
        self.cpu_done: float | None = None
        self.running = True
        self.long_asked = False  # the long answer was asked for (the short ones are done)
        self.shows_text: Callable[[], bool] = lambda: False
        self.shows_all: Callable[[], bool] = lambda: False

    def next_answer(self, shows_text: Callable[[], bool]) -> None:
        if self.first_arrival is not None and self.first_frame is not None:
            self.firsts.append(self.first_frame - self.first_arrival)
        self.first_arrival = self.first_frame = None
        self.shows_text = shows_text

    def on_frame(self) -> None:
        now = time.perf_counter()
        if self.first_frame is None and self.first_arrival is not None and self.shows_text():
            self.first_frame = now
        if self.done_frame is None and self.shows_all():
            self.done_frame = now
            self.cpu_done = time.process_time()

    async def sample_lag(self) -> None:
        while self.running:
            began = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.lags.append(time.perf_counter() - began - LAG_TICK_S)

    async def type_into(self, app: Any, field: Any) -> None:
        from textual import events

        while self.running:
            await asyncio.sleep(TYPING_EVERY_S)
            if not self.running:
                return
            before = len(field.value)
            began = time.perf_counter()
            app.post_message(events.Key("x", "x"))
            while len(field.value) == before and self.running:
                await asyncio.sleep(0.001)
            self.keys.append(time.perf_counter() - began)


def watch_frames(app: Any, probe: Probe) -> None:
    """Each frame is converted to terminal output (headless skips that) and noted."""
    from textual._compositor import CompositorUpdate

    display = app._display

    def shown(screen: Any, renderable: Any) -> None:
        if renderable is not None and isinstance(renderable, CompositorUpdate):
            renderable.render_segments(app.console)
        display(screen, renderable)
        probe.on_frame()

    app._display = shown


def timed_streamer(probe: Probe, batches: bool) -> Any:
    """The real client, noting when the first token arrives (before the app sees it)."""
    from stack.chat import stream_chat_batches

    def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in stream_chat_batches(*args, **kwargs):
            if probe.first_arrival is None and any(d.text or d.reasoning for d in batch):
                probe.first_arrival = time.perf_counter()
                if probe.long_arrival is None and probe.long_asked:
                    probe.long_arrival = probe.first_arrival
                    probe.cpu_began = time.process_time()
            if batches:
                yield batch
            else:
                yield from batch

    return stream


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(probe: Probe, count: int, exact: bool) -> dict[str, Any]:
    span = (probe.done_frame or float("nan")) - (probe.long_arrival or float("nan"))
    cpu = (probe.cpu_done or float("nan")) - (probe.cpu_began or float("nan"))
    return {
        "cpu_share": cpu / span if span > 0 else float("nan"),
        "tok_s": count / span if span > 0 else float("nan"),
        "lag_p50": percentile(probe.lags, 0.50),
        "lag_p99": percentile(probe.lags, 0.99),
        "lag_max": max(probe.lags, default=float("nan")),
        "first_token": percentile(probe.firsts, 0.5),
        "first_token_max": max(probe.firsts, default=float("nan")),
        "typing_p99": percentile(probe.keys, 0.99),
        "exact": exact,
    }


SHORT_ANSWERS = 5


async def run_markdownstream(port: int, expected: str, count: int) -> dict[str, Any]:
    """Textual's documented way: a Markdown per answer, `get_stream()`, every delta written."""
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Input, Markdown

    probe = Probe()
    streamer = timed_streamer(probe, batches=False)

    class Reference(App[None]):
        def compose(self) -> ComposeResult:
            yield VerticalScroll(id="log")
            yield Input(id="input")

        def on_mount(self) -> None:
            self.query_one("#log", VerticalScroll).anchor()
            self.query_one(Input).focus()

        async def ask(self, question: str) -> Markdown:
            markdown = Markdown()
            await self.query_one("#log", VerticalScroll).mount(markdown)
            probe.next_answer(lambda: bool(markdown.children))
            stream = Markdown.get_stream(markdown)
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            loop = asyncio.get_running_loop()

            def pull() -> None:
                messages = [{"role": "user", "content": question}]
                for delta in streamer(f"http://127.0.0.1:{port}/v1", KEY, messages):
                    if delta.text:
                        loop.call_soon_threadsafe(queue.put_nowait, delta.text)
                loop.call_soon_threadsafe(queue.put_nowait, None)

            threading.Thread(target=pull, daemon=True).start()
            while (piece := await queue.get()) is not None:
                await stream.write(piece)
            await stream.stop()
            await markdown.update(markdown.source)  # one clean render, as oterm does
            return markdown

    app = Reference()
    watch_frames(app, probe)
    async with app.run_test(size=SIZE) as pilot:
        for index in range(SHORT_ANSWERS):
            await app.ask(f"short {index}")
            await pilot.pause()
        done = asyncio.Event()
        probe.shows_all = done.is_set
        tasks = [
            asyncio.create_task(probe.sample_lag()),
            asyncio.create_task(probe.type_into(app, app.query_one(Input))),
        ]
        probe.long_asked = True
        markdown = await app.ask("go")
        done.set()
        while probe.done_frame is None:  # the frame after `done` shows it all
            app.screen.refresh()
            await pilot.pause()
        probe.running = False
        await asyncio.gather(*tasks)
        probe.next_answer(lambda: False)
        exact = markdown.source == expected
    return summary(probe, count, exact)


async def run_pane(port: int, expected: str, count: int, data: Path) -> dict[str, Any]:
    """The real Chat screen: its client, its worker, its widgets, its conversation file."""
    from textual.widgets import Input

    from stack.settings import load_settings
    from tui.__main__ import make_app
    from tui.services import Services
    from tui.widgets.chat_markdown import render_markdown
    from tui.widgets.chat_messages import AnswerView

    env = data / ".env"
    env.write_text(f"LITELLM_MASTER_KEY={KEY}\nAPI_GATEWAY_PORT={port}\n")
    probe = Probe()
    services = Services(make_engine=RunningEngine, stream_chat=timed_streamer(probe, batches=True))
    app = make_app(load_settings(env), services)
    watch_frames(app, probe)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("chat")
        await app.workers.wait_for_complete()  # as a person types: it has read and warmed up
        await pilot.pause()
        screen = app.screen
        field = screen.query_one("#chat-input", Input)

        def newest() -> AnswerView | None:
            views = list(screen.query(AnswerView))
            return views[-1] if views else None

        def shows_text() -> bool:
            view = newest()
            return view is not None and bool(view.text) and view.shows_text

        async def ask(question: str) -> None:
            field.value = question
            probe.next_answer(shows_text)
            await pilot.press("enter")
            end = time.perf_counter() + 600
            while time.perf_counter() < end:
                await asyncio.sleep(0.02)
                if screen.turn is None and newest() is not None:
                    break

        for index in range(SHORT_ANSWERS):
            await ask(f"short {index}")
            await app.workers.wait_for_complete()
        probe.shows_all = lambda: screen.turn is None and (newest() or AnswerView).text == expected
        tasks = [
            asyncio.create_task(probe.sample_lag()),
            asyncio.create_task(probe.type_into(app, field)),
        ]
        probe.long_asked = True
        await ask("go")
        while probe.done_frame is None:
            screen.refresh()
            await pilot.pause()
        probe.running = False
        await asyncio.gather(*tasks)
        probe.next_answer(lambda: False)
        view = newest()
        assert view is not None
        # Exact: the text, and the rows drawn equal the whole text rendered at once.
        width = view.size.width - 4
        drawn = view.rows_text()[: -2 if view.message.stats else None]
        exact = view.text == expected and drawn == [
            r.plain for r in render_markdown(expected, width)
        ]
    return summary(probe, count, exact)


class RunningEngine:
    """The engine seam: a running stack (the bench is about the pane, not Docker)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def status(self) -> list[Any]:
        from stack.engine import ServiceStatus

        return [
            ServiceStatus(role=role, name=role, state="running", health="healthy")
            for role in ("inference", "api-gateway")
        ]

    def close(self) -> None:
        pass


# --- the conversation of 500 messages -------------------------------------------------------


def write_long_conversation(messages: int) -> str:
    """A saved conversation of ``messages`` messages, answers of real-looking Markdown."""
    from stack.chat.conversation import ChatSettings
    from stack.chat.store import ConversationStore, answer_record, end_record, user_record

    store = ConversationStore()
    conversation = store.new(ChatSettings())
    file = store.file(conversation)
    for turn in range(messages // 2):
        user = conversation.new_message("user", content=f"Question {turn}: how does it work?")
        answer = conversation.new_message("assistant", model="local-chat")
        answer.content = realistic_markdown(1500, seed=turn)
        deltas = [{"d": answer.n, "c": piece} for piece in tokens(answer.content)]
        file.append([user_record(user), answer_record(answer), *deltas, end_record(answer)])
    return conversation.id


async def run_open(data: Path) -> dict[str, Any]:
    """Open a saved conversation of OPEN_MESSAGES messages: from the key to its frame."""
    from stack.chat.store import ConversationStore
    from stack.settings import load_settings
    from tui.__main__ import make_app
    from tui.services import Services

    big = write_long_conversation(OPEN_MESSAGES)
    env = data / ".env"
    env.write_text(f"LITELLM_MASTER_KEY={KEY}\n")
    app = make_app(load_settings(env), Services(make_engine=RunningEngine))
    probe = Probe()
    watch_frames(app, probe)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("chat")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        await screen.new_conversation()  # so the one to open is not the one shown
        await pilot.pause()
        probe.shows_all = lambda: screen.conversation.id == big and bool(screen.chat_log.views)
        began = time.perf_counter()
        screen.open_conversation(ConversationStore(), big)
        while probe.done_frame is None:
            await asyncio.sleep(0.001)
        shown = len(screen.chat_log.views)
    return {"open_s": probe.done_frame - began, "shown": shown}


# --- driving the cases ----------------------------------------------------------------------


def case(args: argparse.Namespace) -> None:
    expected = realistic_markdown(args.size)
    count = len(tokens(expected)) + (
        len(tokens(realistic_markdown(args.reasoning, 3))) if args.reasoning else 0
    )
    data = Path(args.data)
    os.environ["XDG_DATA_HOME"] = str(data / "xdg")
    os.chdir(data)
    if args.case == "markdownstream":
        result = asyncio.run(run_markdownstream(args.port, expected, count))
    elif args.case == "pane":
        result = asyncio.run(run_pane(args.port, expected, count, data))
    else:
        result = asyncio.run(run_open(data))
    print(json.dumps(result))


def run_case(name: str, port: int, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--case", name, "--port", str(port), "--size", str(args.size),
        "--reasoning", str(args.reasoning), "--data", str(data),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="tokens per second sent")
    parser.add_argument("--kib", type=float, default=70.0, help="size of the answer")
    parser.add_argument("--reasoning", type=int, default=0, help="bytes of reasoning first")
    parser.add_argument("--cases", default="markdownstream,pane,open")
    parser.add_argument("--json", type=Path, help="also write the results here (for bench/run)")
    parser.add_argument("--runs", type=int, help="ignored: one run of each case")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.rate, args.size, args.reasoning)
        return 0
    if args.case:
        case(args)
        return 0
    args.size = int(args.kib * 1024)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(port), "--rate", str(args.rate),
         "--size", str(args.size), "--reasoning", str(args.reasoning)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        results: dict[str, dict[str, Any]] = {}
        for name in args.cases.split(","):
            with tempfile.TemporaryDirectory(prefix="bench-chat-") as data:
                results[name] = run_case(name, port, args, Path(data))
    finally:
        server.terminate()
        server.wait()
    return report(results, args)


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> int:
    count = len(tokens(realistic_markdown(args.size)))
    print(
        f"{count} tokens ({args.size / 1024:.0f} KiB) sent at {args.rate:.0f} tok/s, "
        f"terminal {SIZE[0]}x{SIZE[1]}"
    )
    rows = [
        ("tok/s absorbed", lambda r: f"{r['tok_s']:.0f}"),
        ("lag p50", lambda r: ms(r["lag_p50"])),
        ("lag p99", lambda r: ms(r["lag_p99"])),
        ("lag max", lambda r: ms(r["lag_max"])),
        ("first token (median)", lambda r: ms(r["first_token"])),
        ("first token (max)", lambda r: ms(r["first_token_max"])),
        ("typing p99", lambda r: ms(r["typing_p99"])),
        ("final text exact", lambda r: "yes" if r["exact"] else "NO"),
        ("CPU (share of a core)", lambda r: f"{r['cpu_share']:.0%}"),
    ]
    streams = [name for name in results if name != "open"]
    print(f"{'':24}" + "".join(f"{name:>18}" for name in streams))
    for label, cell in rows:
        print(f"{label:24}" + "".join(f"{cell(results[name]):>18}" for name in streams))
    misses = []
    pane = results.get("pane")
    if pane is not None:
        checks = [
            ("tok/s", pane["tok_s"] >= RATE_SHARE_TARGET * args.rate),
            ("lag p99", pane["lag_p99"] <= LAG_TARGET_S),
            ("first token", pane["first_token"] <= FIRST_TOKEN_TARGET_S),
            ("typing p99", pane["typing_p99"] <= TYPING_TARGET_S),
            ("exact", pane["exact"]),
        ]
        misses += [name for name, ok in checks if not ok]
    if "open" in results:
        opened = results["open"]["open_s"]
        shown = results["open"]["shown"]
        print(f"open a conversation of {OPEN_MESSAGES} messages: {ms(opened)} ({shown} drawn)")
        if not opened <= OPEN_TARGET_S:
            misses.append("open")
    print("targets: " + ("all met" if not misses else "MISSED " + ", ".join(misses)))
    if args.json and pane is not None:
        write_rows(results, args)
    return 1 if misses else 0


def write_rows(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """The table's rows for bench/run: the pane against Textual's MarkdownStream."""
    from bench.common import Result
    from bench.common import report as write

    pane, plain = results["pane"], results.get("markdownstream")
    size = f"{args.size / 1024:.0f} KiB of markdown at {args.rate:.0f} tok/s"
    ref_name = "Textual's MarkdownStream, same stream"

    def row(metric: str, key: str, unit: str, target: str, ok: bool, scale: float = 1) -> Result:
        reference = plain[key] * scale if plain else None
        return Result(
            metric, pane[key] * scale, unit, reference=reference,
            reference_name=ref_name if plain else "", target=target, ok=ok,
        )  # fmt: skip

    rows = [
        row(f"chat pane absorbs {size}", "tok_s", "tok/s",
            f">= {RATE_SHARE_TARGET * args.rate:.0f}",
            pane["tok_s"] >= RATE_SHARE_TARGET * args.rate),
        row("chat pane: event-loop lag p99 while it streams", "lag_p99", "ms",
            f"<= {LAG_TARGET_S * 1000:.0f}", pane["lag_p99"] <= LAG_TARGET_S, 1000),
        row("chat pane: first token on screen after it arrives", "first_token", "ms",
            f"<= {FIRST_TOKEN_TARGET_S * 1000:.0f}",
            pane["first_token"] <= FIRST_TOKEN_TARGET_S, 1000),
        row("chat pane: typing while it streams, p99", "typing_p99", "ms",
            f"<= {TYPING_TARGET_S * 1000:.0f}", pane["typing_p99"] <= TYPING_TARGET_S, 1000),
    ]  # fmt: skip
    if "open" in results:
        opened = results["open"]["open_s"]
        rows.append(
            Result(
                f"open a conversation of {OPEN_MESSAGES} messages",
                opened * 1000,
                "ms",
                target=f"<= {OPEN_TARGET_S * 1000:.0f}",
                ok=opened <= OPEN_TARGET_S,
            )
        )
    rows.append(
        Result(
            "chat pane: final text exactly the streamed text",
            1.0 if pane["exact"] else 0.0,
            "(1 = yes)",
            target=">= 1",
            ok=bool(pane["exact"]),
        )
    )
    write(rows, args.json)


if __name__ == "__main__":
    sys.exit(main())
