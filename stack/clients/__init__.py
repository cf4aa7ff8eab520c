"""IDE clients and the gateway: each client's exact configuration, and a connection test.

    connection  where clients connect (URL, key) and the tokens one request may hold
    configs     each client's configuration from those: Claude Code, Continue, Cursor,
                the OpenAI SDK, curl; and what window each needs
    check       "test connection": /v1/models, a one-token chat and /v1/messages through
                exactly that URL and key, with latency

`llm-tui connect`, the Connect screen and `doctor` all read from here.
"""

from __future__ import annotations

from stack.clients.check import Probe, check_connection
from stack.clients.configs import (
    CLIENT_IDS,
    CLIENTS,
    Client,
    ClientConfig,
    client_config,
    window_problem,
    window_warning,
)
from stack.clients.connection import (
    NO_KEY,
    Connection,
    connection_for,
    served_window,
    shown_key,
)

__all__ = [
    "CLIENTS",
    "CLIENT_IDS",
    "NO_KEY",
    "Client",
    "ClientConfig",
    "Connection",
    "Probe",
    "check_connection",
    "client_config",
    "connection_for",
    "served_window",
    "shown_key",
    "window_problem",
    "window_warning",
]
