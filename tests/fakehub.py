"""A local HTTP server that answers the Hugging Face hub's file endpoints, for testing `models pull`.

It serves real files from disk at /{repo}/resolve/{revision}/{filename} with the headers
huggingface-hub reads (commit, sha256 ETag, size), honours Range requests, and can be told
to cut a transfer short, to advertise a wrong sha256 or none at all (as the hub does for a
file kept in git rather than LFS), to answer with a server error, or to know only some
revisions. Loopback only.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    path: Path
    sha256: str = ""
    cut_after: int | None = None  # send only this many bytes of the first full GET, then hang up
    delay: float = 0.0  # seconds to wait between 256 KB pieces of a transfer (a slow link)
    requests: list[str] = field(default_factory=list)  # "HEAD" or the Range header of each GET
    publish_sha256: bool = True  # False: the ETag is a git blob sha1, as the hub sends for non-LFS files
    error: int | None = None  # answer every request with this HTTP status (e.g. 503)
    revisions: dict[str, str] = field(default_factory=lambda: {"main": COMMIT})  # branch or tag -> commit
    asked: list[str] = field(default_factory=list)  # the revision named in each request's path

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], HubFile] = {}
        # Where hf-xet would keep its chunk cache while each GET was served (HF_XET_CACHE; the client runs in
        # this process): checked to lie inside the data dir.
        self.xet_cache_during_get: list[str | None] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> tuple[HubFile, str] | None:
                """The file asked for and the commit of the revision named, after answering any refusal."""
                m = re.match(r"^/(.+?/.+?)/resolve/([^/]+)/(.+)$", self.path.split("?")[0])
                f = hub.files.get((m.group(1), m.group(3))) if m else None
                if m is None or f is None:
                    self._refuse(404, "EntryNotFound", "Entry not found")
                    return None
                f.asked.append(m.group(2))
                if f.error is not None:
                    self._refuse(f.error, "", "the hub is having a bad day")
                    return None
                commit = f.revisions.get(m.group(2)) or (m.group(2) if m.group(2) in f.revisions.values() else None)
                if commit is None:
                    self._refuse(404, "RevisionNotFound", f"Invalid rev id: {m.group(2)}")
                    return None
                return f, commit

            def _headers(self, f: HubFile, commit: str, status: int, length: int, extra: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", commit)
                if f.publish_sha256:
                    self.send_header("ETag", f'"{f.sha256}"')
                    self.send_header("X-Linked-Etag", f'"{f.sha256}"')
                    self.send_header("X-Linked-Size", str(f.path.stat().st_size))
                else:
                    self.send_header("ETag", f'"{hashlib.sha1(f.path.read_bytes()).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(length))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()

            def _refuse(self, status: int, code: str, message: str) -> None:
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                found = self._lookup()
                if found is None:
                    return
                f, commit = found
                f.requests.append("HEAD")
                self._headers(f, commit, 200, f.path.stat().st_size, {})

            def do_GET(self) -> None:  # noqa: N802
                found = self._lookup()
                if found is None:
                    return
                f, commit = found
                hub.xet_cache_during_get.append(os.environ.get("HF_XET_CACHE"))
                data = f.path.read_bytes()
                rng = self.headers.get("Range", "")
                f.requests.append(rng or "GET")
                start = 0
                if m := re.match(r"bytes=(\d+)-", rng):
                    start = int(m.group(1))
                    body = data[start:]
                    self._headers(
                        f, commit, 206, len(body), {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                    )
                else:
                    body = data
                    self._headers(f, commit, 200, len(body), {})
                if f.cut_after is not None and start == 0:
                    cut, f.cut_after = f.cut_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if not f.delay:
                    self.wfile.write(body)
                    return
                for i in range(0, len(body), 1 << 18):
                    self.wfile.write(body[i : i + (1 << 18)])
                    self.wfile.flush()
                    time.sleep(f.delay)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo: str, filename: str, path: Path, **kwargs: object) -> HubFile:
        f = HubFile(path, **kwargs)  # type: ignore[arg-type]
        self.files[(repo, filename)] = f
        return f

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
