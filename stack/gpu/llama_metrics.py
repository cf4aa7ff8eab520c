"""llama-server's own throughput, read from its Prometheus `/metrics` (needs `--metrics`).

The counters `llamacpp:tokens_predicted_total` and `llamacpp:prompt_tokens_total` grow
with every token; their change between two readings over the time between them is the
server's real generation and prompt rate, which the GPU charts show beside utilisation.
(`llamacpp:predicted_tokens_seconds` is an average since start, useless for a chart.)

One keep-alive HTTP connection per server, plain `http.client`: a 1 s poll costs well
under a millisecond and imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import http.client

PREDICTED = "llamacpp:tokens_predicted_total"
PROMPT = "llamacpp:prompt_tokens_total"
PROCESSING = "llamacpp:requests_processing"
TIMEOUT_S = 1.0
MAX_BODY = 1 << 20  # /metrics is ~3 KB; anything far bigger is not llama-server


class MetricsUnavailable(Exception):
    """The server did not answer `/metrics` (not started, or run without `--metrics`)."""


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition → {name: value}; labelled series keep their labels."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.rpartition(" ")
        if not name:
            continue
        try:
            values[name.strip()] = float(rest)
        except ValueError:
            continue
    return values


@dataclass(frozen=True)
class Throughput:
    """Tokens per second over the last interval (None on the first reading or a restart)."""

    generated: float | None
    prompt: float | None
    busy: int  # requests being processed now


class LlamaMetrics:
    """Reads one llama-server's `/metrics`; `rate(now)` gives tokens/s since the last call."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._last: tuple[float, float, float] | None = None

    def read(self) -> dict[str, float]:
        import http.client

        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            connection = self._connection or http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout
            )
            self._connection = connection
            try:
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                body = response.read(MAX_BODY)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise MetricsUnavailable(f"{self.base_url}/metrics: {exc}") from None
                continue
            if response.status != 200:
                raise MetricsUnavailable(f"{self.base_url}/metrics answered {response.status}")
            return parse_metrics(body.decode("utf-8", "replace"))
        raise AssertionError("unreachable")  # pragma: no cover

    def rate(self, now: float) -> Throughput:
        """Read the counters and turn the change since the last call into tokens/s."""
        values = self.read()
        predicted, prompt = values.get(PREDICTED), values.get(PROMPT)
        busy = int(values.get(PROCESSING, 0))
        if predicted is None or prompt is None:
            raise MetricsUnavailable(f"{self.base_url}/metrics has no llama.cpp token counters")
        last, self._last = self._last, (now, predicted, prompt)
        if last is None or now <= last[0] or predicted < last[1] or prompt < last[2]:
            return Throughput(None, None, busy)  # first reading, or the server restarted
        elapsed = now - last[0]
        return Throughput((predicted - last[1]) / elapsed, (prompt - last[2]) / elapsed, busy)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
