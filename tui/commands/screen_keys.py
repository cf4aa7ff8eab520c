"""Keys of the Connect screen (Chat: chat_keys; Logs, Settings and GPU: operate_keys)."""

from __future__ import annotations

from tui.commands.command import Command

COMMANDS: tuple[Command, ...] = (
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
        "connect.check",
        "t",
        "screen.test_connection",
        "Test",
        "Test the connection",
        "Call /v1/models, a one-token chat and /v1/messages with this URL and key, timed",
        scope="connect",
        everywhere=True,
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
