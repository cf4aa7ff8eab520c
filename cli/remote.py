"""`--context NAME` and `llm-tui forward`: driving a Docker Engine on another machine."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from cli.output import EXIT_OK
from stack.errors import LlmTuiError


def use_context(args: argparse.Namespace) -> None:
    """``--context NAME``: the engine for this process and what it starts (like docker's)."""
    name = getattr(args, "context", None)
    if name:
        from stack.engine.endpoint import CONTEXT_VARIABLE

        os.environ[CONTEXT_VARIABLE] = name


def add_context_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--context",
        metavar="NAME",
        help="the Docker context to drive (`docker context ls`); default: DOCKER_HOST, "
        "then DOCKER_CONTEXT, then the current context",
    )


def engine_line(settings: Any) -> str:
    """Which engine this is, where the models are, how the gateway is reached."""
    from stack.engine.endpoint import resolve_endpoint
    from stack.engine.forward import gateway_route
    from stack.engine.helper import models_place

    endpoint = resolve_endpoint()
    if not settings.engine_remote:
        return f"engine: {endpoint.label}"
    route = gateway_route(settings, endpoint)
    models = models_place(settings, endpoint)
    return f"engine: {endpoint.label} · models: {models} · gateway: {route.detail}"


@contextlib.contextmanager
def gateway_reachable(settings: Any) -> Iterator[str]:
    """The gateway's base URL for this command, through an SSH forward when one is needed.

    A forward that is already open (the dashboard, `llm-tui forward`) is used as it is.
    """
    from stack.engine.endpoint import resolve_endpoint
    from stack.engine.forward import GatewayForward, gateway_route

    endpoint = resolve_endpoint()
    route = gateway_route(settings, endpoint)
    url = route.url.replace("localhost", "127.0.0.1")
    if route.kind == "none":
        raise LlmTuiError(f"the gateway is {route.detail.split(': ', 1)[0]}", fix=route.detail)
    if route.kind != "ssh-forward":
        yield url
        return
    from stack.doctor import port_is_free

    if not port_is_free("127.0.0.1", settings.api_gateway_port):
        yield url  # someone (the dashboard, `llm-tui forward`) forwards it already
        return
    with GatewayForward(endpoint, settings.api_gateway_port):
        yield url


def cmd_forward(args: argparse.Namespace) -> int:
    """Keep the remote gateway at http://127.0.0.1:API_GATEWAY_PORT until Ctrl+C."""
    from stack.engine.endpoint import resolve_endpoint
    from stack.engine.forward import GatewayForward, gateway_route
    from stack.settings import load_settings

    settings = load_settings(args.env_file)
    endpoint = resolve_endpoint()
    route = gateway_route(settings, endpoint)
    if route.kind != "ssh-forward":
        if route.kind == "none":
            raise LlmTuiError("the gateway cannot be forwarded", fix=route.detail)
        print(f"nothing to forward: the gateway is at {route.url} ({route.detail})")
        return EXIT_OK
    port = args.port or settings.api_gateway_port
    forward = GatewayForward(endpoint, settings.api_gateway_port, port).start()
    print(
        f"forwarding http://127.0.0.1:{forward.local_port}/v1 to the gateway on "
        f"{endpoint.label} (Ctrl+C stops)",
        flush=True,
    )
    stop = threading.Event()
    try:
        while not stop.wait(5.0):
            if forward.problem:
                print(f"forward: {forward.problem}", file=sys.stderr, flush=True)
                forward.problem = ""
    except KeyboardInterrupt:
        pass
    finally:
        forward.close()
    print("forward closed")
    return EXIT_OK


def add_commands(commands: Any) -> None:
    forward = commands.add_parser(
        "forward",
        help="keep a remote engine's gateway at http://127.0.0.1:API_GATEWAY_PORT (SSH)",
    )
    forward.add_argument("--port", type=int, help="the local port (default: API_GATEWAY_PORT)")
    forward.set_defaults(handler=cmd_forward)
