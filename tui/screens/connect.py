"""Connect: the gateway URL and key, and ready-to-paste snippets for IDEs and tools."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static, TabbedContent, TabPane

from stack.settings import Settings, mask
from tui.commands import bindings
from tui.screens.base import ModeScreen
from tui.snippets import CHAT_ALIAS, CODE_ALIAS, SNIPPET_TITLES, connection_snippets

NO_KEY = "no-key"  # LiteLLM without a master key accepts any key


def gateway_key(settings: Settings) -> str:
    return settings.litellm_master_key or NO_KEY


class ConnectScreen(ModeScreen):
    MODE = "connect"
    SUB_TITLE = "Connect"
    BINDINGS = bindings("connect")

    reveal = reactive(False, init=False)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="connect"):
            yield Static("", id="connect-summary", markup=False)
            with TabbedContent(id="snippets"):
                for name, title in SNIPPET_TITLES.items():
                    with TabPane(title, id=f"tab-{name}"), ScrollableContainer():
                        yield Static("", id=f"snippet-{name}", classes="snippet", markup=False)

    def on_mount(self) -> None:
        self.show_connection()

    def watch_reveal(self) -> None:
        self.show_connection()

    def settings_changed(self, settings: Settings) -> None:
        self.show_connection()

    def shown_key(self) -> str:
        key = gateway_key(self.settings)
        return key if self.reveal else mask("LITELLM_MASTER_KEY", key)

    def show_connection(self) -> None:
        settings = self.settings
        key_note = "s hides it" if self.reveal else "s shows it"
        if not settings.litellm_master_key:
            key_note = "LITELLM_MASTER_KEY is empty: any key works"
        rows = [
            ("Gateway URL", settings.gateway_url, ""),
            ("API key", self.shown_key(), f"  ({key_note} · c copies it)"),
            ("Models", f"{CHAT_ALIAS}, {CODE_ALIAS}", "  (the names stay when you swap GGUFs)"),
        ]
        lines = [
            Content.assemble((label.ljust(13), "bold"), value, (note, "$text-muted"))
            for label, value, note in rows
        ]
        self.query_one("#connect-summary", Static).update(Content("\n").join(lines))
        for name, text in connection_snippets(settings.gateway_url, self.shown_key()).items():
            self.query_one(f"#snippet-{name}", Static).update(text)

    def action_toggle_key(self) -> None:
        self.reveal = not self.reveal

    def action_copy_key(self) -> None:
        self.app.copy_to_clipboard(gateway_key(self.settings))
        self.notify("Copied the gateway key to the clipboard.")

    def action_copy_snippet(self) -> None:
        active = self.query_one(TabbedContent).active.removeprefix("tab-")
        snippets = connection_snippets(self.settings.gateway_url, gateway_key(self.settings))
        self.app.copy_to_clipboard(snippets[active])
        self.notify(f"Copied the {SNIPPET_TITLES[active]} snippet (with the key).", markup=False)
