"""One file's bytes from the Hub into its part: ranged GETs, retries, and a size cap.

Every byte received is written and hashed as it arrives (a drop loses nothing), nothing
past the listed size is written, and a server that resumes at the wrong offset or ignores
Range makes the file start cleanly over instead of mixing two answers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.hub.errors import HubError, http_error, network_error
from stack.hub.files import RemoteFile
from stack.hub.jobs import DownloadError, DownloadJob, JobStopped, RetryLater
from stack.hub.parts import (
    PartWriter,
    parse_content_range,
    parse_int,
    parse_retry_after,
    write_sidecar,
)

if TYPE_CHECKING:
    import httpx

    from stack.hub.downloads import Downloader

log = logging.getLogger("stack.hub.downloads")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class FileTransfer:
    """Bring one part up to its listed size with the downloader's client, retries and limits."""

    def __init__(self, downloader: Downloader) -> None:
        self.downloader = downloader

    def run(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        writer: PartWriter,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        tries = 0
        while writer.offset < remote.size:
            job.check_stop()
            before = writer.offset
            try:
                self._stream_once(job, remote, writer, sidecar, meta)
                if writer.offset < remote.size:
                    raise RetryLater(
                        network_error(self.downloader.endpoint, ConnectionError("body ended early"))
                    )
            except RetryLater as retry:
                tries = 1 if writer.offset > before else tries + 1
                if tries >= self.downloader.retry.tries:
                    raise retry.error from retry
                delay = self.downloader.retry.delay(tries)
                if retry.retry_after is not None:
                    delay = min(
                        max(retry.retry_after, delay), self.downloader.retry.max_retry_after
                    )
                log.info("retrying %s in %.1f s: %s", remote.path, delay, retry.error)
                job.sleep(delay)

    def _stream_once(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        writer: PartWriter,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        import httpx

        url = str(meta["url"])  # pinned to the commit once the first answer named it
        headers = {"Range": f"bytes={writer.offset}-"} if writer.offset else {}
        try:
            with self.downloader.http().stream("GET", url, headers=headers) as response:
                self._check_response(job, remote, response, writer)
                self._note_origin(job, remote, response, sidecar, meta)
                self._copy_body(job, remote, response.iter_raw(), writer)
        except httpx.TransportError as exc:
            raise RetryLater(network_error(self.downloader.endpoint, exc)) from exc

    def _note_origin(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        response: httpx.Response,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        """Record the commit and etag served, so a later resume asks for the same bytes."""
        commit = next(
            (
                r.headers.get("X-Repo-Commit")
                for r in [*response.history, response]
                if r.headers.get("X-Repo-Commit")
            ),
            None,
        )
        etag = response.headers.get("X-Linked-Etag") or response.headers.get("ETag")
        changed = False
        if commit and SHA_RE.match(commit) and meta.get("commit") != commit:
            meta["commit"] = commit
            meta["url"] = self.downloader.file_url(job.request.repo_id, commit, remote.path)
            changed = True
        if etag and meta.get("etag") != etag:
            meta["etag"] = etag
            changed = True
        if changed:
            write_sidecar(sidecar, meta)

    def _copy_body(
        self, job: DownloadJob, remote: RemoteFile, body: Iterator[bytes], writer: PartWriter
    ) -> None:
        """Write and hash each piece as it arrives: every byte received is kept, even on a drop.

        Nothing past the listed size is written: a server that keeps sending (a broken
        mirror, an endless chunked body) fails the job once the file is complete, after at
        most one more piece in memory, instead of filling the disk before the sha256 check.

        httpx reads the socket 64 KiB at a time. Re-chunking into bigger pieces (httpx's
        ``chunk_size`` or a buffer of ours) measured slower: every fresh multi-MiB buffer is
        page-faulted in, and big writes hit dirty-page throttling harder. So the loop stays
        flat, and progress, pause and the bandwidth limit cost a clock read per piece.
        """
        d = self.downloader
        limiter, interval, clock = d.limiter, d.progress_interval, d.clock
        write = writer.write
        left = remote.size - writer.offset
        next_tick = clock() + interval
        for chunk in body:
            if len(chunk) > left:
                if left > 0:
                    write(chunk[:left])
                    job.bytes_done += left
                raise self._overrun(remote)
            write(chunk)
            left -= len(chunk)
            job.bytes_done += len(chunk)
            if job.stop_requested:
                raise JobStopped
            if limiter is not None:
                job.sleep(limiter.delay(len(chunk)))
            now = clock()
            if now >= next_tick:
                job.emit(now=now)
                next_tick = now + interval

    def _overrun(self, remote: RemoteFile) -> DownloadError:
        return DownloadError(
            f"{self.downloader.endpoint} sent more than the {remote.size} bytes listed for "
            f"{remote.path}; "
            "the listed bytes are kept, the rest was not written",
            fix="retry (the kept bytes are checked against the sha256); if it happens again, "
            "the server or a proxy on the way is broken: check HF_ENDPOINT",
        )

    def _check_response(
        self, job: DownloadJob, remote: RemoteFile, response: httpx.Response, writer: PartWriter
    ) -> None:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise RetryLater(
                http_error(
                    status,
                    response.headers.get("X-Error-Code"),
                    endpoint=self.downloader.endpoint,
                    has_token=bool(self.downloader.token),
                    token_withheld=self.downloader.token_withheld,
                    repo_id=job.request.repo_id,
                    retry_after=response.headers.get("Retry-After"),
                ),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if status == 416:
            raise DownloadError(
                f"{remote.path} on the Hub is shorter than the listing said ({remote.size} bytes)",
                fix="the repo changed: refresh its file list and download again",
            )
        if status >= 400:
            raise http_error(
                status,
                response.headers.get("X-Error-Code"),
                endpoint=self.downloader.endpoint,
                has_token=bool(self.downloader.token),
                token_withheld=self.downloader.token_withheld,
                repo_id=job.request.repo_id,
                filename=remote.path,
                revision=job.request.revision,
            )
        if status == 206:
            start, total = parse_content_range(response.headers.get("Content-Range"))
            if start != writer.offset:  # a confused server: start this file cleanly over
                job.set_bytes(job.bytes_done - writer.offset)
                writer.restart()
                raise RetryLater(HubError(f"the server resumed {remote.path} at offset {start}"))
        elif status == 200:
            total = parse_int(response.headers.get("Content-Length"))
            if writer.offset:  # the server ignored our Range: start this file cleanly over
                job.set_bytes(job.bytes_done - writer.offset)
                writer.restart()
        else:
            raise HubError(f"unexpected answer {status} for {remote.path}", fix="retry later")
        if total is not None and total != remote.size:
            raise DownloadError(
                f"{remote.path} on the Hub is {total} bytes, the listing said {remote.size}",
                fix="the repo changed: refresh its file list and download again",
            )
