"""The dashboard's "Getting started" list: one row per doctor check, with its fix."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from stack.doctor import Check, Status

# The order `stack.doctor.run_checks` returns them in, shown while they run.
CHECK_NAMES = ("settings", "docker", "images", "gpu", "models", "context", "ports", "disk")
CHECK_LABELS = {
    "settings": "Settings",
    "docker": "Docker",
    "images": "Images",
    "gpu": "GPU",
    "models": "Models",
    "context": "Context",
    "ports": "Ports",
    "disk": "Disk",
}
SYMBOLS = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗"}


class CheckRow(Horizontal):
    """✓/!/✗, the check's name, what it found and (unless ok) what to do next."""

    def __init__(self, name: str, check: Check | None) -> None:
        status = "pending" if check is None else check.status.value
        super().__init__(classes=f"check-row -{status}")
        self.check_name = name
        self.check = check

    def compose(self) -> ComposeResult:
        check = self.check
        yield Static("·" if check is None else SYMBOLS[check.status], classes="check-symbol")
        yield Static(CHECK_LABELS.get(self.check_name, self.check_name), classes="check-name")
        with Vertical(classes="check-text"):
            yield Static("checking…" if check is None else check.detail, markup=False)
            if check is not None and check.status is not Status.OK and check.fix:
                yield Static(f"→ {check.fix}", classes="check-fix", markup=False)


class PassedRow(Horizontal):
    """The checks that pass, on one line: ✓ Settings · Docker · Ports · Disk."""

    def __init__(self, checks: Sequence[Check]) -> None:
        super().__init__(classes="check-row -ok -passed")
        self.checks = checks

    def compose(self) -> ComposeResult:
        yield Static(SYMBOLS[Status.OK], classes="check-symbol")
        names = " · ".join(CHECK_LABELS.get(check.name, check.name) for check in self.checks)
        yield Static(f"{names}  (r re-checks)", classes="check-text", markup=False)


class Checklist(Vertical):
    """Rows for the checks; ``checks`` is None while they run.

    While something fails every check gets its row (what it found, the fix). Otherwise the
    list is compact: the passing checks share one line, warnings keep their rows.
    """

    checks: reactive[tuple[Check, ...] | None] = reactive(None, recompose=True)

    def compose(self) -> ComposeResult:
        if self.checks is None:
            # One line while they run: a row per pending check costs start-up time (each
            # row is five widgets) for a picture that lasts a fraction of a second.
            names = ", ".join(CHECK_LABELS[name] for name in CHECK_NAMES)
            yield Static(f"· checking…  {names}", classes="check-row -pending", markup=False)
            return
        if self.compact:
            passed = [check for check in self.checks if check.status is Status.OK]
            if passed:
                yield PassedRow(passed)
            for check in self.checks:
                if check.status is not Status.OK:
                    yield CheckRow(check.name, check)
            return
        for check in self.checks:
            yield CheckRow(check.name, check)

    @property
    def compact(self) -> bool:
        return self.checks is not None and all(c.status is not Status.FAIL for c in self.checks)

    def watch_checks(self, checks: tuple[Check, ...] | None) -> None:
        if checks is None:
            self.border_title = "Getting started — checking…"
            return
        ready = sum(check.status is Status.OK for check in checks)
        self.border_title = f"Getting started — {ready} of {len(checks)} ready"
        self.set_class(self.compact, "-compact")

    def show(self, checks: Sequence[Check] | None) -> None:
        self.checks = None if checks is None else tuple(checks)

    @property
    def failing(self) -> list[Check]:
        return [check for check in self.checks or () if check.status is not Status.OK]
