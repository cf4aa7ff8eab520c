"""The one command table: it feeds the key bindings and the command palette alike.

Each `Command` becomes a `Binding` (with a stable id, so users can remap it with a keymap)
on the app, a screen or a widget, and a palette entry. Actions that start with ``screen.``
run on the screen the palette was opened from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

APP = "app"


@dataclass(frozen=True)
class Mode:
    """One of the six screens the number keys switch between."""

    name: str  # the key in App.MODES
    title: str
    key: str


MODES: tuple[Mode, ...] = (
    Mode("dashboard", "Dashboard", "1"),
    Mode("models", "Models", "2"),
    Mode("logs", "Logs", "3"),
    Mode("chat", "Chat", "4"),
    Mode("settings", "Settings", "5"),
    Mode("connect", "Connect", "6"),
)


@dataclass(frozen=True)
class Command:
    """A key binding and a palette entry that run the same action."""

    id: str  # binding id, e.g. "go.models"; keymaps use it
    key: str
    action: str
    description: str  # short, for the footer and the keys panel
    title: str  # the palette entry
    help: str  # tooltip in the footer, help line in the palette
    scope: str = APP  # APP, a mode name, or "<mode>.<widget>" for a widget's own keys
    show: bool = True
    priority: bool = False
    palette: bool = True
    key_display: str | None = None
    everywhere: bool = False  # in the palette on every screen (it switches to its own)

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.description,
            show=self.show,
            key_display=self.key_display,
            priority=self.priority,
            tooltip=self.help,
            id=self.id,
        )


def _go(mode: Mode) -> Command:
    return Command(
        id=f"go.{mode.name}",
        key=mode.key,
        action=f"app.go('{mode.name}')",
        description=mode.title,
        title=f"Go to {mode.title}",
        help=f"Switch to the {mode.title} screen",
        show=False,  # the mode bar under the header shows these keys
    )


COMMANDS: tuple[Command, ...] = (
    *(_go(mode) for mode in MODES),
    Command(
        "app.help",
        "question_mark",
        "app.toggle_help",
        "Keys",
        "Show or hide the keys",
        "Show or hide the panel that lists every key",
        key_display="?",
        palette=False,  # the palette's own "Keys" command does this
    ),
    Command(
        "app.quit",
        "q",
        "app.quit",
        "Quit",
        "Quit",
        "Quit llm-tui (the stack keeps running)",
        palette=False,  # the palette's own "Quit" command does this
    ),
    Command(
        "app.force_quit",
        "ctrl+q",
        "app.exit_now",
        "Quit",
        "Quit",
        "Quit llm-tui, even while typing",
        show=False,
        priority=True,
        palette=False,
    ),
    Command(
        "dashboard.recheck",
        "r",
        "screen.recheck",
        "Re-check",
        "Re-run the getting-started checks",
        "Run the settings, Docker, GPU, models, ports and disk checks again",
        scope="dashboard",
    ),
    Command(
        "dashboard.up",
        "u",
        "screen.start_stack",
        "Start",
        "Start or update the stack",
        "Create or update the inference and gateway containers, then wait until they answer",
        scope="dashboard",
        everywhere=True,
    ),
    Command(
        "dashboard.down",
        "d",
        "screen.stop_stack",
        "Stop",
        "Stop the stack",
        "Stop and remove the stack's containers (asks first; models and settings stay)",
        scope="dashboard",
        everywhere=True,
    ),
    Command(
        "dashboard.restart",
        "R",
        "screen.restart_service",
        "Restart",
        "Restart a service",
        "Pick a service (the selected card first) and restart its container",
        scope="dashboard",
        everywhere=True,
    ),
    Command(
        "dashboard.logs",
        "l",
        "screen.show_logs",
        "Logs",
        "Show the selected service's logs",
        "Open the Logs screen on the service whose card is selected",
        scope="dashboard",
    ),
    Command(
        "card.prev",
        "left",
        "neighbour(-1)",
        "Previous",
        "Select the previous service",
        "Move the selection to the card on the left",
        scope="dashboard.card",
        show=False,
        palette=False,
    ),
    Command(
        "card.next",
        "right",
        "neighbour(1)",
        "Next",
        "Select the next service",
        "Move the selection to the card on the right",
        scope="dashboard.card",
        show=False,
        palette=False,
    ),
    Command(
        "confirm.yes",
        "y",
        "screen.yes",
        "Yes",
        "Yes",
        "Go ahead",
        scope="confirm",
        palette=False,
    ),
    Command(
        "confirm.no",
        "n,escape",
        "screen.no",
        "Cancel",
        "Cancel",
        "Close the dialog and change nothing",
        scope="confirm",
        palette=False,
        key_display="n/esc",
    ),
    Command(
        "pick.cancel",
        "escape",
        "screen.cancel",
        "Cancel",
        "Cancel",
        "Close the list and change nothing",
        scope="pick",
        palette=False,
    ),
    Command(
        "models.use_chat",
        "enter",
        "screen.use_chat_model",
        "Serve as chat",
        "Serve the selected model as local-chat",
        "Swap local-chat to the selected GGUF (the gateway keeps running), or set CHAT_MODEL "
        "when the stack is stopped",
        scope="models.table",
    ),
    Command(
        "models.use_code",
        "c",
        "screen.use_code_model",
        "Serve as code",
        "Serve the selected model as local-code",
        "Serve the selected GGUF as local-code (a second inference container), or set "
        "CODE_MODEL when the stack is stopped",
        scope="models.table",
    ),
    Command(
        "models.rescan",
        "r",
        "screen.rescan",
        "Rescan",
        "Rescan the models folder",
        "List the GGUF files in MODELS_DIR again",
        scope="models",
    ),
    Command(
        "models.hub",
        "h",
        "screen.open_hub",
        "Hugging Face",
        "Browse Hugging Face and download a model",
        "Search Hugging Face for GGUF models, see each quant's size and fit, and download one",
        scope="models",
        everywhere=True,
    ),
    Command(
        "hub.leave_input",
        "escape",
        "screen.leave_input",
        "Leave search",
        "Leave the search field",
        "Stop typing, so single keys (o, n, p, x, s) work",
        scope="hub",
        palette=False,
    ),
    Command(
        "hub.back",
        "escape",
        "screen.back",
        "Back",
        "Back to Models",
        "Go back to the Models screen (downloads keep running)",
        scope="hub",
        palette=False,
    ),
    Command(
        "hub.search",
        "slash",
        "screen.focus_search",
        "Search",
        "Search Hugging Face",
        "Type words to search GGUF repos for; Enter searches",
        scope="hub",
        key_display="/",
    ),
    Command(
        "hub.sort",
        "o",
        "screen.cycle_sort",
        "Sort",
        "Change the sort order",
        "Sort the results by downloads, likes, trending or most recently updated",
        scope="hub",
    ),
    Command(
        "hub.more",
        "n",
        "screen.more_results",
        "More",
        "Load more results",
        "Load the next page of results (scrolling to the last row does too)",
        scope="hub",
    ),
    Command(
        "hub.pause",
        "p",
        "screen.pause_download",
        "Pause",
        "Pause or resume a download",
        "Pause the selected download, or resume it (an interrupted or cancelled one too)",
        scope="hub",
    ),
    Command(
        "hub.cancel",
        "x",
        "screen.cancel_download",
        "Cancel",
        "Cancel the selected download",
        "Stop the selected download; its .part file stays, so p resumes it later",
        scope="hub",
    ),
    Command(
        "hub.serve",
        "s",
        "screen.serve_download",
        "Serve",
        "Serve the download as local-chat",
        "Set CHAT_MODEL to the selected finished download",
        scope="hub",
    ),
    Command(
        "hub.results.open",
        "enter",
        "screen.open_repo",
        "Quants",
        "List the repo's quants",
        "List the GGUF files of the selected repo, with sizes and VRAM fit",
        scope="hub.results",
    ),
    Command(
        "hub.quants.download",
        "enter",
        "screen.download_quant",
        "Download",
        "Download the selected quant",
        "Download the selected GGUF into MODELS_DIR (asks first)",
        scope="hub.quants",
    ),
    Command(
        "chat.cancel",
        "escape",
        "screen.cancel_answer",
        "Cancel answer",
        "Cancel the answer being written",
        "Stop the answer that is streaming in and put your message back in the input",
        scope="chat",
        palette=False,
    ),
    Command(
        "chat.leave_input",
        "escape",
        "screen.leave_input",
        "Leave input",
        "Leave the message input",
        "Stop typing, so single keys (1-6, q, ?) work again",
        scope="chat",
        palette=False,
    ),
    Command(
        "chat.focus_input",
        "i",
        "screen.focus_input",
        "Type",
        "Type a message",
        "Move to the message input",
        scope="chat",
    ),
    Command(
        "chat.model",
        "ctrl+t",
        "screen.toggle_model",
        "Model",
        "Switch between local-chat and local-code",
        "Send the next messages to the other model alias",
        scope="chat",
    ),
    Command(
        "chat.new",
        "ctrl+n",
        "screen.new_chat",
        "New chat",
        "Start a new conversation",
        "Forget this conversation's messages and start again",
        scope="chat",
    ),
    Command(
        "logs.prev",
        "left_square_bracket",
        "screen.switch_service(-1)",
        "Prev service",
        "Show the previous service's logs",
        "Switch the log pane to the service on the left",
        scope="logs",
        key_display="[",
    ),
    Command(
        "logs.next",
        "right_square_bracket",
        "screen.switch_service(1)",
        "Next service",
        "Show the next service's logs",
        "Switch the log pane to the service on the right",
        scope="logs",
        key_display="]",
    ),
    Command(
        "logs.follow",
        "f",
        "screen.toggle_follow",
        "Follow",
        "Follow the logs (or stop following)",
        "Keep scrolling to the newest line as lines arrive, or hold the view where it is",
        scope="logs",
    ),
    Command(
        "logs.filter",
        "slash",
        "screen.open_filter",
        "Filter",
        "Filter the log lines",
        "Show only the lines that contain some text (Enter applies, Esc clears)",
        scope="logs",
        key_display="/",
    ),
    Command(
        "logs.clear",
        "c",
        "screen.clear_logs",
        "Clear",
        "Clear the log pane",
        "Forget the lines shown so far; new lines keep arriving",
        scope="logs",
    ),
    Command(
        "logs.close_filter",
        "escape",
        "screen.close_filter",
        "Clear filter",
        "Clear the filter",
        "Close the filter and show every line again",
        scope="logs",
        palette=False,
    ),
    Command(
        "settings.edit",
        "enter",
        "screen.edit_selected",
        "Edit",
        "Edit the selected setting",
        "Change the selected .env value (validated before it is written)",
        scope="settings.table",
    ),
    Command(
        "edit.save",
        "ctrl+s",
        "screen.save",
        "Save",
        "Save the setting",
        "Validate the value and write it to .env (Enter in the field does the same)",
        scope="edit",
        palette=False,
    ),
    Command(
        "edit.cancel",
        "escape",
        "screen.cancel",
        "Cancel",
        "Close without saving",
        "Close the dialog; .env is left as it was",
        scope="edit",
        palette=False,
    ),
    Command(
        "settings.secrets",
        "s",
        "screen.toggle_secrets",
        "Show secrets",
        "Show or hide secret settings",
        "Show secret values (master key, HF token) unmasked, or mask them again",
        scope="settings",
    ),
    Command(
        "connect.reveal",
        "s",
        "screen.toggle_key",
        "Show key",
        "Show or hide the gateway key",
        "Show the gateway key (LITELLM_MASTER_KEY) in full, or mask it again",
        scope="connect",
    ),
    Command(
        "connect.copy_key",
        "c",
        "screen.copy_key",
        "Copy key",
        "Copy the gateway key",
        "Copy LITELLM_MASTER_KEY to the clipboard",
        scope="connect",
    ),
    Command(
        "connect.copy_snippet",
        "y",
        "screen.copy_snippet",
        "Copy snippet",
        "Copy the shown connection snippet",
        "Copy the snippet on the current tab, with the real key, to the clipboard",
        scope="connect",
    ),
)


def bindings(scope: str) -> list[BindingType]:
    """The bindings for one scope of the table."""
    return [command.binding() for command in COMMANDS if command.scope == scope]


def _palette_commands(mode: str | None) -> Iterator[Command]:
    for command in COMMANDS:
        if not command.palette:
            continue
        owner = command.scope.partition(".")[0]
        if owner in (APP, mode) or command.everywhere:
            yield command


class CommandTableProvider(Provider):
    """Palette entries for the app's commands and those of the screen it was opened from."""

    def _entries(self) -> Iterator[tuple[Command, Callable[[], object]]]:
        mode = getattr(self.screen, "MODE", None)
        for command in _palette_commands(mode):
            action = command.action
            run: Callable[[], object]
            owner = command.scope.partition(".")[0]
            if command.everywhere and owner != mode:
                # Another screen's command: switch to that screen, then run it there.
                name = action.removeprefix("screen.")
                run = partial(self.app.run_action, f"app.in_mode({owner!r}, {name!r})")
            elif action.startswith("screen."):
                run = partial(self.app.run_action, action.removeprefix("screen."), self.screen)
            else:
                run = partial(self.app.run_action, action)
            yield command, run

    async def discover(self) -> Hits:
        for command, run in self._entries():
            yield DiscoveryHit(command.title, run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command, run in self._entries():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), run, help=command.help)
