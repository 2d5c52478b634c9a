"""A local HTTP server that answers the Hugging Face hub's file endpoints, for testing `models pull`.

It serves real files from disk at /{repo}/resolve/{revision}/{filename} with the headers
huggingface-hub reads (commit, sha256 ETag, size), honours Range requests, and can be told
to cut a transfer short or to advertise a wrong sha256. Loopback only.
"""

from __future__ import annotations

import hashlib
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

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], HubFile] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> HubFile | None:
                m = re.match(r"^/(.+?/.+?)/resolve/([^/]+)/(.+)$", self.path.split("?")[0])
                if not m:
                    return None
                return hub.files.get((m.group(1), m.group(3)))

            def _headers(self, f: HubFile, status: int, length: int, extra: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{f.sha256}"')
                self.send_header("X-Linked-Etag", f'"{f.sha256}"')
                self.send_header("X-Linked-Size", str(f.path.stat().st_size))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(length))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()

            def _not_found(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Error-Message", "Entry not found")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                f = self._lookup()
                if f is None:
                    return self._not_found()
                f.requests.append("HEAD")
                self._headers(f, 200, f.path.stat().st_size, {})

            def do_GET(self) -> None:  # noqa: N802
                f = self._lookup()
                if f is None:
                    return self._not_found()
                data = f.path.read_bytes()
                rng = self.headers.get("Range", "")
                f.requests.append(rng or "GET")
                start = 0
                if m := re.match(r"bytes=(\d+)-", rng):
                    start = int(m.group(1))
                    body = data[start:]
                    self._headers(f, 206, len(body), {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
                else:
                    body = data
                    self._headers(f, 200, len(body), {})
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
