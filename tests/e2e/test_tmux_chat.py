"""The real `llm-tui` in tmux chatting with a real stack; `kill -9` mid-answer loses nothing.

The stack (llama-server and LiteLLM containers from the locally built images, a tiny model)
is started by the engine itself; `llm-tui` then runs in tmux as a person starts it. While
an answer streams, the screen is read and the process is killed with SIGKILL: every word
that was on screen must be in the conversation file, and the next `llm-tui` shows the
answer again, marked as interrupted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stack.chat.store import ConversationStore
from stack.engine import Engine
from stack.settings import load_settings
from tests.e2e.tmux_session import Tmux, llm_tui_in_tmux
from tests.support.docker_engine import LITELLM_IMAGE, LLAMA_IMAGE, require_engine, require_images
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-chat-" + "k" * 32
STREAM_DEADLINE_S = 60.0
ANSWER_ROWS = 12  # rows of the answer on screen before the kill


@dataclass
class ChatHome:
    folder: Path
    stack: str
    client: Any

    @property
    def conversations(self) -> Path:
        return self.folder / "user-home" / ".local" / "share" / "llm-tui" / "conversations"

    def store(self) -> ConversationStore:
        return ConversationStore(self.conversations)


@pytest.fixture
def chat_home(tmp_path: Path) -> Iterator[ChatHome]:
    client = require_engine()
    require_images(client, LLAMA_IMAGE, LITELLM_IMAGE)
    home = ChatHome(tmp_path, "e2echat" + uuid.uuid4().hex[:6], client)
    write_tiny_model(tmp_path / "models" / "tiny.gguf", seed=4, context_length=8192)
    # One slot of 8192 tokens and answers of up to 6000: one answer streams for seconds.
    (tmp_path / ".env").write_text(
        f"STACK_NAME={home.stack}\nCHAT_MODEL=tiny.gguf\nGPU=none\n"
        f"INFERENCE_IMAGE={LLAMA_IMAGE}\nGATEWAY_IMAGE={LITELLM_IMAGE}\n"
        f"API_GATEWAY_PORT={free_port()}\nINFERENCE_PORT=\nLITELLM_MASTER_KEY={KEY}\n"
        "CTX_SIZE=8192\nPARALLEL=1\nMAX_TOKENS=6000\n"
    )
    engine = Engine(load_settings(tmp_path / ".env"), client=client)
    try:
        engine.up(timeout=120)
        yield home
    finally:
        engine.down(remove_network=True)
        client.close()


def tmux_in(home: ChatHome) -> Any:
    engine = {"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}
    return llm_tui_in_tmux(home.folder, home.folder / ".env", engine)


def llm_tui_pid(tmux: Tmux) -> int:
    """The llm-tui process: the child of the pane's shell."""
    shell = int(tmux.pane("#{pane_pid}"))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == shell:
                return int(entry.name)
    raise AssertionError("no llm-tui process under the pane's shell")


def answer_rows(screen: str) -> list[str]:
    """The rows inside the last answer box on screen (between its │ bars)."""
    boxes = screen.split("╭─ local-chat ")
    if len(boxes) < 2:
        return []
    rows = []
    for line in boxes[-1].splitlines()[1:]:
        if "╰" in line or "│" not in line:
            break
        inside = line.split("│")[1].strip()
        if not re.fullmatch(r"\d+( · \S+)?", inside):  # a code block's label is drawn, not said
            rows.append(inside)
    return rows


def letters(text: str) -> str:
    """What survives any Markdown rendering: letters and digits, in order."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


def saved_answer(home: ChatHome) -> Any:
    store = home.store()
    (summary,) = store.list()
    conversation = store.load(summary.id)
    return conversation.messages[-1]


def test_kill_9_mid_answer_loses_nothing_on_screen(chat_home: ChatHome) -> None:
    with tmux_in(chat_home) as tmux:
        tmux.wait_for("2 of 2 running", STREAM_DEADLINE_S)
        tmux.send("4")
        tmux.wait_for("Message local-chat (Enter sends)")
        tmux.send("Tell me a long story", "Enter")
        screen = tmux.wait_for(lambda s: len(answer_rows(s)) >= ANSWER_ROWS, STREAM_DEADLINE_S)
        pid = llm_tui_pid(tmux)
        screen = tmux.screen()  # the last picture before the kill
        assert answer_rows(screen), screen
        os.kill(pid, signal.SIGKILL)
        assert tmux.wait_dead() == 128 + signal.SIGKILL
    shown = answer_rows(screen)
    assert "answering…" in screen  # it was killed mid-answer, not after
    message = saved_answer(chat_home)
    assert message.status == "interrupted"
    # The last row may hold half a word that the next token completed: all but it.
    assert letters(" ".join(shown[:-1])) in letters(message.content)

    # Started again: the conversation is back, the answer marked.
    with tmux_in(chat_home) as tmux:
        tmux.wait_for("2 of 2 running", STREAM_DEADLINE_S)
        tmux.send("4")
        again = tmux.wait_for("interrupted — llm-tui stopped mid-answer")
        assert "Tell me a long story" in again
        tmux.send("Escape")
        tmux.wait_for("i Type")
        tmux.send("q")
        assert tmux.wait_dead() == 0
    records = [
        json.loads(line)
        for line in next(chat_home.conversations.glob("*.jsonl")).read_text().splitlines()
    ]
    assert records[0]["type"] == "conversation"
    assert not any(record.get("type") == "end" for record in records)
