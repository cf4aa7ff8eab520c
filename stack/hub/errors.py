"""Hub failures as plain answers, and where HF_TOKEN may travel.

Every Hub failure becomes a `HubError` whose message says what to do. Which endpoint may
see the token is `Settings.hub_token`'s decision; beneath it, :func:`token_for` never lets
it travel over plain http except to this machine.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from stack.errors import LlmTuiError

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKENS_URL = "https://huggingface.co/settings/tokens"


class HubError(LlmTuiError):
    """The Hub refused or could not answer; the message says what to do."""

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


# --- the token --------------------------------------------------------------------------


def may_send_token(endpoint: str) -> bool:
    """True for https, and for plain http to this machine only (a loopback mirror).

    Anyone between here and a plain-http server can read the token off the wire.
    """
    parts = urlsplit(endpoint or DEFAULT_ENDPOINT)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if parts.scheme != "http" or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(endpoint: str, token: str) -> tuple[str, str | None]:
    """The token to send to ``endpoint`` ("" for none) and why it is withheld, if it is."""
    if not token or may_send_token(endpoint):
        return token, None
    return "", (
        f"HF_TOKEN is not sent to {endpoint}: plain http can be read on the way; "
        "use an https address, or a mirror on this machine"
    )


# --- errors -----------------------------------------------------------------------------


def map_hub_exception(
    exc: BaseException,
    *,
    endpoint: str,
    has_token: bool,
    token_withheld: str | None = None,
    repo_id: str | None = None,
    filename: str | None = None,
    revision: str | None = None,
) -> HubError:
    """Turn a `huggingface_hub`/`httpx` failure into a `HubError` that says what to do."""
    if isinstance(exc, HubError):
        return exc
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        headers = getattr(response, "headers", None) or {}
        return http_error(
            status,
            headers.get("X-Error-Code"),
            endpoint=endpoint,
            has_token=has_token,
            token_withheld=token_withheld,
            repo_id=repo_id or getattr(exc, "repo_id", None),
            filename=filename,
            revision=revision,
            retry_after=headers.get("Retry-After"),
        )
    if type(exc).__name__ == "OfflineModeIsEnabled":
        return HubError(
            "HF_HUB_OFFLINE is set, so the Hub is not contacted", fix="unset HF_HUB_OFFLINE"
        )
    if _is_network_error(exc):
        return network_error(endpoint, exc)
    return HubError(f"the Hub request failed: {exc}", fix="try again; if it persists, report it")


def _is_network_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "NetworkError"}) or isinstance(
        exc, ConnectionError | TimeoutError
    )


def network_error(endpoint: str, exc: BaseException | None = None) -> HubError:
    detail = f" ({exc})" if exc is not None and str(exc) else ""
    return HubError(
        f"cannot reach {endpoint}{detail}",
        fix="check the network or HF_ENDPOINT",
    )


def http_error(
    status: int,
    code: str | None,
    *,
    endpoint: str,
    has_token: bool,
    token_withheld: str | None = None,
    repo_id: str | None = None,
    filename: str | None = None,
    revision: str | None = None,
    retry_after: str | None = None,
) -> HubError:
    """A `HubError` for an error answer, from its status and the Hub's ``X-Error-Code``.

    ``token_withheld`` (why HF_TOKEN was not sent) turns an answer a token might change
    into that reason, so nobody replaces a good token that never left this machine.
    """
    repo = repo_id or "this repo"
    repo_url = f"{endpoint}/{repo_id}" if repo_id else endpoint
    withheld = token_withheld if not has_token else None
    if withheld and code == "GatedRepo":
        return HubError(
            f"{repo} is gated (accept its license at {repo_url}), and HF_TOKEN was withheld",
            fix=withheld,
            status=status,
        )
    if withheld and (code == "RepoNotFound" or status in (401, 403)):
        return HubError(
            f"{endpoint} did not show {repo} ({status}): it is missing or private, "
            "and HF_TOKEN was withheld",
            fix=f"check the name; {withheld}",
            status=status,
        )
    if code == "GatedRepo":
        if has_token:
            return HubError(
                f"{repo} is gated and HF_TOKEN has no access to it yet",
                fix=f"accept its license on the website ({repo_url}) with the account that "
                "owns HF_TOKEN, then retry",
                status=status,
            )
        return HubError(
            f"{repo} is gated: accept its license on the website ({repo_url}) and set HF_TOKEN",
            fix=f"create a read token at {TOKENS_URL} and put it in HF_TOKEN",
            status=status,
        )
    if code == "RevisionNotFound":
        return HubError(
            f"revision {revision or '?'} of {repo} was not found on {endpoint}",
            fix="pick the file again from the repo's current listing",
            status=status,
        )
    if code == "EntryNotFound":
        return HubError(
            f"file {filename or '?'} was not found in {repo}",
            fix="it may have been renamed or deleted: refresh the repo's file list",
            status=status,
        )
    if status in (401, 403) and has_token and code != "RepoNotFound":
        return HubError(
            f"HF_TOKEN was refused by {endpoint} ({status})",
            fix=f"check or replace the token ({TOKENS_URL}), or clear HF_TOKEN",
            status=status,
        )
    if status in (401, 404) or code == "RepoNotFound":
        return HubError(
            f"repository {repo} was not found on {endpoint}",
            fix="check the name"
            + ("" if has_token else "; a private repo also needs HF_TOKEN")
            + (f"; or the token in HF_TOKEN cannot see it ({status})" if has_token else ""),
            status=status,
        )
    if status == 403:
        return HubError(
            f"{endpoint} refused access to {repo} (403)",
            fix="set HF_TOKEN to a token that can read it",
            status=status,
        )
    if status == 429:
        wait = f" for {retry_after} s" if retry_after else ""
        return HubError(
            f"{endpoint} is rate-limiting requests (429)",
            fix=f"wait{wait} and retry; a token in HF_TOKEN raises the limit",
            status=status,
        )
    if status >= 500:
        return HubError(
            f"{endpoint} had a server error ({status})",
            fix="the Hub (or mirror) is having trouble: try again in a few minutes",
            status=status,
        )
    return HubError(
        f"{endpoint} answered {status} for {repo}",
        fix="retry; if it persists, check HF_ENDPOINT",
        status=status,
    )
