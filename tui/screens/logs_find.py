"""The Logs screen's search, filter, follow, pause, save and status line.

`LogsFind` is the Logs screen's base: what it does here reads the lines already in the pane
(``lines``) and the view, never a stream; `tui.screens.logs` adds the streams.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from textual import work
from textual.message import Message
from textual.widgets import Input, Log, Static

from tui.screens.base import ModeScreen
from tui.screens.logs_lines import is_probe
from tui.widgets.log_view import LogView

ALL = "all"
SEARCH_ID, FILTER_ID = "logs-search", "logs-filter"


@dataclass(frozen=True)
class Pattern:
    """What search or filter looks for: text or a regex, case-blind unless asked."""

    text: str = ""
    regex: bool = False
    case: bool = False

    def compile(self) -> re.Pattern[str] | None:
        """The pattern, or None when empty; raises re.error for a bad regex."""
        if not self.text:
            return None
        source = self.text if self.regex else re.escape(self.text)
        return re.compile(source, 0 if self.case else re.IGNORECASE)

    def describe(self) -> str:
        flags = [word for word, on in (("regex", self.regex), ("case", self.case)) if on]
        return f"“{self.text}”" + (f" ({', '.join(flags)})" if flags else "")


def saved_logs_dir() -> Path:
    """``$XDG_STATE_HOME/llm-tui/logs`` (else ``~/.local/state/llm-tui/logs``)."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "llm-tui" / "logs"


