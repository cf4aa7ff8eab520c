"""Numbers as people read them on screen: durations, parameter counts, ports.

Sizes come from `stack.units.format_size`, the same as the CLI's.
"""

from __future__ import annotations

from collections.abc import Iterable


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 12s``, ``2h 05m``, ``3d 4h``: two units at most."""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_params(count: int) -> str:
    """``7.6B``, ``494M``, ``135K``; ``?`` when the header did not say."""
    if count <= 0:
        return "?"
    if count >= 10**9:
        return f"{count / 1e9:.1f}B"
    if count >= 10**6:
        return f"{count / 1e6:.0f}M"
    return f"{count / 1e3:.0f}K"


def format_context(tokens: int) -> str:
    """``32k``, ``2k``, ``131k``; ``?`` when unknown."""
    if tokens <= 0:
        return "?"
    return f"{tokens // 1024}k" if tokens >= 1024 else str(tokens)


def host_ports(ports: Iterable[str]) -> list[str]:
    """``127.0.0.1:8001->8080/tcp`` → ``127.0.0.1:8001``: the address a client dials."""
    seen: dict[str, None] = {}
    for port in ports:
        seen[port.partition("->")[0]] = None
    return list(seen)


def short_port(binding: str) -> str:
    """``127.0.0.1:8001`` → ``port 8001`` (loopback goes without saying); others as they are."""
    address, _, port = binding.rpartition(":")
    return f"port {port}" if address in ("127.0.0.1", "[::1]", "::1", "localhost") else binding
