"""Read-only Engine API calls without the Docker SDK: on a local socket, or over SSH.

`llm-tui status` (and the status line of scripts that poll it) needs two reads: the
stack's containers, inspected, and the engine's runtimes. Importing docker-py (requests,
urllib3, and paramiko for SSH) for them costs ~0.2 s locally and ~0.7 s over SSH, most of
the command's time, against ~1 ms for the calls themselves.

- On a ``unix://`` engine these reads go straight to the socket: one HTTP/1.0 request per
  connection (the engine answers and closes, so no chunked bodies).
- On an ``ssh://`` engine they go through the system ``ssh`` client running
  ``docker system dial-stdio`` on the host, as the docker CLI itself does: one connection,
  HTTP/1.1 requests one after another on it, the login started early (`start`) so that
  it overlaps the caller's own work, and kept open a minute after the last reader
  (``ControlMaster``/``ControlPersist``, `control_path`), so the next command skips it.
  ``BatchMode`` (never a prompt) and ``StrictHostKeyChecking=yes`` (an unknown host key
  is refused, as the SDK path refuses it); ``~/.ssh`` is the one ``$HOME`` names, as for
  paramiko on the SDK path.

Unversioned paths (the engine's own API version; the fields read here have not moved in
years). Anything unexpected — no socket, no ssh client, a login refused, an error status, a
body that is not JSON — raises `Unavailable`, and the caller takes the SDK path, whose
errors say what is wrong and how to fix it. Nothing here writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from stack.engine.endpoint import Endpoint

if TYPE_CHECKING:
    from stack.settings import Settings

TIMEOUT_S = 10.0
SSH_CONNECT_TIMEOUT_S = 5
# How long the ssh client keeps a login open after its last reader ends, so that the
# next `status` (a watch loop, the next command) skips the ~0.17 s login: Docker's own
# advice for SSH engines (ControlMaster auto, ControlPersist), kept short.
SSH_KEEP_S = 60
MAX_BODY = 64 << 20  # an answer larger than this is not one of ours


class Unavailable(Exception):
    """This engine cannot answer the read here (the SDK path then explains why)."""


@dataclass(frozen=True)
class ContainerView:
    """An inspected container: the attributes `status` reads, as docker-py names them."""

    attrs: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.attrs.get("Id", ""))

    @property
    def name(self) -> str:
        return str(self.attrs.get("Name", "")).lstrip("/")

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    @property
    def status(self) -> str:
        return str((self.attrs.get("State") or {}).get("Status", ""))


def socket_path(endpoint: Endpoint) -> str | None:
    """The socket of a ``unix://`` endpoint that can be used as it is (else None)."""
    if endpoint.transport != "unix" or endpoint.problem or "://" not in endpoint.url:
        return None
    return endpoint.url.split("://", 1)[1] or None


class DirectApi:
    """The reads `status` makes; `answer` is how one GET travels."""

    name = "engine"

    def answer(self, target: str) -> tuple[int, bytes]:
        raise NotImplementedError

    def get(self, target: str, *, missing_ok: bool = False) -> Any:
        """GET ``target`` (a path with its query) as JSON; None for a 404 when ``missing_ok``."""
        code, body = self.answer(target)
        if code == 404 and missing_ok:
            return None
        if code != 200:
            raise Unavailable(f"{self.name}: GET {target} answered {code}")
        try:
            return json.loads(body)
        except ValueError:
            raise Unavailable(f"{self.name}: GET {target} did not answer JSON") from None

    def containers(self, label: str) -> list[ContainerView]:
        """Every container (running or not) with ``label``, inspected; one removed between
        the listing and its inspect is simply gone, as docker-py's ``ignore_removed``."""
        filters = quote(json.dumps({"label": [label]}))
        listed = self.get(f"/containers/json?all=1&filters={filters}")
        found = []
        for summary in listed if isinstance(listed, list) else []:
            attrs = self.get(f"/containers/{summary['Id']}/json", missing_ok=True)
            if isinstance(attrs, dict):
                found.append(ContainerView(attrs))
        return found

    def runtimes(self) -> dict[str, Any]:
        info = self.get("/info")
        return dict(info.get("Runtimes") or {}) if isinstance(info, dict) else {}

    def start(self) -> None:
        """Make the connection now, where making one takes a while (SSH)."""

    def close(self) -> None:
        pass


