"""`homefire serve --api` started as a subprocess on a free loopback port, for the API tests and bench/api.py."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BANNER = re.compile(r"serving the API on http://([\w.\[\]:]+):(\d+)/v1")


class Served:
    """A running `homefire serve --api`: its port, its log, and a raw HTTP helper."""

    def __init__(self, args: list[str], home: Path, env: dict[str, str] | None = None, limit: float = 240) -> None:
        self.home = home
        env = dict(env or os.environ, HOMEFIRE_HOME=str(home), PYTHONUNBUFFERED="1")
        env.pop("HF_ENDPOINT", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homefire", "serve", "--api", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.log: list[str] = []
        self.port = 0
        found = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line)
                match = BANNER.search(line)
                if match and not self.port:
                    self.port = int(match.group(2))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(limit) or not self.port:
            self.stop()
            raise AssertionError(f"the API server did not start: {''.join(self.log)}")
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """One plain HTTP request; the status, headers and the body parsed as JSON when it is JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            out_headers = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        try:
            parsed: Any = json.loads(payload)
        except ValueError:
            parsed = payload.decode(errors="replace")
        return resp.status, out_headers, parsed

    def status(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        code, _, body = self.request("GET", "/homefire/status", headers=headers)
        assert code == 200, body
        return body

    def wait_for(self, condition: Callable[[], bool], limit: float = 120, what: str = "a condition") -> None:
        """Wait until `condition()` holds (checked every 50 ms; `limit` only bounds a hang)."""
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{what} never held; the server said: {''.join(self.log[-20:])}")
            time.sleep(0.05)
