"""The browser route: `homefire serve --web` run for real, fetched over HTTP, and driven by a real headless Chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from homefire.web.server import WebError, check_bind, is_loopback

from .conftest import cli_env, homefire_cmd

aiohttp = pytest.importorskip("aiohttp", reason="the web extra is not installed: pip install -e '.[web]'")

TOKEN = "test-token-0123456789"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str  # http://127.0.0.1:PORT/
    banner: list[str]


@pytest.fixture
def serve(homefire_home: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Served:
        proc = subprocess.Popen(
            homefire_cmd("serve", "--web", "--port", "0", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(homefire_home),
        )
        started.append(proc)
        banner: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:  # the server says where it listens once the socket is bound
            banner.append(line)
            found = re.search(r"serving the chat app on (http://127\.0\.0\.1:\d+/)", line)
            if found:
                # Keep reading what it logs (a chat process's errors among it), so a full pipe never stalls it.
                threading.Thread(target=banner.extend, args=(proc.stdout,), daemon=True).start()
                return Served(proc, found.group(1), banner)
        raise AssertionError(f"the server did not start: {''.join(banner)}")

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=30)


class Links(HTMLParser):
    """Every address an HTML page can make a browser load."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            loads = name in ("src", "href", "action", "poster", "srcset") or (name[:5] == "data-" and "url" in name)
            if value and loads:
                self.urls.append(value)
            if name == "style" and value:
                self.urls += css_urls(value)


