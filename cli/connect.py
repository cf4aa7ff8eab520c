"""`llm-tui connect`: each IDE client's configuration for this gateway, and a live test.

``--client NAME`` prints that client's exact configuration (with the real key, ready to
paste; warnings go to stderr so stdout stays pasteable); without it, an overview. ``--check``
calls the gateway the way clients do and exits 1 when a call fails.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.output import EXIT_FAIL, EXIT_OK


def cmd_connect(args: argparse.Namespace) -> int:
    from stack.clients import CLIENTS, client_config, connection_for, shown_key
    from stack.settings import load_settings

    settings = load_settings(args.env_file)
    connection = connection_for(settings)
    if args.client:
        config = client_config(args.client, connection)
        if config.warning:
            print(f"warning: {config.warning}", file=sys.stderr)
        print(config.text, end="")
    else:
        if settings.litellm_master_key:
            shown = f"{shown_key(settings)}  (--client NAME prints it in full)"
        else:
            shown = f"{shown_key(settings)}  (LITELLM_MASTER_KEY is empty: any key works)"
        slots = f"{connection.parallel} slot(s), one request holds {connection.window:,} tokens"
        print(f"OpenAI API      {connection.openai_url}")
        print(f"Anthropic API   {connection.anthropic_url}  (Claude Code adds /v1/messages)")
        if settings.engine_remote:
            from stack.engine.forward import gateway_route

            print(f"reached         {gateway_route(settings).detail}")
        print(f"API key         {shown}")
        print(f"models          {connection.model}, {connection.code_model}; {slots}")
        for client in CLIENTS.values():
            warning = client_config(client.id, connection).warning
            state = f"! {warning}" if warning else "ok"
            print(f"  {client.id:<12} {client.where:<48} {state}")
        print("print one: llm-tui connect --client NAME; test: llm-tui connect --check")
    if not args.check:
        return EXIT_OK
    return _check(connection, stream=sys.stderr if args.client else sys.stdout)


def _check(connection: Any, *, stream: Any) -> int:
    from stack.clients import check_connection

    print(f"testing {connection.openai_url} with the key above:", file=stream)
    probes = check_connection(connection)
    for probe in probes:
        mark = "ok  " if probe.ok else "FAIL"
        print(
            f"  {mark} {probe.name:<24} {probe.seconds * 1000:>7.0f} ms  {probe.detail}",
            file=stream,
        )
        if probe.fix:
            print(f"       fix: {probe.fix}", file=stream)
    return EXIT_OK if all(probe.ok for probe in probes) else EXIT_FAIL


def add_commands(commands: Any) -> None:
    from stack.clients import CLIENT_IDS

    connect = commands.add_parser(
        "connect",
        help="configuration for Claude Code, Continue, Cursor, OpenAI SDKs, curl; --check tests it",
        description="Print an IDE client's exact configuration for this gateway (URL, key, the "
        "window one request gets), or test the connection the way clients use it.",
    )
    connect.add_argument("--client", choices=CLIENT_IDS, help="print this client's configuration")
    connect.add_argument(
        "--check",
        action="store_true",
        help="call /v1/models, a one-token chat and /v1/messages with this URL and key",
    )
    connect.set_defaults(handler=cmd_connect)
