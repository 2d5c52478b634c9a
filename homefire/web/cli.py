"""`homefire serve --web` / `--api`: the command line of the browser route and the local API (parsing and printing)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..config import GUARD_CHOICES
from .server import WebError, WebServer, check_bind


def cmd_serve(args: argparse.Namespace) -> int:
    if not args.web and not args.api:
        raise WebError(
            "say what to serve: `homefire serve --web` (the chat app in a browser), `--api` (the local "
            "OpenAI/Ollama API for other programs), or both"
        )
    token = check_bind(args.host, args.token or os.environ.get("HOMEFIRE_WEB_TOKEN") or None)
    api = _api(args, token) if args.api else None
    if not args.web:
        assert api is not None
        api.serve()
        return 0
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
    WebServer(chat, host=args.host, port=args.port, token=token, max_sessions=args.max_sessions, api=api).serve()
    return 0


def _api(args: argparse.Namespace, token: str | None) -> Any:
    """The API server, its model loaded (through session.py, like every front end) before the port opens."""
    from .. import session
    from .api import ApiServer
    from .backend import Backend
    from .server import Access

    if args.max_queue < 0 or args.slots < 1:
        raise WebError("--slots must be at least 1 and --max-queue at least 0")
    if args.max_body_kb < 1:
        raise WebError("--max-body-kb must be at least 1")
    options = session.Options(model=args.model, n_ctx=args.ctx, threads=args.threads, kv=args.kv, guard=args.guard)
    plan = session.resolve(options)
    if plan.guard == "off":
        print(
            "homefire: the guard is OFF for the API (--guard off): prompts reach the model unchecked", file=sys.stderr
        )
    backend = Backend(plan, slots=args.slots, max_queue=args.max_queue, memory=args.memory)
    backend.open()
    memory = "saved to memory, facts recalled" if args.memory else "nothing saved (add --memory to keep them)"
    print(
        f"homefire: API model {backend.model_name}, guard {plan.guard}, {args.slots} slots; conversations: {memory}",
        file=sys.stderr,
    )
    access = Access(args.host, token)
    return ApiServer(
        backend,
        access,
        cors_origins=args.cors_origin,
        max_body=args.max_body_kb * 1024,
        alone=not args.web,
        port=args.port,
    )


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the chat app to a web browser (--web), or an API to programs (--api)")
    serve.add_argument("--web", action="store_true", help="serve the chat app over HTTP to a browser")
    serve.add_argument(
        "--api", action="store_true", help="serve an OpenAI-compatible (/v1) and Ollama-compatible (/api) local API"
    )
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
    api = serve.add_argument_group("the API (--api)")
    api.add_argument("--kv", choices=("f16", "q8_0"), default=None, help="KV cache type of the API's model")
    api.add_argument("--slots", type=int, default=4, help="answers generated at once, batched (default 4)")
    api.add_argument("--max-queue", type=int, default=16, help="requests that may wait; more get 429 (default 16)")
    api.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN", help="a web origin allowed to call the API"
    )
    api.add_argument("--max-body-kb", type=int, default=1024, help="largest request body in KB (default 1024)")
    api.add_argument("--memory", action="store_true", help="save API conversations to memory and recall facts")
    serve.set_defaults(func=cmd_serve)