def css_urls(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # licence comments name their authors' sites
    return [m.strip("'\"") for m in re.findall(r"url\(\s*([^)]+?)\s*\)", css)] + re.findall(
        r"@import\s+['\"]([^'\"]+)", css
    )


def is_local(url: str, base: str) -> bool:
    parts = urlsplit(urljoin(base, url))
    if parts.scheme in ("data", "blob"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.netloc == urlsplit(base).netloc


# -- addresses and tokens ---------------------------------------------------------------------


def test_loopback_needs_no_token_but_any_other_address_does() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("example.org")
    assert check_bind("127.0.0.1", None) is None
    with pytest.raises(WebError, match="needs an access token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(WebError, match="at least 12"):
        check_bind("0.0.0.0", "short")
    made = check_bind("0.0.0.0", "auto")
    assert made and len(made) >= 20 and made != check_bind("0.0.0.0", "auto")


def test_serving_beyond_loopback_without_a_token_is_refused_in_one_line(homefire_home: Path) -> None:
    out = subprocess.run(
        homefire_cmd("serve", "--web", "--host", "0.0.0.0"), capture_output=True, text=True, env=cli_env(homefire_home)
    )
    assert out.returncode != 0 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "needs an access token" in out.stderr and "--token auto" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_generated_token_is_printed_with_the_address(serve: Any) -> None:
    served = serve("--token", "auto")
    line = next(x for x in served.banner if "serving the chat app" in x)
    assert re.search(r"\?token=[\w-]{20,}", line)


# -- the page loads nothing from outside ------------------------------------------------------


async def test_the_page_and_everything_it_references_are_local(serve: Any) -> None:
    served = serve()
    base = served.url
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as page:
            assert page.status == 200
            html = await page.text()
            csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "font-src 'self'" in csp
        links = Links()
        links.feed(html)
        assert links.urls, "the page references its script and style"
        assert not re.search(r"<script>[^<]", html) and "fonts.googleapis" not in html
        seen, todo = set(), list(links.urls)
        while todo:
            url = todo.pop()
            absolute = urljoin(base, url)
            assert is_local(url, base), f"the page would load {url} from another host"
            if absolute in seen or urlsplit(absolute).scheme not in ("http", "https"):
                continue
            seen.add(absolute)
            async with http.get(absolute) as res:
                assert res.status == 200, f"{absolute}: {res.status}"
                body = await res.read()
            if absolute.endswith(".css"):
                todo += [urljoin(absolute, u) for u in css_urls(body.decode())]
            if absolute.endswith(".js"):
                # No absolute address to another host anywhere in the scripts (protocol checks like "http:" are fine).
                assert not re.findall(rb"(?:https?|wss?)://[A-Za-z0-9]", body), absolute
        assert any(u.endswith("textual.js") for u in seen) and any(u.endswith(".ttf") for u in seen)


# -- access control ---------------------------------------------------------------------------


async def test_with_a_token_the_page_files_and_websocket_are_refused_without_it(serve: Any) -> None:
    served = serve("--token", TOKEN)
    base = served.url
    ws = base.replace("http://", "ws://") + "ws"
    async with aiohttp.ClientSession() as http:
        for path in ("", "?token=wrong-token-0123456789", "static/js/textual.js", "assets/page.js"):
            async with http.get(base + path) as res:
                assert res.status == 401, path
                assert "access token" in await res.text()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws)
        assert refused.value.status == 401
        async with http.get(base, headers={"Authorization": f"Bearer {TOKEN}"}) as res:
            assert res.status == 200

    # A browser opens the printed address once; the token then lives in an HTTP-only, same-site cookie.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # keeps IP-host cookies
        async with browser.get(f"{base}?token={TOKEN}", allow_redirects=False) as res:
            assert res.status == 303 and res.headers["Location"] == "/"
            cookie = res.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with browser.get(base) as res:
            assert res.status == 200
        async with browser.get(base + "static/js/textual.js") as res:
            assert res.status == 200
        with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
            await browser.ws_connect(ws, headers={"Origin": "http://evil.example"})
        assert foreign.value.status == 403
        async with browser.ws_connect(ws, headers={"Origin": base.rstrip("/")}) as sock:
            assert not sock.closed  # the handshake passed: the chat process starts for this session


async def test_on_loopback_other_sites_cannot_reach_the_chat(serve: Any) -> None:
    served = serve()
    base = served.url
    port = urlsplit(base).port
    async with aiohttp.ClientSession() as http:
        # DNS rebinding: a page from attacker.example resolved to 127.0.0.1 sends its own Host header.
        async with http.get(base, headers={"Host": f"attacker.example:{port}"}) as res:
            assert res.status == 403
        # Cross-site websocket: any page the user visits could try to open ws://127.0.0.1:PORT/ws.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(base.replace("http://", "ws://") + "ws", headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403


# -- a real browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1000,700",
    "--remote-debugging-port=0",
]

# Run in the page before its own scripts: keep a copy of what the app sends to the terminal.
RECORD_SCREEN = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__homefireScreen = "";
  function Recorded(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", (e) => {
      if (e.data instanceof ArrayBuffer) window.__homefireScreen += decoder.decode(e.data, {stream: true});
    });
    return ws;
  }
  Recorded.prototype = Native.prototype;
  Object.assign(Recorded, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Recorded;
})();
"""
ESCAPES = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78cM])")


REPLY = 60.0  # how long a DevTools command may go unanswered (bounds a failure only)


class DevTools:
    """The Chrome DevTools protocol over one page's websocket: commands, and the events seen so far."""

    def __init__(self, sock: Any) -> None:
        self.sock, self.next_id = sock, 0
        self.events: list[dict[str, Any]] = []
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.sock:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def __call__(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = future
        await self.sock.send_json({"id": self.next_id, "method": method, "params": params})
        try:
            reply = await asyncio.wait_for(future, REPLY)
        except TimeoutError:
            raise AssertionError(f"{method}: Chromium gave no reply in {REPLY:.0f} s") from None
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    async def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page; a script that throws (or does not parse) fails here
        instead of doing nothing quietly."""
        res = await self("Runtime.evaluate", expression=expression, returnByValue=True)
        if details := res.get("exceptionDetails"):
            raise AssertionError(
                f"the page's script failed: {details.get('exception', {}).get('description') or details}"
            )
        return res["result"].get("value")

    async def send(self, text: str, log: list[str], limit: float = 60) -> None:
        """Type `text` into the terminal as a keyboard commits it, then Enter once the app shows it: arriving in
        the same read as the text, a terminal app may take Enter as part of a paste (a person's comes later)."""
        await self.js("document.querySelector('.xterm-helper-textarea').focus()")
        await self("Input.insertText", text=text)
        await self.wait_for_text(text[:30], limit=limit, log=log)  # 30: one line of the prompt, even on a phone
        for kind in ("keyDown", "keyUp"):
            key: dict[str, Any] = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
            await self("Input.dispatchKeyEvent", type=kind, **key, **({"text": "\r"} if kind == "keyDown" else {}))

    async def screen(self) -> str:
        return ESCAPES.sub("", await self.js("window.__homefireScreen") or "")

    async def wait_for_text(self, text: str, limit: float, log: list[str]) -> str:
        """Poll the recorded terminal output until `text` appears (limit only bounds a failure)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            screen = await self.screen()
            if text in screen:
                return screen
            await asyncio.sleep(0.25)
        shown = (await self.screen())[-2000:]
        raise AssertionError(f"{text!r} never appeared; the terminal showed: {shown!r}; the server said: {log}")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; CI installs it: make ci-deps)")
    proc = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    endpoint = None
    for line in proc.stderr:  # it says where its DevTools endpoint listens
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            endpoint = found.group(1)
            break
    assert endpoint, "chromium did not start its DevTools endpoint"
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
async def test_a_real_browser_chats_with_the_real_model(serve: Any, chromium: str, tmp_path: Path) -> None:
    served = serve("--token", TOKEN, "--ctx", "2048")
    base = served.url
    devtools_http = "http://" + urlsplit(chromium).netloc
    async with aiohttp.ClientSession() as http:
        async with http.get(devtools_http + "/json/list") as res:
            page = next(t for t in await res.json() if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as sock:
            cdp = DevTools(sock)
            await cdp("Network.enable")
            await cdp("Page.enable")
            await cdp("Page.addScriptToEvaluateOnNewDocument", source=RECORD_SCREEN)
            await cdp("Page.navigate", url=f"{base}?token={TOKEN}")
            await cdp.wait_for_text("ready", limit=240, log=served.banner)  # the chat process loaded the default model
            await cdp.send("What is the capital of France?", log=served.banner)
            screen = await cdp.wait_for_text("Paris", limit=240, log=served.banner)
            assert "What is the capital of France?" in screen
            shot = await cdp("Page.captureScreenshot", format="png")
            (tmp_path / "browser.png").write_bytes(base64.b64decode(shot["data"]))
            seen = [(e.get("method"), e["params"]) for e in cdp.events]
            requests = [p["request"]["url"] for m, p in seen if m == "Network.requestWillBeSent"]
            sockets = [p["url"] for m, p in seen if m == "Network.webSocketCreated"]
            cdp.reader.cancel()
    assert requests and sockets
    outside = [u for u in requests + sockets if not is_local(u, base)]
    assert not outside, f"the page reached outside this machine: {outside}"


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("the serve tests run on Linux")


def test_each_session_runs_homefire_chat_with_the_servers_python_and_options() -> None:
    from homefire.web.server import chat_command

    command = chat_command(["--model", "my model.gguf", "--incognito"])
    assert command.startswith(f"{sys.executable} ")
    assert command.endswith("-m homefire chat --model 'my model.gguf' --incognito")


# -- options: a token from the environment, a port in use, the session limit -----------------


def test_a_port_in_use_is_one_clear_line(homefire_home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            homefire_cmd("serve", "--web", "--port", str(port)),
            capture_output=True,
            text=True,
            env=cli_env(homefire_home),
            timeout=60,
        )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr == (
        f"homefire: cannot serve on 127.0.0.1:{port}: the port is in use (another server?): "
        "choose another with --port\n"
    )


async def test_the_token_can_come_from_the_environment(homefire_home: Path) -> None:
    env = dict(cli_env(homefire_home), HOMEFIRE_WEB_TOKEN=TOKEN)
    proc = subprocess.Popen(
        homefire_cmd("serve", "--web", "--port", "0", "--host", "127.0.0.1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"serving the chat app on (http://127\.0\.0\.1:\d+/)\?token=(\S+)", line)
        assert found and found.group(2) == TOKEN, line
        base = found.group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as res:
                assert res.status == 401  # a token was set: even on loopback it is required
            async with http.get(base, headers={"Authorization": f"Bearer {TOKEN}"}) as res:
                assert res.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    short = subprocess.run(
        homefire_cmd("serve", "--web", "--port", "0"),
        capture_output=True,
        text=True,
        env=dict(env, HOMEFIRE_WEB_TOKEN="short"),
        timeout=60,
    )
    assert short.returncode == 2 and short.stderr.count("\n") == 1 and "at least 12" in short.stderr


async def test_max_sessions_refuses_one_chat_too_many(serve: Any) -> None:
    served = serve("--max-sessions", "1", "--guard", "off", "--incognito")
    ws = served.url.replace("http://", "ws://") + "ws"
    origin = {"Origin": served.url.rstrip("/")}
    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(ws, headers=origin)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws, headers=origin)
        assert refused.value.status == 503
        await first.close()
        # The first chat's place is free again once it has gone (its process is stopped by the relay).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            try:
                again = await http.ws_connect(ws, headers=origin)
                break
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 503 and loop.time() < deadline, exc
                await asyncio.sleep(0.2)
        await again.close()
