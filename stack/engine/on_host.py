"""What runs on a remote engine's host, inside llm-tui's short-lived helper container.

`stack.engine.helper` copies the `stack` package and a ``request.json`` into a container
of GATEWAY_IMAGE (it has Python and httpx), with the models volume or folder at
``/models``, and runs ``python3 -m stack.engine.on_host``. The same code as on this
machine does the work, so the same guarantees hold there: a download is the local
`Downloader` (resumable ``.part``, sha256 verified, a mismatch kept as ``.corrupt``, a
partial never deleted, one writer per part), the library is `scan_library` (headers read
in place, never copied), delete is `delete_model`.

It talks back on stdout, one message per line: ``@llm-tui {json}``, with ``type``
``progress`` (a download's snapshot), ``result`` (the task's answer) or ``error``
(``message`` and ``fix``). SIGTERM (the container being stopped) cancels a download: the
part and its sidecar stay for the next try.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

MARK = "@llm-tui "
ROOT = Path("/models")
REQUEST = "/opt/llm-tui/request.json"
# Inside the models folder, hidden (dot files are skipped by the scan): headers read once.
LIBRARY_CACHE = ".llm-tui-library.json"


def say(kind: str, **data: Any) -> None:
    sys.stdout.write(MARK + json.dumps({"type": kind, **data}) + "\n")
    sys.stdout.flush()


def _error_fields(error: Any) -> dict[str, Any]:
    return {"message": getattr(error, "message", str(error)), "fix": getattr(error, "fix", None)}


def progress_fields(progress: Any) -> dict[str, Any]:
    return {
        "state": str(progress.state),
        "bytes_done": progress.bytes_done,
        "total": progress.total,
        "current_file": progress.current_file,
        "final": progress.final,
        "error": _error_fields(progress.error) if progress.error is not None else None,
    }


def request_from(data: dict[str, Any]) -> Any:
    from stack.hub.files import RemoteFile
    from stack.hub.jobs import DownloadRequest

    files = tuple(RemoteFile(f["path"], int(f["size"]), f.get("sha256")) for f in data["files"])
    return DownloadRequest(data["repo_id"], files, data["revision"], data.get("folder", ""))


def request_fields(request: Any) -> dict[str, Any]:
    return {
        "repo_id": request.repo_id,
        "revision": request.revision,
        "folder": request.folder,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in request.files],
    }


# --- tasks --------------------------------------------------------------------------------


def task_download(payload: dict[str, Any], stop: threading.Event) -> None:
    from stack.hub.downloads import Downloader

    downloader = Downloader(
        ROOT,
        endpoint=payload.get("endpoint", ""),
        token=payload.get("token", ""),
        token_withheld=payload.get("token_withheld"),
    )
    try:
        job = downloader.enqueue(
            request_from(payload["request"]), lambda p: say("progress", **progress_fields(p))
        )

        def cancel_on_stop() -> None:
            stop.wait()
            job.cancel()

        threading.Thread(target=cancel_on_stop, daemon=True).start()
        final = job.wait()
    finally:
        downloader.close(cancel=True)
    say("result", **progress_fields(final))


def task_interrupted(payload: dict[str, Any], stop: threading.Event) -> None:
    from stack.hub.downloads import Downloader

    found = Downloader(ROOT).interrupted()
    say(
        "result",
        found=[{"request": request_fields(r), "present": present} for r, present in found],
    )


def task_scan(payload: dict[str, Any], stop: threading.Event) -> None:
    from stack.models.library import scan_library

    models = scan_library(
        ROOT,
        cache_path=ROOT / LIBRARY_CACHE,
        chat_model=payload.get("chat_model", ""),
        code_model=payload.get("code_model", ""),
    )
    say("result", models=[model_fields(m) for m in models])


def model_fields(model: Any) -> dict[str, Any]:
    return {
        "relative_path": model.relative_path,
        "shards": list(model.shards),
        "size": model.size,
        "mtime_ns": model.mtime_ns,
        "header": model.header.as_dict() if model.header is not None else None,
        "broken": model.broken,
        "is_chat": model.is_chat,
        "is_code": model.is_code,
    }


def task_check(payload: dict[str, Any], stop: threading.Event) -> None:
    """Why each model cannot be served (its file, its split set, its header), or ""."""
    from stack.engine.errors import model_problem
    from stack.models.gguf import read_header
    from stack.models.header import GgufError
    from stack.models.splits import check_split_set

    answers: dict[str, dict[str, Any]] = {}
    for model in payload.get("models", []):
        problem = model_problem(ROOT, model)
        answer: dict[str, Any] = {"message": "", "fix": "", "header": ""}
        if problem is not None:
            answer.update(message=problem.message, fix=problem.fix)
        else:
            try:
                header = read_header(ROOT / model)
                if header.split_count > 1:
                    check_split_set(ROOT / model)
            except GgufError as exc:
                answer["header"] = exc.reason
        answers[model] = answer
    say("result", models=answers, free=_free(ROOT))


def task_delete(payload: dict[str, Any], stop: threading.Event) -> None:
    from stack.models.library import delete_model, scan_library

    wanted = payload["model"]
    models = scan_library(ROOT, cache_path=ROOT / LIBRARY_CACHE)
    model = next((m for m in models if wanted in (m.relative_path, *m.shards)), None)
    if model is None:
        say("error", message=f"{wanted} is not a model there", fix="see `llm-tui models`")
        return
    removed = delete_model(ROOT, model)
    say("result", removed=[str(p.relative_to(ROOT)) for p in removed], size=model.size)


def _free(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


TASKS = {
    "download": task_download,
    "interrupted": task_interrupted,
    "scan": task_scan,
    "check": task_check,
    "delete": task_delete,
}


def main() -> int:
    from stack.errors import expected_failure

    with open(REQUEST, encoding="utf-8") as handle:
        request = json.load(handle)
    os.unlink(REQUEST)  # it may hold HF_TOKEN: gone from the container once read
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        TASKS[request["task"]](request.get("payload", {}), stop)
    except Exception as exc:
        known = expected_failure(exc)
        if known is None:
            raise
        say("error", **_error_fields(known))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
