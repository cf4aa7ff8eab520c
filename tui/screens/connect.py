"""Connect: each IDE client's exact configuration for this gateway, and a connection test.

The configurations come from `stack.clients`, filled with the URL, the key (masked until
``s``) and the window one request really gets; a client whose need that window does not
meet says so on its tab, with the fix. ``t`` runs the test (`/v1/models`, a one-token chat,
`/v1/messages` through exactly that URL and key) in a worker that quitting cancels.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static, TabbedContent, TabPane
from textual.worker import Worker

from stack.cancel import CancelToken
from stack.clients import (
    CLIENTS,
    NO_KEY,
    Connection,
    Probe,
    client_config,
    connection_for,
    shown_key,
)
from stack.settings import Settings
from tui.commands import bindings
from tui.screens.base import ModeScreen

TEST_HINT = "t tests the connection: /v1/models, a one-token chat and /v1/messages"


def gateway_key(settings: Settings) -> str:
    return settings.litellm_master_key or NO_KEY


def probe_lines(probes: list[Probe]) -> Content:
    """✓/✗, the call, its latency, and what came back or why it failed (plain text)."""
    lines = []
    for probe in probes:
        mark = ("✓ ", "$text-success") if probe.ok else ("✗ ", "$text-error")
        latency = f"{probe.seconds * 1000:6.0f} ms  "
        line = Content.assemble(mark, (f"{probe.name:<24}", "bold"), latency, probe.detail)
        if probe.fix:
            line = Content.assemble(line, ("  fix: " + probe.fix, "$text-muted"))
        lines.append(line)
    return Content("\n").join(lines)


class ConnectScreen(ModeScreen):
    CSS_PATH = "connect.tcss"  # loaded when it first shows
    MODE = "connect"
    SUB_TITLE = "Connect"
    BINDINGS = bindings("connect")
    SELF_REPORTED = frozenset({"connect-check"})

    reveal = reactive(False, init=False)

    @dataclass
    class Read(Message):
        """The connection as the settings give it (the window needs CHAT_MODEL's header)."""

        settings: Settings
        connection: Connection

    @dataclass
    class Tested(Message):
        probes: list[Probe]

    def __init__(self) -> None:
        super().__init__()
        self.connection: Connection | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="connect"):
            yield Static("", id="connect-summary", markup=False)
            yield Static(TEST_HINT, id="connect-check", markup=False)
            with TabbedContent(id="snippets"):
                for client in CLIENTS.values():
                    with TabPane(client.title, id=f"tab-{client.id}"), ScrollableContainer():
                        yield Static(
                            "", id=f"warn-{client.id}", classes="connect-warning", markup=False
                        )
                        yield Static(
                            "", id=f"where-{client.id}", classes="connect-where", markup=False
                        )
                        yield Static("", id=f"snippet-{client.id}", classes="snippet", markup=False)

    def on_mount(self) -> None:
        self.read_connection(self.settings)

    def watch_reveal(self) -> None:
        self.show_connection()

    def settings_changed(self, settings: Settings) -> None:
        self.read_connection(settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="connect-read")
    def read_connection(self, settings: Settings) -> None:
        self.post_message(self.Read(settings, connection_for(settings)))

    def on_connect_screen_read(self, message: Read) -> None:
        if message.settings is self.settings:  # else a newer read is on its way
            self.connection = message.connection
            self.show_connection()

    def shown_key(self) -> str:
        return shown_key(self.settings, reveal=self.reveal)

    def show_connection(self) -> None:
        connection = self.connection
        if connection is None:
            return
        settings = self.settings
        key_note = "s hides it" if self.reveal else "s shows it"
        if not settings.litellm_master_key:
            key_note = "LITELLM_MASTER_KEY is empty: any key works"
        slots = "1 slot" if connection.parallel == 1 else f"each of {connection.parallel} slots"
        rows = [
            ("OpenAI API", connection.openai_url, ""),
            ("Anthropic API", connection.anthropic_url, "  (clients add /v1/messages)"),
            ("API key", self.shown_key(), f"  ({key_note} · c copies it)"),
            ("Models", f"{connection.model}, {connection.code_model}",
             "  (the names stay when you swap GGUFs)"),
            ("Window", f"{connection.window:,} tokens a request",
             f"  ({slots}: CTX_SIZE {settings.ctx_size:,}, PARALLEL {settings.parallel})"),
        ]  # fmt: skip
        if settings.engine_remote:  # an SSH forward, or the host's own address
            from stack.engine.forward import gateway_route

            rows.insert(2, ("Reached", gateway_route(settings).detail, ""))
        lines = [
            Content.assemble((label.ljust(14), "bold"), value, (note, "$text-muted"))
            for label, value, note in rows
        ]
        self.query_one("#connect-summary", Static).update(Content("\n").join(lines))
        shown = Connection(
            connection.openai_url, self.shown_key(), connection.window, connection.parallel
        )
        for client in CLIENTS.values():
            config = client_config(client.id, shown)
            warning = self.query_one(f"#warn-{client.id}", Static)
            warning.update(Content.assemble(("! ", "bold $text-warning"), config.warning))
            warning.display = bool(config.warning)
            where = self.query_one(f"#where-{client.id}", Static)
            where.update(Content.assemble(("Goes in: ", "bold"), (client.where, "$text-muted")))
            self.query_one(f"#snippet-{client.id}", Static).update(config.text)

    def action_toggle_key(self) -> None:
        self.reveal = not self.reveal

    def action_copy_key(self) -> None:
        self.app.copy_to_clipboard(gateway_key(self.settings))
        self.notify("Copied the gateway key to the clipboard.")

    def action_copy_snippet(self) -> None:
        if self.connection is None:
            return
        active = self.query_one(TabbedContent).active.removeprefix("tab-")
        config = client_config(active, self.connection)  # the real key
        self.app.copy_to_clipboard(config.text)
        self.notify(f"Copied the {config.client.title} configuration (with the key).", markup=False)

    # --- test connection -----------------------------------------------------------------

    def action_test_connection(self) -> None:
        connection = self.connection
        if connection is None:
            self.notify("Still reading the settings: try again in a moment.", markup=False)
            return
        self.query_one("#connect-check", Static).update(f"Testing {connection.openai_url}…")
        self.test_connection(connection, self.llm_app.cancel_token())

    @work(thread=True, exclusive=True, exit_on_error=False, group="connect-check")
    def test_connection(self, connection: Connection, cancel: CancelToken) -> None:
        probes = self.llm_app.services.check_connection(connection, cancel=cancel)
        self.post_message(self.Tested(probes))

    def on_connect_screen_tested(self, message: Tested) -> None:
        self.query_one("#connect-check", Static).update(probe_lines(message.probes))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "connect-check" and event.worker.error is not None:
            error = event.worker.error
            self.query_one("#connect-check", Static).update(f"The test could not run: {error}")