class LogsFind(ModeScreen):
    role: str
    lines: deque[str]
    dropped: int
    following: bool
    paused: bool
    held: int  # lines that arrived while paused
    _state: str  # what the status line says about the stream
    _scrolled_off: bool  # following stopped because the user scrolled up
    _status_text: str

    @dataclass
    class Saved(Message):
        path: Path
        count: int

    def __init__(self) -> None:
        super().__init__()
        self.filter = Pattern()
        self.search = Pattern()
        self.reset_matches()
        self.show_probes = False  # the gateway's health probes (logs_lines.PROBE)
        self.probes_hidden = 0  # of the lines written since the pane was last filled

    @property
    def log_view(self) -> LogView:
        return self.query_one(LogView)

    def reset_matches(self) -> None:
        self.match_number = -1  # the line n/N moved to, counted from the pane's start
        self.match_rank = 0  # which match it is (1: the first in the pane)
        self.match_count = 0  # lines in the pane that the search matches

    @property
    def match_line(self) -> int:
        """The index in the pane of the line n/N moved to; -1 if none (or it rolled out)."""
        return self.match_number - self.log_view.pruned if self.match_number >= 0 else -1

    def write(self, lines: Iterable[str], *, count: bool = True) -> None:
        shown, probes = self.shown_of(lines)
        self.probes_hidden += probes
        if shown:
            if count:
                self.count_matches(shown)
            self.log_view.write_lines(shown)

    def count_matches(self, new: list[str]) -> None:
        """Keep the search's count true as ``new`` lines join the pane and the oldest make
        room for them (the current match among them is gone, and the rank moves up)."""
        pattern = self.compiled(self.search)
        if pattern is None:
            return
        log = self.log_view
        limit = log.max_lines
        if limit is not None:
            new = new[-limit:]
            leaving = min(len(log.lines) + len(new) - limit, len(log.lines))
            if leaving > 0:
                gone = sum(1 for line in islice(log.lines, leaving) if pattern.search(line))
                self.match_count -= gone
                if 0 <= self.match_line < leaving:
                    self.match_number, self.match_rank = -1, 0
                elif self.match_number >= 0:
                    self.match_rank -= gone
        self.match_count += sum(1 for line in new if pattern.search(line))

    def shown_of(self, lines: Iterable[str]) -> tuple[list[str], int]:
        """The lines the pane shows (health probes left out unless asked for, then the
        filter's), and how many probes were left out."""
        shown = list(lines)
        count = len(shown)
        if not self.show_probes:
            shown = [line for line in shown if not is_probe(line)]
        probes = count - len(shown)
        pattern = self.compiled(self.filter)
        return [line for line in shown if pattern.search(line)] if pattern else shown, probes

    # --- search and filter --------------------------------------------------------------

    def compiled(self, pattern: Pattern) -> re.Pattern[str] | None:
        try:
            return pattern.compile()
        except re.error:
            return None  # said in the status line; the pane shows every line meanwhile

    def action_open_search(self) -> None:
        self.open_input(SEARCH_ID, self.search)

    def action_open_filter(self) -> None:
        self.open_input(FILTER_ID, self.filter)

    def open_input(self, input_id: str, pattern: Pattern) -> None:
        for other in (SEARCH_ID, FILTER_ID):
            if other != input_id and not self.pattern_of(other).text:
                self.query_one(f"#{other}").display = False
        field = self.query_one(f"#{input_id}", Input)
        field.display = True
        field.value = pattern.text
        self.set_focus(field)  # now: the keys typed right after go to the field

    def pattern_of(self, input_id: str) -> Pattern:
        return self.search if input_id == SEARCH_ID else self.filter

    def action_close_input(self) -> None:
        """Esc: clear the field being typed in, else the search, else the filter."""
        focused = self.focused
        if isinstance(focused, Input) and focused.id in (SEARCH_ID, FILTER_ID):
            target = focused.id
        elif self.search.text:
            target = SEARCH_ID
        else:
            target = FILTER_ID
        field = self.query_one(f"#{target}", Input)
        field.display = False
        field.value = ""
        self.set_pattern(target, "")
        self.log_view.focus()

    def action_toggle_regex(self) -> None:
        self.toggle_flag("regex")

    def action_toggle_case(self) -> None:
        self.toggle_flag("case")

    def toggle_flag(self, flag: str) -> None:
        # Both use the same flags: one way of matching per pane is easier to keep in mind.
        self.search = Pattern(self.search.text, **self.flags_after(flag))
        self.filter = Pattern(self.filter.text, **self.flags_after(flag))
        self.apply_search()
        self.refilter()

    def flags_after(self, flag: str) -> dict[str, bool]:
        regex, case = self.filter.regex, self.filter.case
        return {
            "regex": not regex if flag == "regex" else regex,
            "case": not case if flag == "case" else case,
        }

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in (SEARCH_ID, FILTER_ID):
            event.stop()
            self.set_pattern(event.input.id, event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in (SEARCH_ID, FILTER_ID):
            event.stop()
            # Kept or cleared, the field goes: the status line says what applies, and the
            # pane gets its rows back (at 80x24 every row counts).
            event.input.display = False
            self.log_view.focus()
            if event.input.id == SEARCH_ID and event.value:
                self.action_next_match(-1, from_end=True)

    def set_pattern(self, input_id: str, text: str) -> None:
        if input_id == SEARCH_ID:
            if text != self.search.text:
                self.search = Pattern(text, self.filter.regex, self.filter.case)
                self.apply_search()
        elif text != self.filter.text:
            self.filter = Pattern(text, self.filter.regex, self.filter.case)
            self.search = Pattern(self.search.text, self.filter.regex, self.filter.case)
            self.refilter()

    def apply_search(self) -> None:
        pattern = self.compiled(self.search)
        lines = self.log_view.lines
        self.reset_matches()
        self.match_count = sum(1 for line in lines if pattern.search(line)) if pattern else 0
        self.log_view.set_search(pattern, -1)
        self.show_status()

    def rolling_out(self, count: int) -> None:
        """``count`` lines are about to join the full buffer: the hidden probes among the
        oldest lines, which make room for them, are no longer counted."""
        full = self.lines.maxlen
        if full is None or not self.probes_hidden or self.show_probes:
            return
        leaving = min(len(self.lines) + count - full, len(self.lines))
        if leaving > 0:
            gone = sum(1 for line in islice(self.lines, leaving) if is_probe(line))
            self.probes_hidden = max(0, self.probes_hidden - gone)

    def action_toggle_probes(self) -> None:
        self.show_probes = not self.show_probes
        self.refilter()

    def refilter(self) -> None:
        """Fill the pane again from the buffer (the filter or the probes' switch changed);
        paused, without the lines held since (they come with `p`)."""
        log = self.log_view
        log.clear()
        self.probes_hidden = 0
        kept = len(self.lines) - self.held if self.paused else len(self.lines)
        self.write(islice(self.lines, max(kept, 0)), count=False)  # apply_search counts
        log.scroll_end(animate=False)
        self.apply_search()

    def action_next_match(self, step: int, *, from_end: bool = False) -> None:
        """Scroll to the next (step 1) or previous (-1) line the search matches."""
        pattern = self.compiled(self.search)
        log = self.log_view
        lines = log.lines
        if pattern is None or not lines:
            return
        count = len(lines)
        if from_end:
            start = count
        elif self.match_line >= 0:
            start = self.match_line
        else:
            start = int(log.scroll_y) + (log.size.height if step > 0 else 0) - step
        found = next(
            (
                index % count
                for index in range(start + step, start + step * (count + 1), step)
                if pattern.search(lines[index % count])
            ),
            None,
        )
        if found is None:
            self.notify(f"No line matches {self.search.describe()}.", markup=False)
            return
        self.match_number = found + log.pruned
        self.match_rank = sum(1 for line in islice(lines, found + 1) if pattern.search(line))
        log.set_search(pattern, self.match_number)
        log.scroll_to(y=max(0, found - log.size.height // 2), animate=False)
        self.show_status()

    # --- follow, pause, save, clear -----------------------------------------------------

    def on_log_view_scrolled(self, message: LogView.Scrolled) -> None:
        """Scrolling up holds the view (until End); reaching the end again follows."""
        log = message.log
        if not message.at_end:
            if log.auto_scroll:
                log.auto_scroll = False
                self._scrolled_off = True
        elif self._scrolled_off:
            log.auto_scroll = True
            self._scrolled_off = False
        self.show_status()

    def action_toggle_follow(self) -> None:
        log = self.log_view
        log.auto_scroll = not log.auto_scroll
        if log.auto_scroll:
            log.scroll_end(animate=False)
        self._scrolled_off = False
        self.show_status()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.held:
            self.held = 0
            self.refilter()  # what arrived meanwhile, in order (the buffer may have rolled)
        self.show_status()

    def action_save_logs(self) -> None:
        lines, _ = self.shown_of(self.lines)  # what the pane shows
        if not lines:
            self.notify("Nothing to save: the pane is empty.", markup=False)
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{self.settings.stack_name}-{self.role}-{stamp}.log"
        self.save(saved_logs_dir() / name, lines)

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs-save")
    def save(self, path: Path, lines: list[str]) -> None:
        from stack.atomic import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "\n".join(lines) + "\n")  # 0600: logs can name secrets
        self.post_message(self.Saved(path, len(lines)))

    def on_logs_find_saved(self, message: Saved) -> None:
        what = f" matching {self.filter.describe()}" if self.filter.text else ""
        self.notify(
            f"{message.count:,} line{'s' if message.count != 1 else ''}{what} saved to "
            f"{message.path}",
            title="Logs saved",
            markup=False,
        )

    def action_clear_logs(self) -> None:
        self.lines.clear()
        self.held = self.probes_hidden = 0
        self.log_view.clear()
        self.apply_search()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.focused, Input)
        if action == "close_input":
            return typing or bool(self.filter.text) or bool(self.search.text)
        if action == "next_match":
            return not typing and bool(self.search.text)
        if action in (
            "toggle_follow",
            "toggle_pause",
            "open_filter",
            "open_search",
            "clear_logs",
            "save_logs",
            "switch_service",
            "toggle_probes",
        ):
            return not typing
        return True

    # --- what the pane says -------------------------------------------------------------

    def show_status(self) -> None:
        parts = [self.role if self.role != ALL else "all services"]
        log = self.query_one(Log)
        if self._state:
            parts.append(self._state)
        elif self.paused:
            parts.append(f"paused · {self.held:,} new (p resumes)")
        elif self.following:
            if log.auto_scroll:
                parts.append("following")
            elif self._scrolled_off:
                parts.append("scrolled up (End follows)")
            else:
                parts.append("paused (f follows)")
        count = len(self.lines)
        parts.append(f"{count:,} line{'s' if count != 1 else ''}")
        if self.dropped:
            parts.append(f"{self.dropped:,} lines dropped (written faster than shown)")
        if self.probes_hidden and not self.show_probes:
            plural = "s" if self.probes_hidden != 1 else ""
            parts.append(f"{self.probes_hidden:,} health check{plural} hidden (H shows)")
        if self.filter.text:
            if self.compiled(self.filter) is None:
                parts.append(f"filter {self.filter.describe()}: not a valid regex")
            else:
                parts.append(f"filter {self.filter.describe()}: {log.line_count:,} shown")
        if self.search.text:
            if self.compiled(self.search) is None:
                parts.append(f"search {self.search.describe()}: not a valid regex")
            else:
                if self.match_number >= 0:
                    found = f"match {self.match_rank:,} of {self.match_count:,} (n/N)"
                else:
                    plural = "line matches" if self.match_count == 1 else "lines match"
                    found = f"{self.match_count:,} {plural}"
                parts.append(f"search {self.search.describe()}: {found}")
        status = self.query_one("#logs-status", Static)
        text = "  ·  ".join(parts)
        if text != self._status_text:  # one line of fixed height: no layout to redo
            self._status_text = text
            status.update(text, layout=False)

    def show_empty(self, text: str) -> None:
        empty = self.query_one("#logs-empty", Static)
        empty.update(text)
        empty.display = bool(text)
        self.log_view.display = not text
