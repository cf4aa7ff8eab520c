"""Operating the stack headless: `up`, `down`, `status`, `restart`, `swap`, `logs`, `chat`,
`compose` and `doctor`, each one line of progress per step on stderr and the result on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cli.output import EXIT_FAIL, EXIT_OK

if TYPE_CHECKING:
    from stack.engine import Engine
    from stack.engine.direct_api import DirectApi


def doctor(args: argparse.Namespace) -> int:
    from stack.doctor import Status, run_checks
    from stack.settings import load_settings

    checks = run_checks(load_settings(args.env_file))
    if args.json:
        import json  # only for --json: not on the TUI's start-up path

        print(json.dumps([check.as_dict() for check in checks], indent=2))
    else:
        for check in checks:
            print(f"{check.status.value:<4}  {check.name:<8}  {check.detail}")
            if check.fix and check.status is not Status.OK:
                print(f"{'':<14}fix: {check.fix}")
    return EXIT_FAIL if any(c.status is Status.FAIL for c in checks) else EXIT_OK


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _engine(args: argparse.Namespace) -> Engine:
    from stack.engine import Engine
    from stack.settings import load_settings

    return Engine(load_settings(args.env_file))


def up(args: argparse.Namespace) -> int:
    engine = _engine(args)
    result = engine.up(wait=not args.no_wait, progress=_progress)
    changed = len(result.created) + len(result.recreated)
    print(
        f"stack up: {changed} started, {len(result.kept)} unchanged; "
        f"gateway {engine.settings.gateway_url}"
    )
    if engine.remote:
        from cli.remote import engine_line

        print(engine_line(engine.settings))
    return EXIT_OK


def down(args: argparse.Namespace) -> int:
    removed = _engine(args).down(remove_network=args.network, progress=_progress)
    print(f"stack down: removed {len(removed)} container(s)")
    return EXIT_OK


def early_login(words: Sequence[str]) -> DirectApi | None:
    """`status`'s reads without the SDK (None where they cannot go so), their SSH login
    (~0.17 s) begun before the parser, the engine's modules and the settings load, so that
    it runs while they do. ``words``: the command line, for a ``--context`` before it."""
    from stack.engine.direct_api import direct_api
    from stack.engine.endpoint import CONTEXT_VARIABLE, resolve_endpoint

    environ: Mapping[str, str] = os.environ
    for at, word in enumerate(words):  # `--context NAME` (or `=NAME`) before the command
        if word == "status":
            break
        name = word.partition("=")[2] if word.startswith("--context=") else None
        if word == "--context" and at + 1 < len(words):
            name = words[at + 1]
        if name:
            environ = {**os.environ, CONTEXT_VARIABLE: name}
    direct = direct_api(resolve_endpoint(environ))
    if direct is not None:
        direct.start()
    return direct


def status(args: argparse.Namespace) -> int:
    direct = getattr(args, "login", None) or early_login(["status"])
    from stack.engine import Engine
    from stack.settings import load_settings

    engine = Engine(load_settings(args.env_file), direct=direct)
    try:
        rows = engine.status()
    finally:
        engine.close()  # over SSH: the one connection its reads went through
    if args.json:
        import json  # only for --json: not on the TUI's start-up path

        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return EXIT_OK
    if engine.remote:
        from cli.remote import engine_line

        print(engine_line(engine.settings))
    for row in rows:
        health = f" ({row.health})" if row.health else ""
        extra = []
        if row.model:
            extra.append(row.model)
        if row.ports:
            extra.append(", ".join(row.ports))
        if row.state == "running" and row.role != "api-gateway":
            extra.append("GPU" if row.gpu else "CPU")
        if row.exit_code not in (None, 0) or row.oom_killed:
            extra.append(f"exit {row.exit_code}" + (" OOM-killed" if row.oom_killed else ""))
        if row.error:
            extra.append(row.error)
        if row.drift:
            extra.append(f"out of date: {', '.join(row.drift)} (`llm-tui up` applies)")
        print(f"{row.role:<15} {row.state}{health:<12} {'  '.join(extra)}")
    return EXIT_OK


def restart(args: argparse.Namespace) -> int:
    _engine(args).restart(args.service, progress=_progress)
    print(f"{args.service} restarted")
    return EXIT_OK


def swap(args: argparse.Namespace) -> int:
    engine = _engine(args)
    engine.swap(args.file, args.role, progress=_progress)
    print(f"now serving {args.file} as local-{args.role}")
    return EXIT_OK


def logs(args: argparse.Namespace) -> int:
    from stack.engine.logs import LogFollower

    tail: int | str = int(args.tail) if args.tail.isdigit() else "all"
    engine = _engine(args)
    try:
        container = engine.container_for(args.service)
        follower = LogFollower(container, follow=args.follow, tail=tail, timestamps=False)
        try:
            for line in follower:
                print(line.text, flush=args.follow)
        finally:
            follower.close()
    finally:
        # Closed here, not by the connection pools' finalizers at interpreter exit: over SSH
        # those could run beside paramiko's own teardown and print a traceback.
        engine.close()
    return EXIT_OK


def chat(args: argparse.Namespace) -> int:
    from cli.remote import gateway_reachable
    from stack.chat import stream_chat
    from stack.settings import load_settings

    settings = load_settings(args.env_file)
    messages = [{"role": "user", "content": args.prompt}]
    # A remote engine's gateway through an SSH forward when it needs one.
    with gateway_reachable(settings) as base_url:
        for delta in stream_chat(
            base_url,
            settings.litellm_master_key,
            messages,
            model=args.model,
            max_tokens=args.max_tokens,
        ):
            sys.stdout.write(delta.text)
            sys.stdout.flush()
    sys.stdout.write("\n")
    return EXIT_OK


def compose(args: argparse.Namespace) -> int:
    from stack.engine.compose import render_compose, write_compose
    from stack.settings import load_settings

    settings = load_settings(args.env_file)
    if args.stdout:
        print(render_compose(settings), end="")
    else:
        print(write_compose(settings))
    return EXIT_OK
