"""`homefire serve --web`: the command line of the browser route (parsing and printing only)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..config import GUARD_CHOICES
from .server import WebError, WebServer


def cmd_serve(args: argparse.Namespace) -> int:

    if not args.web:
        raise WebError("say how to serve: `homefire serve --web` (the chat app in a browser)")
    chat: list[str] = []
    for flag, value in (("--model", args.model), ("--ctx", args.ctx), ("--threads", args.threads)):
        if value is not None:
            chat += [flag, str(value)]
    if args.guard:
        chat += ["--guard", args.guard]
    if args.incognito:
        chat.append("--incognito")
    if args.touch:
        chat.append("--touch")
    token = args.token or os.environ.get("HOMEFIRE_WEB_TOKEN") or None
    WebServer(chat, host=args.host, port=args.port, token=token, max_sessions=args.max_sessions).serve()
    return 0


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the chat app to a web browser (--web)")
    serve.add_argument("--web", action="store_true", help="serve the chat app over HTTP to a browser")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--token",
        help="access token a browser must present; 'auto' makes one (required off loopback; or $HOMEFIRE_WEB_TOKEN)",
    )
    serve.add_argument("--max-sessions", type=int, default=3, help="open chats at once (each loads the model)")
    serve.add_argument("--model", "-m", help="model name or .gguf path for the chats")
    serve.add_argument("--ctx", type=int, default=None, help="context size in tokens")
    serve.add_argument("--threads", type=int, default=None, help="CPU threads per chat")
    serve.add_argument("--guard", choices=GUARD_CHOICES, default=None)
    serve.add_argument("--incognito", action="store_true", help="the chats save and recall nothing")
    serve.add_argument(
        "--touch", action="store_true", help="every chat shows its tap bar and names taps (else: a touch page's do)"
    )
    serve.set_defaults(func=cmd_serve)
