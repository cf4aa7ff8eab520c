"""`.env` editing: byte-for-byte preservation, safe quoting, atomic and locked writes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.errors import EnvFileError
from stack.settings import envfile

pytestmark = pytest.mark.unit

HAND_WRITTEN = textwrap.dedent(
    """\
    # My stack — hand edited
    export MODELS_DIR=./models   # where GGUFs live

    CHAT_MODEL='qwen/Qwen 2.5 Coder.gguf'
    CTX_SIZE = 8192
    # a comment between keys
    HF_TOKEN="hf_abc\\"def"  # quoted with an escaped quote
    MY_OWN_KEY=keep me
    PARALLEL=4
    \tTEMPERATURE=0.2
    EMPTY=
    CTX_SIZE=16384
    """
)


def test_set_changes_only_that_value() -> None:
    doc = envfile.parse(HAND_WRITTEN)
    out = envfile.with_value(doc, "PARALLEL", "8")
    assert out == HAND_WRITTEN.replace("PARALLEL=4", "PARALLEL=8")


def test_set_keeps_inline_comment_and_export_prefix() -> None:
    out = envfile.with_value(envfile.parse(HAND_WRITTEN), "MODELS_DIR", "/mnt/e/models")
    assert "export MODELS_DIR=/mnt/e/models   # where GGUFs live\n" in out
    assert out.replace("/mnt/e/models", "./models", 1) == HAND_WRITTEN


def test_set_keeps_quote_style() -> None:
    out = envfile.with_value(envfile.parse(HAND_WRITTEN), "CHAT_MODEL", "other.gguf")
    assert "CHAT_MODEL='other.gguf'\n" in out
    out = envfile.with_value(envfile.parse(HAND_WRITTEN), "HF_TOKEN", "hf_new")
    assert 'HF_TOKEN="hf_new"  # quoted with an escaped quote\n' in out


def test_duplicate_key_rewrites_the_binding_that_wins() -> None:
    doc = envfile.parse(HAND_WRITTEN)
    assert doc.values()["CTX_SIZE"] == "16384"
    out = envfile.with_value(doc, "CTX_SIZE", "4096")
    assert "CTX_SIZE = 8192\n" in out
    assert out.endswith("CTX_SIZE=4096\n")
    assert dotenv_values(stream=__import__("io").StringIO(out))["CTX_SIZE"] == "4096"


def test_missing_key_is_appended_and_newline_added() -> None:
    out = envfile.with_value(envfile.parse("A=1"), "B", "two words")
    assert out == "A=1\nB='two words'\n"


def test_crlf_file_keeps_crlf() -> None:
    text = "A=1\r\n# c\r\nB=2\r\n"
    out = envfile.with_value(envfile.parse(text), "A", "3")
    assert out == "A=3\r\n# c\r\nB=2\r\n"
    assert envfile.with_value(envfile.parse(text), "C", "x").endswith("B=2\r\nC=x\r\n")


def test_line_numbers_name_the_key_line() -> None:
    doc = envfile.parse(HAND_WRITTEN)
    assert doc.line_of("CHAT_MODEL") == 4
    assert doc.line_of("PARALLEL") == 9
    assert doc.line_of("CTX_SIZE") == 12  # the binding that wins


def test_invalid_key_name_refused() -> None:
    with pytest.raises(EnvFileError):
        envfile.with_value(envfile.parse(""), "BAD KEY", "x")


TRICKY_VALUES = [
    "plain",
    "two words",
    "has # hash",
    "#starts-with-hash",
    "it's",
    'say "hi"',
    "both ' and \"",
    "$HOME and ${PATH}",
    "back\\slash",
    "trailing\\",
    "line1\nline2",
    "tab\there",
    "  padded  ",
    "ünïcødé ✓",
    "",
    "=equals=",
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_tricky_values_round_trip_through_python_dotenv(value: str) -> None:
    out = envfile.with_value(envfile.parse(HAND_WRITTEN), "MY_OWN_KEY", value)
    import io

    assert dotenv_values(stream=io.StringIO(out), interpolate=False)["MY_OWN_KEY"] == value
    assert envfile.parse(out).values()["MY_OWN_KEY"] == value
    # Everything else is untouched.
    before = envfile.parse(HAND_WRITTEN).values()
    after = envfile.parse(out).values()
    before.pop("MY_OWN_KEY")
    after.pop("MY_OWN_KEY")
    assert before == after


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_value_round_trips(value: str) -> None:
    for existing in ("K=old\n", "K='old'\n", 'K="old" # c\n', "export K=old # c\n"):
        try:
            out = envfile.with_value(envfile.parse(existing + "Z=1\n"), "K", value)
        except EnvFileError:
            # Refusing is allowed only for values dotenv cannot represent at all.
            assert "\x00" in value or "\r" in value or "\x0b" in value or "\x0c" in value
            continue
        assert envfile.parse(out).values() == {"K": value, "Z": "1"}


def test_generated_master_key_shape() -> None:
    keys = {envfile.generate_master_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert key.startswith("sk-")
        assert len(key) >= 3 + 32
        assert all(c.isalnum() or c in "-_" for c in key[3:])


# --- atomic, locked writes -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stack.settings import envfile
    path, key, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(count):
        with envfile.locked(path):
            doc = envfile.read(path)
            envfile.write_atomic(path, envfile.with_value(doc, key, str(i) + "x" * 2000))
        print(i, flush=True)  # write i is on disk
    """
)


def _writer(path: Path, key: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), key, str(count)], stdout=subprocess.PIPE
    )


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# keep me\nA=\nB=\n")
    procs = [_writer(path, "A", 40), _writer(path, "B", 40)]
    for proc in procs:
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    values = envfile.read(path).values()
    assert values["A"] == "39" + "x" * 2000
    assert values["B"] == "39" + "x" * 2000
    assert path.read_text().startswith("# keep me\n")


def test_kill_mid_write_never_leaves_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# header\nA=start\n")
    os.chmod(path, 0o600)
    rng = random.Random(1234)
    for _ in range(15):
        proc = _writer(path, "A", 100_000)
        assert proc.stdout is not None
        # Wait until a random number of writes have landed, then kill during a later one.
        for _ in range(rng.randint(1, 30)):
            done = int(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        text = path.read_text()
        assert text.startswith("# header\n")
        value = envfile.parse(text).values()["A"]
        # The last reported write, or the one the kill interrupted (done + 1 or later if the
        # writer got further before the signal landed): whole, never half a file.
        assert value.endswith("x" * 2000) and int(value[:-2000]) >= done
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    # Temp files of killed writers may remain (never the .env itself); they are dot-files.
    assert all(p.name.startswith(".") for p in tmp_path.iterdir() if p.name != ".env")


def test_write_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    os.chmod(path, 0o640)
    envfile.write_atomic(path, "A=2\n")
    assert path.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "new.env"
    envfile.write_atomic(fresh, "A=1\n")
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_read_errors_are_plain(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="does not exist"):
        envfile.read(tmp_path / "missing.env")
    bad = tmp_path / "bad.env"
    bad.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(EnvFileError, match="not UTF-8"):
        envfile.read(bad)
