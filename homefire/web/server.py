"""Serve the chat app to a browser: textual-serve's terminal relay with our page and an access check.

Privacy: our own page (templates/index.html) loads only this server's files; textual-serve's
default page fetches a web font from an outside host. Access: bound to loopback, the Host and
Origin headers must name this machine (no DNS rebinding, no other site driving the chat);
bound to any other address, every request (page, files, websocket) needs the access token,
given once as ?token= (then kept in a same-site, HTTP-only cookie) or as a Bearer header.
Each browser session runs its own `homefire chat` process (sessions.py: none outlives its page or the server).
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import secrets
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import HomefireError


class WebError(HomefireError):
    """The browser route cannot serve as asked (an address without a token, a port in use, no textual-serve)."""

    exit_code = 2


TEMPLATES = Path(__file__).parent / "templates"
ASSETS = Path(__file__).parent / "static"  # our page's own script and style (no inline code: a strict CSP)
COOKIE = "homefire_token"
POINTER_COOKIE = "homefire_pointer"  # page.js: "coarse" on a touch screen, so the chat shows taps, not keys
MIN_TOKEN = 12
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}

Handler = Callable[[Any], Awaitable[Any]]


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> str | None:
    """The token to require for this address (None on loopback without one); a WebError if it cannot be served."""
    if token == "auto":
        return secrets.token_urlsafe(18)
    if token is not None and len(token) < MIN_TOKEN:
        raise WebError(f"the access token must be at least {MIN_TOKEN} characters (or use --token auto)")
    if token is None and not is_loopback(host):
        raise WebError(
            f"serving on {host} lets other machines in, so it needs an access token: "
            "add --token auto (one is made and printed) or --token YOURS (or set HOMEFIRE_WEB_TOKEN)"
        )
    return token


def chat_command(chat_args: Sequence[str]) -> str:
    """The shell command each browser session runs: this Python's `homefire chat` with the given options.

    It keeps this interpreter's isolation flags (the Pi's launcher runs `python3 -s -P`), so a
    session imports what the server imports."""
    flags = [flag for flag, on in (("-s", sys.flags.no_user_site), ("-P", sys.flags.safe_path)) if on]
    return shlex.join([sys.executable, *flags, "-m", "homefire", "chat", *chat_args])


def _require_textual_serve() -> None:
    if find_spec("textual_serve") is None or find_spec("aiohttp") is None:
        raise WebError("the browser route needs textual-serve: pip install 'homefire[web]'")


class Access:
    """Who may use a server on this address: the checks the browser route and the local API share.

    On loopback without a token, only a Host naming this machine (a DNS-rebinding site's name is
    refused); with a token, every request must carry it (cookie, ?token= or a Bearer header)."""

    def __init__(self, host: str, token: str | None) -> None:
        self.host, self.token = host, token

    def has_token(self, request: Any) -> bool:
        assert self.token is not None
        offered = [request.cookies.get(COOKIE, ""), request.query.get("token", "")]
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered.append(auth[7:])
        return any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)

    def host_allowed(self, request: Any) -> bool:
        """On loopback without a token, only a Host naming this machine (a rebinding site's name is refused)."""
        if self.token is not None:
            return True
        name = urlsplit(f"//{request.host}").hostname or ""
        return is_loopback(name) or name == self.host

    @staticmethod
    def same_origin(request: Any) -> bool:
        """A browser's request must come from our own page (no other site may drive the chat or the API)."""
        origin = request.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc == request.host


class WebServer:
    """textual-serve's Server with our template, our address checks and a session limit."""

    def __init__(
        self,
        chat_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        max_sessions: int = 3,
        api: Any = None,
    ) -> None:
        """`api`: an api.ApiServer served by the same process and port (`serve --web --api`)."""
        _require_textual_serve()
        self.api = api
        from textual_serve.server import Server

        self.token = check_bind(host, token)
        self.access = Access(host, self.token)
        self.host, self.port, self.max_sessions = host, port, max_sessions
        self.live: set[Any] = set()  # ChatProcess: a slot is free once its process is gone, not when its page is
        self.closing = False  # the server is stopping: no new chat starts
        static = Path(find_spec("textual_serve").origin or "").parent / "static"  # type: ignore[union-attr]
        self.relay = Server(chat_command(chat_args), host=host, port=port, title="homefire", statics_path=static)
        self.static = static
        import jinja2

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        self.page = env.get_template("index.html")

    def middleware(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> Any:
            if self.api is not None and self.api.owns(request.path):
                return await handler(request)  # the API checks its own requests (the same Access), in its shape
            if not self.access.host_allowed(request):
                raise web.HTTPForbidden(text="homefire: this server answers only to its own address\n")
            if request.path == "/ws" and not self.access.same_origin(request):
                raise web.HTTPForbidden(text="homefire: the chat connects only from its own page\n")
            if self.token is not None and not self.access.has_token(request):
                raise web.HTTPUnauthorized(
                    text="homefire: this page needs its access token: open the address `homefire serve --web` printed\n"
                )
            if self.token is not None and request.query.get("token") and request.path == "/":
                # Keep the token in a cookie (the websocket and files send it) and out of the address bar.
                moved = web.Response(status=303, headers={"Location": "/"})
                moved.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
                return moved
            return await handler(request)

        return check

    # -- routes -------------------------------------------------------------------------------
    async def index(self, request: Any) -> Any:
        from aiohttp import web

        scheme = "wss" if request.secure else "ws"
        font_size = request.query.get("fontsize", "16")
        html = self.page.render(
            static="/static/",
            assets="/assets/",
            websocket_url=f"{scheme}://{request.host}/ws",
            font_size=int(font_size) if font_size.isdigit() and 6 <= int(font_size) <= 48 else 16,
        )
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                # Belt and braces: even an injected reference to another host would not load.
                "Content-Security-Policy": (
                    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
                    "style-src 'self' 'unsafe-inline'; font-src 'self'; script-src 'self'; "
                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                ),
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    @property
    def sessions(self) -> int:
        return len(self.live)

    async def websocket(self, request: Any) -> Any:
        """textual-serve's session handler, with our ChatProcess and a limit counted in live processes."""
        from aiohttp import web
        from textual_serve.server import to_int

        from .sessions import ChatProcess

        if self.closing:
            raise web.HTTPServiceUnavailable(text="homefire: the server is stopping\n")
        if len(self.live) >= self.max_sessions:
            raise web.HTTPServiceUnavailable(
                text=f"homefire: {self.max_sessions} chats are open already (each loads the model): close one\n"
            )
        ws = web.WebSocketResponse(heartbeat=15)
        touch = request.cookies.get(POINTER_COOKIE) == "coarse"  # (with serve --touch too: said twice, still one flag)
        chat = ChatProcess(
            self.relay.command + (" --touch" if touch else ""),
            write_bytes=ws.send_bytes,
            write_str=ws.send_str,
            close=ws.close,
            download_manager=self.relay.download_manager,
        )
        self.live.add(chat)  # before the first await: two pages at once cannot both take the last slot
        try:
            await ws.prepare(request)
            width, height = to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24)
            await chat.start(width, height)
            await self.relay._process_messages(ws, chat)  # the relay's browser protocol, unchanged
        except (ConnectionError, ValueError, LookupError, TypeError, AssertionError):
            pass  # the page went, or sent something that is not the protocol: either way this session ends
        finally:
            try:
                await chat.stop()
            finally:
                self.live.discard(chat)
        return ws

    async def stop_sessions(self) -> None:
        """Every chat asked to quit, then terminated, then killed; returns when none is left."""
        await asyncio.gather(*(chat.stop() for chat in list(self.live)), return_exceptions=True)

    def make_app(self) -> Any:
        from aiohttp import web

        middlewares = [self.middleware()] + ([self.api.middleware()] if self.api is not None else [])
        app = web.Application(middlewares=middlewares, **(self.api.app_options() if self.api is not None else {}))
        if self.api is not None:
            self.api.add_routes(app)
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/ws", self.websocket),
                web.get("/download/{key}", self.relay.handle_download),
                web.static("/static", self.static),
                web.static("/assets", ASSETS),
            ]
        )
        return app

    # -- running ------------------------------------------------------------------------------
    def addresses(self, port: int) -> list[str]:
        """What to open in a browser (the token included, so a phone can open it once)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "THIS-MACHINES-ADDRESS"
        elif ":" in host:
            host = f"[{host}]"
        query = f"?token={self.token}" if self.token else ""
        return [f"http://{host}:{port}/{query}"]

    async def run(self, ready: Callable[[int], None] | None = None) -> None:
        """Serve until cancelled or signalled; `ready` gets the bound port (useful with port 0)."""

        async def stopping() -> None:
            self.closing = True
            try:
                await self.stop_sessions()
            finally:
                if self.api is not None:
                    await self.api.stop()

        await run_app(self.make_app(), self.host, self.port, ready, stopping)

    def serve(self) -> None:
        def announce(port: int) -> None:
            for url in self.addresses(port):
                print(f"homefire: serving the chat app on {url}", flush=True)
            if self.token:
                print("homefire: that address holds the access token: whoever has it can chat here", flush=True)
            if self.api is not None:
                self.api.announce(port)
            print("homefire: Ctrl+C stops the server", flush=True)

        asyncio.run(self.run(announce))


async def run_app(
    app: Any,
    host: str,
    port: int,
    ready: Callable[[int], None] | None = None,
    stopping: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve an aiohttp app until cancelled, SIGINT or SIGTERM; `ready` gets the bound port (port 0: a free one),
    `stopping` runs before the listener closes."""
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WebError(
                    f"cannot serve on {host}:{port}: the port is in use (another server?): choose another with --port"
                ) from None
            raise WebError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        bound = runner.addresses[0][1] if runner.addresses else port  # the real one, with --port 0
        if ready is not None:
            ready(bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await stop.wait()
    finally:
        try:
            if stopping is not None:
                await stopping()
        finally:
            await runner.cleanup()
