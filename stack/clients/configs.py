"""Each client's exact configuration, filled with the URL, the key and the real window.

What each needs was checked with the clients themselves (Claude Code 2.1.328, Continue's
`cn` 1.5.47):

* Claude Code does not know a gateway model's window: for an id it does not recognize it
  assumes 1M tokens and never compacts in time. ``CLAUDE_CODE_MAX_CONTEXT_TOKENS`` sets
  that window (its `/context` then reads "… / 32.8k"); ``CLAUDE_CODE_AUTO_COMPACT_WINDOW``
  cannot, it refuses anything under 100k. It keeps 13k tokens plus its output cap free
  for compaction and asks for 32,000 output tokens unless ``CLAUDE_CODE_MAX_OUTPUT_TOKENS``
  says less, so a small window needs a small cap. Its first request is ~12k tokens.
* Continue reads a model's window from ``defaultCompletionOptions.contextLength`` and
  trims the conversation to it; ``maxTokens`` caps each answer.
* Cursor calls models from its own servers: it cannot reach ``localhost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from stack.clients.connection import Connection
from stack.models.tune import AGENT_CONTEXT

# Claude Code keeps 13k tokens + its output cap free before it compacts.
CLAUDE_COMPACT_BUFFER = 13_000
CLAUDE_DEFAULT_OUTPUT = 32_000
# `cn -p` sent 874 prompt tokens; the editor's agent mode adds tools and open files.
CONTINUE_CONTEXT = 8_192


@dataclass(frozen=True)
class Client:
    id: str  # as `llm-tui connect --client` takes it
    title: str
    where: str  # where the configuration goes
    min_window: int  # tokens a request needs; 0: no minimum worth a warning


CLIENTS: dict[str, Client] = {
    client.id: client
    for client in (
        Client("claude-code", "Claude Code", "your shell, then run `claude`", AGENT_CONTEXT),
        Client(
            "continue",
            "Continue",
            "~/.continue/config.yaml (VS Code, JetBrains, cn)",
            CONTINUE_CONTEXT,
        ),
        Client("cursor", "Cursor", "Cursor Settings → Models", 0),
        Client("openai", "OpenAI SDK", "your shell (the SDKs read these variables)", 0),
        Client("curl", "curl", "a terminal", 0),
    )
}
CLIENT_IDS = tuple(CLIENTS)


@dataclass(frozen=True)
class ClientConfig:
    client: Client
    text: str  # exactly what to paste or run
    warning: str  # "" when the window suits the client


def output_cap(window: int) -> int:
    """Answer tokens to allow: an eighth of the window, so the prompt keeps the rest."""
    return max(256, min(CLAUDE_DEFAULT_OUTPUT, window // 8))


def window_problem(client: Client, connection: Connection) -> tuple[str, str] | None:
    """(what is too small, the fix) when the window is under ``client``'s need, else None."""
    if not client.min_window or connection.window >= client.min_window:
        return None
    slots = (
        f"each of the {connection.parallel} slots holds {connection.window:,} tokens"
        if connection.parallel > 1
        else f"a request holds {connection.window:,} tokens"
    )
    return (
        f"{slots}; {client.title} needs {client.min_window:,}",
        f"`llm-tui tune --use agent` (Models screen: t), or PARALLEL=1 and "
        f"CTX_SIZE={client.min_window}",
    )


def window_warning(client: Client, connection: Connection) -> str:
    """The window problem as one line with its fix; "" when the window suits ``client``."""
    problem = window_problem(client, connection)
    return f"{problem[0]}. Fix: {problem[1]}" if problem else ""


def client_config(client_id: str, connection: Connection) -> ClientConfig:
    client = CLIENTS[client_id]
    text = _TEXTS[client_id](connection)
    return ClientConfig(client, text, window_warning(client, connection))


