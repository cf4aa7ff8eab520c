"""The Logs screen with a fake follower: lines in, streams closed on hide and on switch;
search, filter, pause, save, follow and the all-services view."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Log, Static, Tabs

from stack.engine.connection import EngineUnavailable
from stack.engine.logs import LogLine
from stack.settings import load_settings
from tests.tui.conftest import FROZEN_CHECKS, write_env
from tests.tui.fakes import FakeEngine, FakeLogs, fake_services, running_stack
from tests.tui.helpers import SIZE, go_to, notes, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.logs import MAX_LINES, TAKE_TURN, LogsScreen
from tui.screens.logs_lines import BACKLOG, clock, is_probe
from tui.widgets.log_view import LogView
from tui.widgets.service_card import ServiceCard

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

INFERENCE_LINES = [
    [
        LogLine("srv load_model: loading model '/models/alpha.gguf'", "2025-01-01T10:00:00.1Z"),
        LogLine("srv llama_server: model loaded", "2025-01-01T10:00:01.2Z"),
    ],
    [LogLine("srv llama_server: listening on http://0.0.0.0:8080", "2025-01-01T10:00:01.3Z")],
]
GATEWAY_LINES = [[LogLine("LiteLLM: Proxy initialized with Config, Set models:", "")]]


async def calm(app: LlmTuiApp) -> None:
    """Settled, but for the follow worker: a held stream keeps it running."""
    await settle(app, allow=("logs-follow",))


async def open_logs(app: LlmTuiApp, pilot: Pilot[None], lines: int = 3) -> LogsScreen:
    """The Logs screen, opened with its key from a settled app, once ``lines`` lines show."""
    await settle(app)
    await pilot.press("3")
    await until(lambda: len(log_lines(app)) == lines, f"{lines} lines shown")
    screen = app.screen
    assert isinstance(screen, LogsScreen)
    return screen


def log_lines(app: LlmTuiApp) -> list[str]:
    return list(app.screen.query_one(Log).lines)


def texts(app: LlmTuiApp) -> list[str]:
    """The pane's lines without their time column."""
    return [line.split("  ", 1)[-1] for line in log_lines(app)]


def status(app: LlmTuiApp) -> str:
    return text(app.screen.query_one("#logs-status", Static))


@pytest.fixture
def running_engine(engine: FakeEngine, logs: FakeLogs) -> FakeEngine:
    engine.statuses = running_stack()
    logs.batches = {"inference": INFERENCE_LINES, "api-gateway": GATEWAY_LINES}
    return engine


def test_clock_is_local_time() -> None:
    assert clock("2025-01-01T10:00:05.123Z", 0) == "10:00:05"
    assert clock("2025-01-01T23:30:00Z", 3600) == "00:30:00"
    assert clock("garbage", 0) == ""