class LocalApi(DirectApi):
    """A local socket: one connection per request."""

    def __init__(self, path: str, timeout: float = TIMEOUT_S) -> None:
        self.path = self.name = path
        self.timeout = timeout

    def answer(self, target: str) -> tuple[int, bytes]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                chunks = []
                while chunk := sock.recv(1 << 16):
                    chunks.append(chunk)
        except OSError as error:
            raise Unavailable(f"{self.path}: {error}") from None
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        try:
            return int(head.split(b" ", 2)[1]), body
        except (IndexError, ValueError):
            raise Unavailable(f"{self.path}: not an HTTP answer") from None


def read_answer(stream: IO[bytes]) -> tuple[int, bytes]:
    """One HTTP/1.1 answer from ``stream`` (Content-Length or chunked), leaving the stream
    at the start of the next; `Unavailable` when it ends early or is not HTTP."""

    def line() -> bytes:
        got = stream.readline(1 << 16)
        if not got.endswith(b"\n"):
            raise Unavailable("the connection closed mid-answer")
        return got.rstrip(b"\r\n")

    status = line()
    try:
        code = int(status.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise Unavailable(f"not an HTTP answer: {status[:60]!r}") from None
    headers: dict[bytes, bytes] = {}
    while header := line():
        name, _, value = header.partition(b":")
        headers[name.strip().lower()] = value.strip()

    def exactly(size: int) -> bytes:
        if size > MAX_BODY:
            raise Unavailable(f"an answer of {size} bytes")
        data = stream.read(size)
        if len(data) != size:
            raise Unavailable("the connection closed mid-answer")
        return data

    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while size := int(line().split(b";", 1)[0] or b"0", 16):
            parts.append(exactly(size))
            line()  # the CRLF after each chunk
        while line():  # trailers, up to the blank line
            pass
        return code, b"".join(parts)
    try:
        return code, exactly(int(headers.get(b"content-length", b"0")))
    except ValueError:
        raise Unavailable("a bad Content-Length") from None


def ssh_command(endpoint: Endpoint, environ: dict[str, str] | None = None) -> list[str] | None:
    """The system ssh client's command line for ``docker system dial-stdio`` on the host,
    None without an ssh client. OpenSSH reads the account's home, not ``$HOME``; when they
    differ, ``$HOME``'s config, known hosts and keys are named, as paramiko reads them."""
    ssh = shutil.which("ssh")
    if ssh is None or not endpoint.hostname:
        return None
    command = [
        ssh,
        *("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"),
        *("-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_S}", "-o", "ClearAllForwardings=yes"),
        # Curve25519 first, as paramiko (the SDK path) negotiates: OpenSSH 9's default, the
        # hybrid post-quantum exchange, took ~150 ms more a login here.
        *("-o", "KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org"),
        "-T",
    ]
    env = os.environ if environ is None else environ
    home = env.get("HOME", "")
    try:
        import pwd

        account = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):  # no such account: OpenSSH itself refuses then
        account = home
    if home and os.path.realpath(home) != os.path.realpath(account):
        folder = os.path.join(home, ".ssh")
        config = os.path.join(folder, "config")
        command += ["-F", config if os.path.exists(config) else "/dev/null"]
        known = " ".join(os.path.join(folder, n) for n in ("known_hosts", "known_hosts2"))
        command += ["-o", f"UserKnownHostsFile={known}"]
        for key in ("id_rsa", "id_ecdsa", "id_ed25519"):
            if os.path.exists(os.path.join(folder, key)):
                command += ["-o", f"IdentityFile={os.path.join(folder, key)}"]
    kept = control_path(endpoint, home or account, env)
    if kept is not None:
        command += ["-o", "ControlMaster=auto", "-o", f"ControlPath={kept}"]
        command += ["-o", f"ControlPersist={SSH_KEEP_S}"]
    if endpoint.port:
        command += ["-p", str(endpoint.port)]
    if endpoint.username:
        command += ["-l", endpoint.username]
    return [*command, "--", endpoint.hostname, "docker", "system", "dial-stdio"]