def _claude_code(c: Connection) -> str:
    cap = output_cap(c.window)
    lines = [
        "# Claude Code through the llm-tui gateway. Paste into your shell (or run",
        '# eval "$(llm-tui connect --client claude-code)"), then start `claude`.',
        f"export ANTHROPIC_BASE_URL={c.anthropic_url}",
        f"export ANTHROPIC_AUTH_TOKEN={c.key}",
        "# Every model Claude Code may pick is the local one (background tasks too).",
        f"export ANTHROPIC_MODEL={c.model}",
        f"export ANTHROPIC_DEFAULT_OPUS_MODEL={c.model}",
        f"export ANTHROPIC_DEFAULT_SONNET_MODEL={c.model}",
        f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={c.model}",
        f"# The window one request gets ({c.window:,} tokens): Claude Code compacts in time.",
        f"export CLAUDE_CODE_MAX_CONTEXT_TOKENS={c.window}",
        f"# Answers of up to {cap:,} tokens; it keeps 13k + this free for compacting.",
        f"export CLAUDE_CODE_MAX_OUTPUT_TOKENS={cap}",
        "# No telemetry or update checks to Anthropic.",
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ]
    return "\n".join(lines) + "\n"


def _continue(c: Connection) -> str:
    cap = min(4096, output_cap(c.window))
    models = []
    for name, model, roles in (
        ("Local chat (llm-tui)", c.model, "[chat, edit, apply]"),
        ("Local code (llm-tui)", c.code_model, "[autocomplete]"),
    ):
        models += [
            f"  - name: {name}",
            "    provider: openai",
            f"    model: {model}",
            f"    apiBase: {c.openai_url}",
            f"    apiKey: {c.key}",
            f"    roles: {roles}",
            "    defaultCompletionOptions:",
            f"      contextLength: {c.window}",
            f"      maxTokens: {cap}",
        ]
    lines = [
        "# ~/.continue/config.yaml",
        "name: Local LLM (llm-tui)",
        "version: 1.0.0",
        "schema: v1",
        "models:",
        *models,
    ]
    return "\n".join(lines) + "\n"


def _cursor(c: Connection) -> str:
    port = urlsplit(c.openai_url).port or 80
    lines = [
        "Cursor sends model requests from Cursor's own servers, not from this machine, so",
        f"{c.openai_url} is out of their reach. It works only through a public HTTPS",
        "address that forwards to this gateway, for example a tunnel:",
        f"    cloudflared tunnel --url {c.anthropic_url}     (or: ngrok http {port})",
        "Then Cursor Settings → Models:",
        f"    OpenAI API Key:            {c.key}",
        "    Override OpenAI Base URL:  https://<your-tunnel-host>/v1",
        f"    Add custom model:          {c.model}",
        "Anyone who has that URL and the key can use the model: keep the key secret, and",
        "close the tunnel when you are done. Cursor sizes its own prompts; a request here",
        f"holds {c.window:,} tokens.",
    ]
    return "\n".join(lines) + "\n"


def _openai(c: Connection) -> str:
    cap = min(1024, output_cap(c.window))
    lines = [
        "# The OpenAI SDKs (Python, Node) read these; any OpenAI-compatible tool takes the same.",
        f"export OPENAI_BASE_URL={c.openai_url}",
        f"export OPENAI_API_KEY={c.key}",
        "python3 - <<'PY'",
        "from openai import OpenAI",
        "reply = OpenAI().chat.completions.create(",
        f'    model="{c.model}", max_tokens={cap},',
        '    messages=[{"role": "user", "content": "Say hello in five words."}],',
        ")",
        "print(reply.choices[0].message.content)",
        "PY",
        f"# One request holds {c.window:,} tokens, prompt and answer together.",
    ]
    return "\n".join(lines) + "\n"


def _curl(c: Connection) -> str:
    return (
        f"curl {c.openai_url}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {c.key}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"""  -d '{{"model": "{c.model}", "max_tokens": 64,\n"""
        """       "messages": [{"role": "user", "content": "Say hello in five words."}]}'\n"""
    )


_TEXTS = {
    "claude-code": _claude_code,
    "continue": _continue,
    "cursor": _cursor,
    "openai": _openai,
    "curl": _curl,
}