async def test_lines_stream_in_and_the_stream_closes_when_hidden(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await calm(app)
        assert logs.opened == ["inference"]
        shown = log_lines(app)
        assert shown[1].endswith("  srv llama_server: model loaded")
        assert "inference  ·  following  ·  3 lines" in status(app)

        await go_to(app, pilot, "dashboard")
        await until(logs.streams[0].closed.is_set, "the stream closed")


async def test_brackets_switch_service_and_close_the_old_stream(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await pilot.press("right_square_bracket")
        await until(lambda: log_lines(app) == [GATEWAY_LINES[0][0].text], "gateway lines")
        await calm(app)
        assert logs.opened == ["inference", "api-gateway"]
        await until(logs.streams[0].closed.is_set, "the inference stream closed")
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.role == "api-gateway"
        assert screen.query_one(Tabs).active == "logs-tab-api-gateway"

        await pilot.press("left_square_bracket")
        await until(lambda: len(log_lines(app)) == 3, "inference again")
        await go_to(app, pilot, "dashboard")


async def test_filter_hides_other_lines_and_follow_toggles(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)

        await pilot.press("ampersand")
        await calm(app)
        assert isinstance(app.focused, Input) and app.focused.id == "logs-filter"
        await pilot.press(*"LOADED")  # case does not matter
        await calm(app)
        assert len(log_lines(app)) == 1 and log_lines(app)[0].endswith("model loaded")
        assert "filter “LOADED”: 1 shown" in status(app)
        await pilot.press("enter")  # keeps the filter, back to the log
        await calm(app)
        assert isinstance(app.focused, Log)
        assert len(log_lines(app)) == 1
        await pilot.press("ctrl+t")  # match case: nothing is "LOADED"
        await calm(app)
        assert log_lines(app) == [] and "filter “LOADED” (case): 0 shown" in status(app)
        await pilot.press("escape")  # clears it
        await calm(app)
        assert len(log_lines(app)) == 3

        log = app.screen.query_one(Log)
        await pilot.press("f")
        await calm(app)
        assert not log.auto_scroll
        assert "paused (f follows)" in status(app)
        await pilot.press("f")
        await calm(app)
        assert log.auto_scroll

        await pilot.press("c")
        await calm(app)
        assert log_lines(app) == []
        assert "0 lines" in status(app)
        await go_to(app, pilot, "dashboard")


async def test_a_regex_filter_and_a_bad_regex(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await pilot.press("ampersand", "ctrl+r", *"load(ed|_model)")
        await calm(app)
        assert len(log_lines(app)) == 2
        assert "filter “load(ed|_model)” (regex): 2 shown" in status(app)
        await pilot.press("backspace", "backspace")  # "load(ed|_mod": unbalanced
        await calm(app)
        assert "not a valid regex" in status(app)
        assert len(log_lines(app)) == 3  # every line shows meanwhile
        await pilot.press("escape")
        await go_to(app, pilot, "dashboard")


async def test_search_highlights_and_n_moves_between_matches(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    many = [LogLine(f"line {n} {'ready' if n % 10 == 0 else 'busy'}", "") for n in range(60)]
    logs.batches = {"inference": [many]}
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(app, pilot, 60)
        await pilot.press("slash", *"READY")
        await calm(app)
        assert len(log_lines(app)) == 60  # search hides nothing
        assert "search “READY”: 6 lines match" in status(app)
        await pilot.press("enter")  # to the last match
        await calm(app)
        assert screen.match_line == 50 and "“READY”: match 6 of 6 (n/N)" in status(app)
        await pilot.press("N")
        await calm(app)
        assert screen.match_line == 40 and "match 5 of 6" in status(app)
        await pilot.press("n", "n")
        await calm(app)
        assert screen.match_line == 0  # past the last: around to the first
        assert "match 1 of 6" in status(app)
        log = screen.log_view
        assert log.scroll_y <= 0 + log.size.height  # the match is on screen
        rendered = log.render_line(0 - int(log.scroll_y))
        match_style = log.get_component_rich_style("log-view--match")
        assert any(
            seg.text == "ready" and seg.style and seg.style.bgcolor == match_style.bgcolor
            for seg in rendered
        )
        assert not log.auto_scroll  # jumping up stopped following
        await pilot.press("escape")
        await calm(app)
        assert screen.search.text == "" and "search" not in status(app)
        await go_to(app, pilot, "dashboard")


async def test_pause_holds_the_pane_and_scrolling_up_stops_following(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(app, pilot)
        await pilot.press("p")
        await calm(app)
        screen.add_lines([f"later {n}" for n in range(40)])  # as if they had arrived
        await calm(app)
        assert len(log_lines(app)) == 3
        assert "paused · 40 new (p resumes)" in status(app)
        await pilot.press("H", "ampersand", "l", "enter")  # the pane refilled: still held
        await calm(app)
        assert len(log_lines(app)) == 3 and "filter “l”: 3 shown" in status(app)
        assert "40 new" in status(app)
        await pilot.press("escape", "H")
        await calm(app)
        assert len(log_lines(app)) == 3
        await pilot.press("p")
        await calm(app)
        assert len(log_lines(app)) == 43 and log_lines(app)[-1] == "later 39"

        log = screen.log_view
        await pilot.press("home")  # the user scrolls up
        await calm(app)
        assert not log.auto_scroll and "scrolled up (End follows)" in status(app)
        screen.add_lines(["one more"])
        await calm(app)
        assert log.scroll_y == 0  # held where the user is
        await pilot.press("end")
        await calm(app)
        assert log.auto_scroll and "following" in status(app)
        await go_to(app, pilot, "dashboard")


async def test_s_saves_the_shown_lines_to_a_file(
    app: LlmTuiApp,
    running_engine: FakeEngine,
    logs: FakeLogs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await pilot.press("ampersand", *"listening", "enter", "s")
        await until(lambda: any(t == "Logs saved" for t, _ in notes(app)), "saved")
        await calm(app)
        (saved,) = (tmp_path / "state" / "llm-tui" / "logs").iterdir()
        assert saved.name.startswith("llm-tui-inference-") and saved.suffix == ".log"
        assert saved.read_text() == "10:00:01  srv llama_server: listening on http://0.0.0.0:8080\n"
        assert oct(saved.stat().st_mode & 0o777) == "0o600"
        (_, message), *_ = [n for n in notes(app) if n[0] == "Logs saved"]
        assert message == f"1 line matching “listening” saved to {saved}"
        await go_to(app, pilot, "dashboard")


PROBE = 'INFO:     127.0.0.1:40144 - "GET /health/liveliness HTTP/1.1" 200 OK'
PROBE_FAILED = (
    'INFO:     127.0.0.1:40146 - "GET /health/liveliness HTTP/1.1" 503 Service Unavailable'
)
REQUEST = 'INFO:     172.18.0.1:51234 - "POST /v1/chat/completions HTTP/1.1" 200 OK'


async def test_health_probes_are_hidden_and_counted_until_h_shows_them(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    # The gateway's healthcheck asks every 2 s: its OK lines would bury the requests. One
    # that failed, and every other request, show.
    stamps = [f"2025-01-01T10:00:0{n}.0Z" for n in range(5)]
    lines = [PROBE, REQUEST, PROBE, PROBE_FAILED, PROBE]
    logs.batches["api-gateway"] = [[LogLine(t, s) for t, s in zip(lines, stamps, strict=True)]]
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await pilot.press("right_square_bracket")
        await until(lambda: texts(app) == [REQUEST, PROBE_FAILED], "the request and the failure")
        await calm(app)
        assert "3 health checks hidden (H shows)" in status(app)

        await pilot.press("H")
        await until(lambda: texts(app) == lines, "every line")
        assert "hidden" not in status(app)

        await pilot.press("H")
        await until(lambda: texts(app) == [REQUEST, PROBE_FAILED], "hidden again")
        assert "3 health checks hidden" in status(app)
        await go_to(app, pilot, "dashboard")


@pytest.mark.parametrize(
    ("line", "probe"),
    [
        (PROBE, True),
        (
            'api-gateway │ 10:00:02  INFO:  10.0.0.1:5 - "GET /health/readiness?x=1 HTTP/2" 200',
            True,
        ),
        (PROBE_FAILED, False),
        ('INFO:     127.0.0.1:1 - "GET /health/liveliness/../../v1/keys HTTP/1.1" 200 OK', False),
        ('INFO:     127.0.0.1:1 - "GET /health/readinessX HTTP/1.1" 200 OK', False),
        ('INFO:     127.0.0.1:1 - "GET /health HTTP/1.1" 200 OK', False),
        ('INFO:     127.0.0.1:1 - "GET /health/liveliness HTTP/1.1" 2000', False),
        (REQUEST, False),
    ],
)
def test_a_probe_is_an_ok_answer_to_a_health_endpoint_only(line: str, probe: bool) -> None:
    assert is_probe(line) is probe


async def test_the_hidden_probes_count_those_still_kept_and_clearing_forgets_them(
    home: Path, engine: FakeEngine, logs: FakeLogs
) -> None:
    write_env(home, LOG_BUFFER_LINES="100")
    engine.statuses = running_stack()
    logs.batches = {"inference": INFERENCE_LINES, "api-gateway": [[LogLine(PROBE, "")] * 60]}
    services = fake_services(FROZEN_CHECKS, engine=engine, logs=logs)
    app = make_app(load_settings(home / ".env"), services)
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await pilot.press("right_square_bracket")
        await until(lambda: "60 health checks hidden" in status(app), "the probes counted")
        await calm(app)
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        screen.add_lines([f"request {n}" for n in range(70)])  # 30 probes make room
        await calm(app)
        assert "30 health checks hidden" in status(app)
        screen.add_lines([f"request {n}" for n in range(70, 150)])  # the rest of them
        await calm(app)
        assert "hidden" not in status(app) and len(log_lines(app)) == 100

        screen.add_lines([PROBE, PROBE])
        await calm(app)
        assert "2 health checks hidden" in status(app)
        await pilot.press("c")
        await calm(app)
        assert "hidden" not in status(app)
        await go_to(app, pilot, "dashboard")


def highlighted(log: LogView) -> list[str]:
    """The lines on screen drawn as the current match."""
    current = log.get_component_rich_style("log-view--current").bgcolor
    shown = []
    for y in range(log.size.height):
        strip = log.render_line(y)
        if any(seg.style and seg.style.bgcolor == current for seg in strip):
            shown.append(strip.text.strip())
    return shown


async def test_the_search_counts_and_its_current_match_follow_a_rolling_buffer(
    home: Path, engine: FakeEngine, logs: FakeLogs
) -> None:
    write_env(home, LOG_BUFFER_LINES="100")
    engine.statuses = running_stack()
    many = [LogLine(f"line {n} {'ready' if n % 10 == 0 else 'busy'}", "") for n in range(100)]
    logs.batches = {"inference": [many]}
    services = fake_services(FROZEN_CHECKS, engine=engine, logs=logs)
    app = make_app(load_settings(home / ".env"), services)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(app, pilot, 100)
        await pilot.press("slash", *"ready", "enter", "N", "N")  # line 70: the 8th of 10
        await calm(app)
        log = screen.log_view
        assert log.lines[screen.match_line] == "line 70 ready"
        assert "match 8 of 10" in status(app)

        screen.add_lines([f"later {n} {'ready' if n == 5 else 'busy'}" for n in range(25)])
        await calm(app)  # lines 0-24 rolled out, 3 matches with them; one new match
        assert log.lines[screen.match_line] == "line 70 ready"
        assert "match 5 of 8" in status(app)
        assert highlighted(log) == ["line 70 ready"]
        await pilot.press("n", "n", "n")  # 80, 90, then the new one
        await calm(app)
        assert log.lines[screen.match_line] == "later 5 ready"
        assert "match 8 of 8" in status(app)
        assert highlighted(log) == ["later 5 ready"]  # drawn afresh: no cached line

        screen.add_lines(["busy"] * 99)  # everything before the last line rolls out
        await calm(app)
        assert screen.match_line == -1 and "“ready”: 0 lines match" in status(app)
        await go_to(app, pilot, "dashboard")


async def test_all_services_interleave_by_time_with_their_names(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    logs.batches = {
        "inference": [[LogLine("I srv  model loaded", "2025-01-01T10:00:02Z")]],
        "api-gateway": [
            [
                LogLine("INFO:     Started server process", "2025-01-01T10:00:01Z"),
                LogLine("ERROR:    boom", "2025-01-01T10:00:03Z"),
            ]
        ],
    }
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("3", "left_square_bracket")  # the last tab: all services
        await until(lambda: len(log_lines(app)) == 3, "both services' lines")
        await calm(app)
        assert sorted(logs.opened) == ["api-gateway", "inference", "inference"]
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.role == "all"
        lines = log_lines(app)
        # In time order whichever stream's lines came first (a later one is merged in).
        assert lines == [
            "api-gateway │ 10:00:01  INFO:     Started server process",
            "inference   │ 10:00:02  I srv  model loaded",
            "api-gateway │ 10:00:03  ERROR:    boom",
        ]
        assert "all services  ·  following  ·  3 lines" in status(app)
        error_style = screen.log_view.get_component_rich_style("log-view--error")
        row = lines.index("api-gateway │ 10:00:03  ERROR:    boom")
        screen.log_view.scroll_home(animate=False)
        await calm(app)
        strip = screen.log_view.render_line(row)
        assert any(
            seg.style and seg.style.color == error_style.color
            for seg in strip
            if "boom" in seg.text
        )
        await go_to(app, pilot, "dashboard")
        await until(lambda: all(s.closed.is_set() for s in logs.streams), "every stream closed")


async def test_a_stopped_stack_says_how_to_start_it(app: LlmTuiApp, logs: FakeLogs) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        empty = app.screen.query_one("#logs-empty", Static)
        assert empty.display and not app.screen.query_one(Log).display
        assert "inference is not running" in text(empty)
        assert "Start the stack with u on the Dashboard" in text(empty)
        assert logs.opened == []


async def test_no_engine_shows_the_fix(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.status_error = EngineUnavailable(
        "no Docker Engine answers at the default socket", fix="start Docker, or set DOCKER_HOST"
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        shown = text(app.screen.query_one("#logs-empty", Static))
        assert "no Docker Engine answers" in shown
        assert "start Docker, or set DOCKER_HOST" in shown
        assert not app._notifications


async def test_a_stopping_container_ends_the_stream_with_a_note(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    logs.hold = False  # the stream ends after its lines, as when the container stops
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        await until(lambda: len(log_lines(app)) == 4, "lines and the note")
        await settle(app)
        assert "inference stopped" in log_lines(app)[-1]
        assert "stopped" in status(app)


async def test_l_on_a_dashboard_card_opens_its_logs(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        gateway = next(c for c in app.screen.query(ServiceCard) if c.role == "api-gateway")
        gateway.focus()
        await settle(app)
        await pilot.press("l")
        await until(lambda: "api-gateway" in logs.opened, "the gateway's logs open")
        await calm(app)
        assert app.current_mode == "logs"
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.role == "api-gateway"
        await go_to(app, pilot, "dashboard")


def stamp(ms: int) -> str:
    """A moment (milliseconds since the epoch) as the engine stamps a line."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


async def test_a_stream_that_outruns_the_pane_skips_to_its_newest_lines(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    # Each read brings more than the pane takes at once, stamped a millisecond apart per
    # 100 lines: the pane takes 0.2 s for what the container wrote in 21 ms, and falls behind.
    per = BACKLOG + 100
    now = int(time.time() * 1000) - 3_600_000  # an hour ago
    flood = [
        [LogLine(f"flood {n}", stamp(now + n // 100)) for n in range(k * per, (k + 1) * per)]
        for k in range(60)
    ]
    logs.batches = {"inference": flood}
    end = 60 * per
    logs.later = {  # the stream opened again: its tail, then what comes after
        "inference": [
            [LogLine("replayed, shown already", stamp(now)), LogLine("newest 1", stamp(now + end))],
            [LogLine("newest 2", stamp(now + end + 1))],
        ]
    }
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("3")
        await until(lambda: texts(app)[-1:] == ["newest 2"], "the newest lines show", 60)
        await calm(app)
        shown = texts(app)
        assert logs.tails[-1] == BACKLOG  # opened again from its newest lines
        skipped = [i for i, line in enumerate(shown) if "skipped to its newest lines" in line]
        assert len(skipped) == 1
        assert shown[skipped[0] + 1 :] == ["newest 1", "newest 2"]
        assert "replayed, shown already" not in shown  # its tail: what the pane has already
        assert f"flood {end - 1}" not in shown  # the flood's end was never read: skipped


async def test_a_flood_faster_than_the_screen_is_bounded_and_said(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    flood = [LogLine(f"token {n}", "") for n in range(MAX_LINES + 500)]
    logs.batches = {"inference": [flood]}  # more than the pane holds, before it can draw
    logs.hold = False  # then the stream ends: nothing is left running
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        await until(lambda: "lines dropped" in status(app), "the drop is said")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert screen.dropped == 500
        assert "500 lines dropped" in status(app)
        shown = log_lines(app)
        assert len(shown) == MAX_LINES
        assert shown[0] == "token 501"  # the oldest went: 500 in the mailbox, the note in the pane
        assert shown[-1].startswith("── inference stopped")


async def test_slash_and_ampersand_are_text_while_typing_a_search(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_logs(app, pilot)
        await pilot.press("slash", *"/v1&x", "slash")  # the keys open the field, then are text
        field = app.screen.query_one("#logs-search", Input)
        assert app.screen.focused is field
        assert field.value == "/v1&x/"
        assert not app.screen.query_one("#logs-filter", Input).display


async def test_a_large_take_is_written_in_pieces_the_loop_turning_between(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    """A flood's take (thousands of lines) goes into the pane TAKE_TURN lines at a time with
    the loop free between two pieces (keys, timers, the frame's other work), every line in
    its place, and the pane drawn once for the take, after its last piece."""
    count = 3 * TAKE_TURN + 7
    flood = [
        LogLine(f"token {n}", f"2025-01-01T10:00:{n // 100:02d}.{n:06d}Z") for n in range(count)
    ]
    logs.batches = {"inference": [flood]}
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        # A callback put on the loop at each piece has run by the next one: the loop turned.
        marks: list[list[bool]] = []
        pieces: list[tuple[int, bool, bool]] = []  # size, the loop turned since, held
        write_items = LogsScreen._write_items

        def recording(self: LogsScreen, items: list[tuple[str, str]]) -> None:
            turned = bool(marks) and marks[-1][0]
            mark = [False]
            marks.append(mark)
            asyncio.get_running_loop().call_soon(mark.__setitem__, 0, True)
            pieces.append((len(items), turned, self.log_view.hold_drawing))
            write_items(self, items)

        LogsScreen._write_items = recording  # type: ignore[method-assign]
        try:
            await pilot.press("3")
            await until(lambda: len(log_lines(app)) == count, "every line shown")
        finally:
            LogsScreen._write_items = write_items  # type: ignore[method-assign]
        await calm(app)
        assert texts(app) == [f"token {n}" for n in range(count)]
        big = [piece for piece in pieces if piece[2]]  # the take that came in pieces
        assert [size for size, _, _ in big] == [TAKE_TURN] * 3 + [7]
        assert all(turned for _, turned, _ in big[1:])
        assert not app.screen.query_one(Log).hold_drawing  # type: ignore[attr-defined]
