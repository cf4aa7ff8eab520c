"""`status`'s reads without the SDK: HTTP/1.1 answers on one pipe, and the ssh command."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from stack.engine.direct_api import SshApi, Unavailable, read_answer, ssh_command
from stack.engine.endpoint import Endpoint


def test_answers_one_after_another_on_one_stream() -> None:
    stream = io.BytesIO(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        b'{"a":1}'
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\n[1, \r\n2;ext=1\r\n2]\r\n0\r\nX-Trailer: y\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    )
    assert read_answer(stream) == (200, b'{"a":1}')
    assert read_answer(stream) == (200, b"[1, 2]")
    assert read_answer(stream) == (404, b"")
    assert stream.read() == b""


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # the ssh client ended before answering (a login refused)
        b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # cut mid-body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",  # cut mid-chunk
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",  # not one of ours
    ],
    ids=["closed", "not-http", "short-body", "short-chunk", "bad-length", "huge"],
)
def test_anything_odd_is_unavailable(raw: bytes) -> None:
    with pytest.raises(Unavailable):
        read_answer(io.BytesIO(raw))


def ssh_endpoint(url: str = "ssh://me@gpu-box:2222") -> Endpoint:
    return Endpoint(url=url, source="DOCKER_HOST")


def test_ssh_command_never_prompts_and_refuses_unknown_host_keys() -> None:
    account = pwd.getpwuid(os.getuid()).pw_dir
    command = ssh_command(ssh_endpoint(), {"HOME": account})
    assert command is not None
    assert command[-4:] == ["gpu-box", "docker", "system", "dial-stdio"]
    assert command[command.index("--") - 4 : command.index("--")] == ["-p", "2222", "-l", "me"]
    options = [command[i + 1] for i, part in enumerate(command) if part == "-o"]
    assert "BatchMode=yes" in options and "StrictHostKeyChecking=yes" in options
    assert "-F" not in command  # the account's own ~/.ssh, as OpenSSH reads it


def test_ssh_command_reads_the_ssh_folder_home_names(tmp_path: Path) -> None:
    """OpenSSH reads the account's home whatever HOME says; paramiko (the SDK path) reads
    HOME. Both must agree on which keys and known hosts apply."""
    folder = tmp_path / ".ssh"
    folder.mkdir()
    (folder / "id_ed25519").write_text("key")
    command = ssh_command(ssh_endpoint("ssh://gpu-box"), {"HOME": str(tmp_path)})
    assert command is not None
    assert command[command.index("-F") + 1] == "/dev/null"  # no config there: none at all
    options = [command[i + 1] for i, part in enumerate(command) if part == "-o"]
    assert f"UserKnownHostsFile={folder}/known_hosts {folder}/known_hosts2" in options
    assert f"IdentityFile={folder}/id_ed25519" in options
    assert not any(o.startswith("IdentityFile=") and "rsa" in o for o in options)
    assert "-p" not in command and "-l" not in command
    (folder / "config").write_text("Host gpu-box\n  Port 2200\n")
    command = ssh_command(ssh_endpoint("ssh://gpu-box"), {"HOME": str(tmp_path)})
    assert command is not None and command[command.index("-F") + 1] == str(folder / "config")


def test_a_connection_that_dropped_is_made_again_once(tmp_path: Path) -> None:
    """A connection that answered and then ended (the host went away for a while): the
    next read makes a new one instead of failing on the dead pipe; one that never
    answers is not retried."""
    starts = tmp_path / "starts"
    script = tmp_path / "answer-once"
    script.write_text(
        f"#!/bin/sh\necho >> {starts}\nhead -c 1 >/dev/null\n"
        "printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n[]'\n"
    )
    script.chmod(0o755)
    api = SshApi([str(script), "host", "docker", "system", "dial-stdio"])
    try:
        assert api.get("/containers/json") == []
        assert api.get("/containers/json") == []
        assert starts.read_text().count("\n") == 2
    finally:
        api.close()
    refused = SshApi(["false", "host", "docker", "system", "dial-stdio"])
    with pytest.raises(Unavailable):
        refused.get("/info")


def test_a_host_that_never_answers_is_cut_off() -> None:
    api = SshApi(["sh", "-c", "exec sleep 60", "host", "docker", "system", "dial-stdio"], 0.2)
    try:
        with pytest.raises(Unavailable):
            api.get("/info")
    finally:
        api.close()
    assert api._process is None


def kept_at(command: list[str]) -> str | None:
    options = [command[i + 1] for i, part in enumerate(command) if part == "-o"]
    if "ControlMaster=auto" not in options:
        return None
    assert any(o.startswith("ControlPersist=") for o in options)
    return next(o.partition("=")[2] for o in options if o.startswith("ControlPath="))


def test_the_login_is_kept_per_home_user_host_and_port(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The next command reuses the login (Docker's advice for SSH engines), but never one
    made with another HOME's keys and known hosts, or for another user, host or port."""
    runtime = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short, as /run/user/N is
    request.addfinalizer(lambda short=runtime: shutil.rmtree(short, ignore_errors=True))

    def kept(url: str, home: str) -> str | None:
        command = ssh_command(ssh_endpoint(url), {"HOME": home, "XDG_RUNTIME_DIR": str(runtime)})
        assert command is not None
        return kept_at(command)

    path = kept("ssh://me@gpu-box:2222", str(tmp_path / "a"))
    assert path is not None and path.startswith(f"{runtime}/llm-tui-{os.getuid()}/")
    assert len(path.encode()) < 100  # a unix socket's path
    folder = Path(path).parent
    assert folder.stat().st_mode & 0o777 == 0o700
    assert kept("ssh://me@gpu-box:2222", str(tmp_path / "a")) == path
    others = {
        kept("ssh://me@gpu-box:2222", str(tmp_path / "b")),
        kept("ssh://you@gpu-box:2222", str(tmp_path / "a")),
        kept("ssh://me@gpu-box2:2222", str(tmp_path / "a")),
        kept("ssh://me@gpu-box:22", str(tmp_path / "a")),
    }
    assert path not in others and len(others) == 4

    folder.chmod(0o777)  # a folder others can write: no kept login at all
    assert kept("ssh://me@gpu-box:2222", str(tmp_path / "a")) is None
    folder.chmod(0o700)
    runtime = tmp_path / ("deep" * 20)  # a socket path too long to bind: none either
    runtime.mkdir()
    assert kept("ssh://me@gpu-box:2222", str(tmp_path / "a")) is None
