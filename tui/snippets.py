"""Ready-to-paste connection snippets for IDEs and tools. Pure: no Textual imports.

The gateway speaks the OpenAI API under ``…/v1`` and the Anthropic Messages API under
``/v1/messages``; Claude Code adds the ``/v1`` itself, so its base URL has none.
"""

from __future__ import annotations

CHAT_ALIAS = "local-chat"
CODE_ALIAS = "local-code"

SNIPPET_TITLES: dict[str, str] = {
    "curl": "curl",
    "continue": "Continue (VS Code)",
    "cursor": "Cursor",
    "claude_code": "Claude Code",
}


def anthropic_base_url(url: str) -> str:
    """The gateway URL without its trailing ``/v1``."""
    base = url.rstrip("/")
    return base.removesuffix("/v1")


def connection_snippets(url: str, key: str) -> dict[str, str]:
    """Snippets keyed like `SNIPPET_TITLES`, for the gateway at ``url`` with ``key``."""
    url = url.rstrip("/")
    curl = (
        f"curl {url}/chat/completions \\\n"
        f'  -H "Authorization: Bearer {key}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"""  -d '{{"model": "{CHAT_ALIAS}",\n"""
        """       "messages": [{"role": "user", "content": "Say hello in five words."}]}'\n"""
    )
    continue_yaml = (
        "# ~/.continue/config.yaml\n"
        "name: Local LLM\n"
        "version: 1.0.0\n"
        "schema: v1\n"
        "models:\n"
        "  - name: Local chat (llm-tui)\n"
        "    provider: openai\n"
        f"    model: {CHAT_ALIAS}\n"
        f"    apiBase: {url}\n"
        f"    apiKey: {key}\n"
        "    roles: [chat, edit, apply]\n"
        "  - name: Local code (llm-tui)\n"
        "    provider: openai\n"
        f"    model: {CODE_ALIAS}\n"
        f"    apiBase: {url}\n"
        f"    apiKey: {key}\n"
        "    roles: [autocomplete]\n"
    )
    cursor = (
        "Cursor Settings → Models:\n"
        f"  OpenAI API Key:               {key}\n"
        f"  Override OpenAI Base URL:     {url}\n"
        f"  Add custom model:             {CHAT_ALIAS}\n"
        "Then pick local-chat in the model menu.\n"
        "Note: Cursor sends these requests from its own servers, so the URL must be\n"
        "reachable from the internet (for example through a tunnel), not only localhost.\n"
    )
    claude_code = (
        f"ANTHROPIC_BASE_URL={anthropic_base_url(url)} \\\n"
        f"ANTHROPIC_AUTH_TOKEN={key} \\\n"
        f"ANTHROPIC_MODEL={CHAT_ALIAS} \\\n"
        f"ANTHROPIC_SMALL_FAST_MODEL={CHAT_ALIAS} \\\n"
        "claude\n"
    )
    return {
        "curl": curl,
        "continue": continue_yaml,
        "cursor": cursor,
        "claude_code": claude_code,
    }