def control_path(endpoint: Endpoint, home: str, env: Mapping[str, str]) -> str | None:
    """Where the ssh client keeps this login open between commands: one socket per HOME,
    user, host and port (so a HOME with other keys or known hosts never borrows another's
    login), in a folder only this user can enter. None where that cannot be had (Windows'
    OpenSSH has no multiplexing; a folder someone else owns or can write)."""
    if os.name != "posix":
        return None
    runtime = env.get("XDG_RUNTIME_DIR", "")
    base = runtime if runtime and os.path.isdir(runtime) else env.get("TMPDIR") or "/tmp"
    folder = os.path.join(base, f"llm-tui-{os.getuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    who = "\0".join((home, endpoint.username or "", endpoint.hostname or "", str(endpoint.port)))
    path = os.path.join(folder, "ssh-" + hashlib.sha256(who.encode()).hexdigest()[:20])
    return path if len(path.encode()) < 100 else None  # a unix socket's path is short


class SshApi(DirectApi):
    """The engine on an SSH host, through ``ssh HOST docker system dial-stdio``: one
    connection for every request (HTTP/1.1), started at the first and closed by `close`."""

    def __init__(self, command: list[str], timeout: float = TIMEOUT_S) -> None:
        self.command = command
        self.timeout = timeout
        self.name = command[-4] if len(command) >= 4 else "ssh"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _pipe(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            try:
                self._process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError as error:
                raise Unavailable(f"ssh: {error}") from None
        return self._process

    def start(self) -> None:
        """Log in now (the ssh client's handshake, ~0.2 s), so that it runs while the
        caller does other work; the first read then finds the connection made."""
        with self._lock:
            self._pipe()

    def answer(self, target: str) -> tuple[int, bytes]:
        with self._lock:
            reused = self._process is not None and self._process.poll() is None
            try:
                return self._ask(self._pipe(), target)
            except Unavailable:
                if not reused:
                    raise
            # A connection that answered before and dropped since (the host rebooted, the
            # network went away for a while): one new connection, once.
            return self._ask(self._pipe(), target)

    def _ask(self, process: subprocess.Popen[bytes], target: str) -> tuple[int, bytes]:
        assert process.stdin is not None and process.stdout is not None
        # A host that stops answering: the pipe is cut, the read ends, and the SDK path
        # (with its own timeouts) says what is wrong.
        timer = threading.Timer(self.timeout, process.kill)
        timer.daemon = True
        timer.start()
        try:
            process.stdin.write(f"GET {target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
            process.stdin.flush()
            return read_answer(process.stdout)
        except OSError as error:
            self._end(process)
            raise Unavailable(f"ssh: {error}") from None
        except Unavailable:
            self._end(process)
            raise
        finally:
            timer.cancel()

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._process is process:
            self._process = None

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                self._end(self._process)


def direct_api(endpoint: Endpoint) -> DirectApi | None:
    """How this endpoint's reads go without the SDK; None where they cannot."""
    if endpoint.problem:
        return None
    path = socket_path(endpoint)
    if path is not None:
        return LocalApi(path)
    if endpoint.transport == "ssh":
        command = ssh_command(endpoint)
        return SshApi(command) if command else None
    return None


def read_stack(
    api: DirectApi, settings: Settings, nvidia: bool | None
) -> tuple[list[ContainerView], bool | None] | None:
    """The stack's containers (not a remote host's short-lived helpers) and whether the
    engine has the NVIDIA runtime (asked only for GPU=auto, once: ``nvidia`` is what was
    known); None when ``api`` cannot answer."""
    from stack.engine import plan as svc
    from stack.engine.status import stack_members

    try:
        if settings.gpu == "auto" and nvidia is None:
            nvidia = "nvidia" in api.runtimes()
        found = api.containers(f"{svc.LABEL_STACK}={settings.stack_name}")
    except Unavailable:
        return None
    return stack_members(found), nvidia
