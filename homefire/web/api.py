"""The local API: OpenAI-compatible (/v1) and Ollama-compatible (/api) HTTP over the Backend.

Access is the browser route's (server.Access): on loopback the Host must name this machine, anywhere
else every request needs the token (`Authorization: Bearer`); a browser's request from another site is
refused unless its origin was named with --cors-origin. Bodies are limited in size; nothing here reads
or writes a file a request names. Every error is answered in the API's own shape, never as a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from ..config import GenerationSettings
from ..errors import HomefireError, PromptError, one_line
from .backend import Backend, ChatRequest, QueueFull, Reply, RequestError
from .server import Access

log = logging.getLogger("homefire.api")

OLLAMA_VERSION = "0.6.0"  # the Ollama API version whose shapes these answers follow
Handler = Callable[[Any], Awaitable[Any]]
ROLES = ("system", "developer", "user", "assistant")
MAX_STOPS = 16


# -- request fields ---------------------------------------------------------------------------------


def _number(body: dict[str, Any], key: str, low: float, high: float, param: str | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"'{key}' must be a number from {low:g} to {high:g}", param=param or key)
    if not low <= value <= high:
        raise RequestError(f"'{key}' must be from {low:g} to {high:g} (got {value:g})", param=param or key)
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int, high: int, param: str | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"'{key}' must be a whole number", param=param or key)
    if not low <= value <= high:
        raise RequestError(f"'{key}' must be from {low:,} to {high:,} (got {value:,})", param=param or key)
    return value


def _stops(value: Any, param: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value) or len(value) > MAX_STOPS:
        raise RequestError(f"'{param}' must be a string or a list of at most {MAX_STOPS} strings", param=param)
    return [s for s in value if s]


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or OpenAI's list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"{where}: only text content is supported (got a '{kind}' part)", param=where)
            parts.append(part["text"])
        return "".join(parts)
    raise RequestError(f"{where}: 'content' must be a string", param=where)


def _messages(value: Any, param: str = "messages") -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise RequestError(f"'{param}' must be a non-empty list of messages", param=param)
    out = []
    for i, m in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(m, dict):
            raise RequestError(f"{where} must be an object with 'role' and 'content'", param=where)
        role = m.get("role")
        if role in ("tool", "function") or m.get("tool_calls") or m.get("function_call"):
            raise RequestError(f"{where}: tool calls are not supported yet", param=where, code="unsupported")
        if role not in ROLES:
            raise RequestError(f"{where}: 'role' must be one of system, user, assistant (got {role!r})", param=where)
        if m.get("images"):
            raise RequestError(f"{where}: images are not supported (the models here read text)", param=where)
        content = m.get("content")
        text = "" if content is None and role == "assistant" else _text(content, where)
        out.append({"role": "system" if role == "developer" else role, "content": text})
    if out[-1]["role"] != "user" or not out[-1]["content"].strip():
        raise RequestError(f"the last of '{param}' must be a user message with some text", param=param)
    return out


def _cartridge_list(body: dict[str, Any]) -> list[str]:
    value = body.get("cartridges")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise RequestError("'cartridges' must be a list of cartridge names", param="cartridges")
    return list(value)


def json_grammar(schema: dict[str, Any] | None, param: str) -> str:
    """GBNF for JSON output (any object, or one valid for a JSON schema): the scheduler's, with the param named."""
    from ..engine.batch import json_grammar as grammar

    try:
        return grammar(schema)
    except PromptError as exc:
        raise RequestError(str(exc), param=param) from None


def _model(body: dict[str, Any], required: bool = False) -> str | None:
    model = body.get("model", body.get("name"))
    if model is None and not required:
        return None
    if not isinstance(model, str) or not model.strip():
        raise RequestError("'model' must be a model id from GET /v1/models", param="model")
    return model


def openai_request(body: dict[str, Any], n_ctx: int) -> ChatRequest:
    """A ChatRequest from an OpenAI chat-completions body; a RequestError for anything wrong or unsupported."""
    for key in ("tools", "functions"):
        if body.get(key):
            raise RequestError("tools and function calling are not supported yet", param=key, code="unsupported")
    if body.get("tool_choice") not in (None, "none"):
        raise RequestError("tools and function calling are not supported yet", param="tool_choice")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise RequestError("logprobs are not supported", param="logprobs", code="unsupported")
    n = _integer(body, "n", 1, 128)
    if n is not None and n > 1:
        raise RequestError("n > 1 is not supported: ask once per answer", param="n", code="unsupported")
    for key in ("frequency_penalty", "presence_penalty"):
        if _number(body, key, -2, 2):
            raise RequestError(f"'{key}' is not supported (homefire uses a repeat penalty)", param=key)
    if body.get("logit_bias"):
        raise RequestError("'logit_bias' is not supported", param="logit_bias")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be true or false", param="stream")
    options = body.get("stream_options")
    if options is not None and (
        not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool)
    ):
        raise RequestError("'stream_options' must be an object like {\"include_usage\": true}", param="stream_options")
    max_tokens = _integer(body, "max_completion_tokens", 1, n_ctx) or _integer(body, "max_tokens", 1, n_ctx)
    settings = GenerationSettings()
    settings.max_tokens = max_tokens or settings.max_tokens
    settings.temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)
    if top_p is not None:
        settings.top_p = top_p
    settings.seed = _integer(body, "seed", -(2**63), 2**64 - 1)
    grammar = None
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_object":
            grammar = json_grammar(None, "response_format")
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise RequestError(
                    "response_format.json_schema.schema must be a JSON schema object", param="response_format"
                )
            grammar = json_grammar(schema, "response_format")
        elif kind != "text":
            raise RequestError(
                '\'response_format\' must be {"type": "text"}, {"type": "json_object"} or a json_schema',
                param="response_format",
            )
    return ChatRequest(
        messages=_messages(body.get("messages")),
        model=_model(body),
        settings=settings,
        stop=_stops(body.get("stop"), "stop"),
        grammar=grammar,
        cartridges=_cartridge_list(body),
    )


def ollama_request(body: dict[str, Any], n_ctx: int, messages: list[dict[str, Any]]) -> ChatRequest:
    """A ChatRequest from an Ollama chat or generate body (its messages already read)."""
    if body.get("tools"):
        raise RequestError("tools are not supported yet", param="tools")
    opts = body.get("options") or {}
    if not isinstance(opts, dict):
        raise RequestError("'options' must be an object", param="options")
    settings = GenerationSettings()
    predict = _integer(opts, "num_predict", -2, 1 << 30, "options.num_predict")
    if predict is not None and predict > 0:
        settings.max_tokens = min(predict, n_ctx)
    elif predict is not None:
        settings.max_tokens = n_ctx  # -1 / -2: until the model stops or the context is full
    settings.temperature = _number(opts, "temperature", 0, 2, "options.temperature")
    for key, low, high in (("top_p", 0.0, 1.0), ("min_p", 0.0, 1.0), ("repeat_penalty", 0.0, 10.0)):
        value = _number(opts, key, low, high, f"options.{key}")
        if value is not None:
            setattr(settings, key, value)
    for key, low, high in (("top_k", 0, 1 << 20), ("repeat_last_n", -1, 1 << 20)):
        value = _integer(opts, key, low, high, f"options.{key}")
        if value is not None:
            setattr(settings, key, value if value >= 0 else n_ctx)
    settings.seed = _integer(opts, "seed", -(2**63), 2**64 - 1, "options.seed")
    fmt = body.get("format")
    grammar = None
    if fmt == "json":
        grammar = json_grammar(None, "format")
    elif isinstance(fmt, dict):
        grammar = json_grammar(fmt, "format")
    elif fmt not in (None, ""):
        raise RequestError("'format' must be \"json\" or a JSON schema object", param="format")
    return ChatRequest(
        messages=messages,
        model=_model(body, required=True),
        settings=settings,
        stop=_stops(opts.get("stop"), "options.stop"),
        grammar=grammar,
        cartridges=_cartridge_list(body),
        truncate=True,  # Ollama keeps the newest messages that fit
    )


# -- the server -------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ApiServer:
    """The /v1 and /api routes with their access checks; served alone or beside the browser route."""

    PREFIXES = ("/v1/", "/api/", "/homefire/")

    def __init__(
        self,
        backend: Backend,
        access: Access,
        cors_origins: Sequence[str] = (),
        max_body: int = 1 << 20,
        alone: bool = True,
        port: int = 8000,
    ) -> None:
        self.backend, self.access, self.port = backend, access, port
        self.cors = {o.rstrip("/") for o in cors_origins}
        self.max_body = max_body
        self.alone = alone  # no browser route beside it: the API also answers GET / (Ollama programs probe it)

    def owns(self, path: str) -> bool:
        return path.startswith(self.PREFIXES) or path in ("/v1", "/api") or (self.alone and path == "/")

    # -- errors ------------------------------------------------------------------------------------

    @staticmethod
    def error(request: Any, status: int, message: str, param: str | None = None, code: str | None = None) -> Any:
        """An error in the shape of the API the request spoke (OpenAI's object, or Ollama's string)."""
        from aiohttp import web

        headers = {"Retry-After": "1"} if status == 429 else {}
        if request.path.startswith("/api/"):
            return web.json_response({"error": message}, status=status, headers=headers)
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            405: "invalid_request_error",
            413: "invalid_request_error",
            429: "rate_limit_error",
        }
        body = {"error": {"message": message, "type": kinds.get(status, "server_error"), "param": param, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    def _cors_origin(self, request: Any) -> str | None:
        origin = request.headers.get("Origin")
        return origin if origin is not None and origin.rstrip("/") in self.cors else None

    def _cors_headers(self, request: Any) -> dict[str, str]:
        origin = self._cors_origin(request)
        if origin is None:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def middleware(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> Any:
            if not self.owns(request.path):
                return await handler(request)
            if not self.access.host_allowed(request):
                return self.error(request, 403, "this server answers only to its own address (check the Host)")
            cors = self._cors_origin(request)
            if request.method == "OPTIONS" and cors is not None:
                return web.Response(
                    status=204,
                    headers={
                        **self._cors_headers(request),
                        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                        "Access-Control-Allow-Headers": "Authorization, Content-Type",
                        "Access-Control-Max-Age": "600",
                    },
                )
            if cors is None and not self.access.same_origin(request):
                return self.error(
                    request, 403, "requests from other websites are refused (allow an origin with --cors-origin)"
                )
            if self.access.token is not None and not self.access.has_token(request):
                response = self.error(request, 401, "a valid access token is needed: Authorization: Bearer TOKEN")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            if request.content_length is not None and request.content_length > self.max_body:
                return self.error(request, 413, f"the request body is larger than {self.max_body:,} bytes")
            try:
                response = await handler(request)
            except RequestError as exc:
                response = self.error(request, exc.status, str(exc), exc.param, exc.code)
            except QueueFull as exc:
                response = self.error(request, 429, str(exc), code="queue_full")
                response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            except web.HTTPRequestEntityTooLarge:
                response = self.error(request, 413, f"the request body is larger than {self.max_body:,} bytes")
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = self.error(request, exc.status, exc.reason)
            except HomefireError as exc:
                response = self.error(request, getattr(exc, "status", 400), one_line(str(exc)))
            except (asyncio.CancelledError, ConnectionError):
                raise
            except Exception as exc:  # a bug: logged here, the client gets one line, never a traceback
                log.exception("homefire: the API failed on %s", request.path)
                response = self.error(request, 500, f"internal error ({type(exc).__name__}): see the server's log")
            if not response.prepared:
                response.headers.update(self._cors_headers(request))
            return response

        return check

    def app_options(self) -> dict[str, Any]:
        return {"client_max_size": self.max_body}

    def add_routes(self, app: Any) -> None:
        from aiohttp import web

        routes = [
            web.get("/v1/models", self.v1_models),
            web.get("/v1/models/{model}", self.v1_model),
            web.post("/v1/chat/completions", self.v1_chat),
            web.post("/v1/embeddings", self.v1_embeddings),
            web.get("/api/tags", self.api_tags),
            web.get("/api/version", self.api_version),
            web.get("/api/ps", self.api_ps),
            web.post("/api/show", self.api_show),
            web.post("/api/chat", self.api_chat),
            web.post("/api/generate", self.api_generate),
            web.post("/api/embed", self.api_embed),
            web.post("/api/embeddings", self.api_embeddings),
            web.get("/homefire/status", self.status),
        ]
        if self.alone:
            routes.append(web.get("/", self.root))
        app.add_routes(routes)

        async def not_found(request: Any) -> Any:
            return self.error(request, 404, f"no such endpoint: {request.method} {request.path}")

        for prefix in ("/v1", "/api", "/homefire"):
            app.router.add_route("*", prefix + "/{tail:.*}", not_found)

    def make_app(self) -> Any:
        from aiohttp import web

        app = web.Application(middlewares=[self.middleware()], **self.app_options())
        self.add_routes(app)
        return app

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.backend.close)

    def announce(self, port: int) -> None:
        host = self.access.host
        shown = "THIS-MACHINES-ADDRESS" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
        print(f"homefire: serving the API on http://{shown}:{port}/v1 (OpenAI) and /api (Ollama)", flush=True)
        if self.access.token:
            print(f"homefire: API clients send the header: Authorization: Bearer {self.access.token}", flush=True)

    def serve(self) -> None:
        from .server import run_app

        def ready(port: int) -> None:
            self.announce(port)
            print("homefire: Ctrl+C stops the server", flush=True)

        asyncio.run(run_app(self.make_app(), self.access.host, self.port, ready, self.stop))

    # -- helpers -----------------------------------------------------------------------------------

    async def _body(self, request: Any) -> dict[str, Any]:
        try:
            raw = await request.read()
        except ValueError:
            raise RequestError("the request body could not be read") from None
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON ({one_line(str(exc))})") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        return body

    @staticmethod
    def _gone(request: Any) -> Callable[[], bool]:
        def gone() -> bool:
            transport = request.transport
            return transport is None or transport.is_closing()

        return gone

    async def _stream_response(self, request: Any, content_type: str) -> Any:
        from aiohttp import web

        response = web.StreamResponse(
            headers={
                "Content-Type": content_type,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                **self._cors_headers(request),
            }
        )
        await response.prepare(request)
        return response

    # -- OpenAI ------------------------------------------------------------------------------------

    async def v1_models(self, request: Any) -> Any:
        from aiohttp import web

        data = [self._model_card(mid, model) for mid, model, _ in self.backend.model_ids()]
        return web.json_response({"object": "list", "data": data})

    async def v1_model(self, request: Any) -> Any:
        from aiohttp import web

        wanted = request.match_info["model"]
        for mid, model, _ in self.backend.model_ids():
            if mid == wanted:
                return web.json_response(self._model_card(mid, model))
        raise RequestError(
            f"The model '{wanted}' does not exist here", param="model", code="model_not_found", status=404
        )

    @staticmethod
    def _model_card(mid: str, model: Any) -> dict[str, Any]:
        try:
            created = int(model.path.stat().st_mtime)
        except OSError:
            created = 0
        return {"id": mid, "object": "model", "created": created, "owned_by": "homefire"}

    async def v1_chat(self, request: Any) -> Any:
        from aiohttp import web

        body = await self._body(request)
        req = openai_request(body, self._n_ctx())
        stream = body.get("stream", False)
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        reply = await self.backend.chat(req, self._gone(request))
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        try:
            if not stream:
                text = "".join([piece async for piece in reply.pieces])
                return web.json_response(
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": created,
                        "model": reply.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "logprobs": None,
                                "finish_reason": reply.finish_reason,
                            }
                        ],
                        "usage": self._usage(reply),
                        "homefire": reply.homefire(),
                    }
                )
            response = await self._stream_response(request, "text/event-stream")

            def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
                body = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": reply.model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                    **extra,
                }
                return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

            try:
                await response.write(chunk({"role": "assistant", "content": ""}, None))
                try:
                    async for piece in reply.pieces:
                        await response.write(chunk({"content": piece}, None))
                except HomefireError as exc:
                    param, code = getattr(exc, "param", None), getattr(exc, "code", None)
                    err = {
                        "error": {
                            "message": one_line(str(exc)),
                            "type": "invalid_request_error",
                            "param": param,
                            "code": code,
                        }
                    }
                    await response.write(b"data: " + json.dumps(err).encode() + b"\n\n")
                    await response.write(b"data: [DONE]\n\n")
                    return response
                await response.write(chunk({}, reply.finish_reason, homefire=reply.homefire()))
                if usage:
                    last = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": reply.model}
                    last |= {"choices": [], "usage": self._usage(reply)}
                    await response.write(b"data: " + json.dumps(last).encode() + b"\n\n")
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
            except ConnectionError:
                pass  # the client went: reply.close() below stops its sequence
            return response
        finally:
            await reply.close()

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        r = reply.result
        return {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "total_tokens": r.prompt_tokens + r.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": r.cached_tokens},
        }

    def _n_ctx(self) -> int:
        loaded = self.backend.loaded
        return loaded.engine.n_ctx if loaded is not None else 4096

    async def v1_embeddings(self, request: Any) -> Any:
        from aiohttp import web

        body = await self._body(request)
        texts = self._inputs(body.get("input"), "input")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise RequestError("'encoding_format' must be float or base64", param="encoding_format")
        dims = body.get("dimensions")
        if dims is not None and dims != 384:
            raise RequestError("'dimensions' must be 384 (the sentence encoder's size)", param="dimensions")
        vectors, tokens = await self.backend.embed(texts)
        data = []
        for i, v in enumerate(vectors):
            value: Any = v
            if fmt == "base64":
                value = base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": self.backend.encoder_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @staticmethod
    def _inputs(value: Any, param: str) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise RequestError(f"'{param}' must be a string or a non-empty list of strings", param=param)
        if len(texts) > 2048:
            raise RequestError(f"'{param}' may hold at most 2048 texts", param=param)
        return texts

    # -- Ollama ------------------------------------------------------------------------------------

    async def root(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text="homefire is running (Ollama- and OpenAI-compatible API)")

    async def api_version(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"version": OLLAMA_VERSION, "homefire": __version__})

    def _details(self, model: Any) -> dict[str, Any]:
        try:
            info = model.info()
            family, quant = info.architecture, info.quantization
        except (HomefireError, OSError):
            family, quant = "", ""
        return {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family] if family else None,
            "parameter_size": "",
            "quantization_level": quant,
        }

    async def api_tags(self, request: Any) -> Any:
        from aiohttp import web

        out = []
        for mid, model, _ in self.backend.model_ids():
            try:
                st = model.path.stat()
                size, modified = st.st_size, datetime.fromtimestamp(st.st_mtime, UTC).isoformat()
            except OSError:
                size, modified = 0, _now()
            out.append(
                {
                    "name": mid,
                    "model": mid,
                    "modified_at": modified,
                    "size": size,
                    "digest": model.sha256 or "",
                    "details": self._details(model),
                }
            )
        return web.json_response({"models": out})

    async def api_ps(self, request: Any) -> Any:
        from aiohttp import web

        loaded = self.backend.loaded
        models = []
        if loaded is not None:
            m = loaded.engine.model
            models.append(
                {
                    "name": m.name,
                    "model": m.name,
                    "size": m.path.stat().st_size if m.path.exists() else 0,
                    "digest": m.sha256 or "",
                    "details": self._details(m),
                    "expires_at": "0001-01-01T00:00:00Z",
                    "size_vram": 0,
                }
            )
        return web.json_response({"models": models})

    async def api_show(self, request: Any) -> Any:
        from aiohttp import web

        body = await self._body(request)
        wanted = _model(body, required=True)
        for mid, model, cart in self.backend.model_ids():
            if mid == wanted or f"{mid}:latest" == wanted:
                info = model.info()
                return web.json_response(
                    {
                        "license": str(info.metadata.get("general.license", "")),
                        "modelfile": "",
                        "parameters": "",
                        "template": info.chat_template or "",
                        "details": self._details(model),
                        "model_info": {
                            "general.architecture": info.architecture,
                            f"{info.architecture}.context_length": info.context_length,
                            "homefire.cartridge": cart,
                        },
                        "capabilities": ["completion"],
                        "modified_at": _now(),
                    }
                )
        raise RequestError(f"model '{wanted}' not found", param="model", code="model_not_found", status=404)

    async def api_chat(self, request: Any) -> Any:
        body = await self._body(request)
        req = ollama_request(body, self._n_ctx(), _messages(body.get("messages")))
        return await self._ollama_answer(
            request, body, req, lambda text: {"message": {"role": "assistant", "content": text}}
        )

    async def api_generate(self, request: Any) -> Any:
        from aiohttp import web

        body = await self._body(request)
        for key in ("raw", "template", "context", "suffix", "images"):
            if body.get(key):
                raise RequestError(f"'{key}' is not supported by /api/generate here", param=key)
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise RequestError("'prompt' must be a string", param="prompt")
        system = body.get("system")
        if system is not None and not isinstance(system, str):
            raise RequestError("'system' must be a string", param="system")
        if not (prompt or "").strip():
            # Ollama's way to load a model: an empty prompt answers at once.
            name, _ = self.backend.split_model(_model(body, required=True), [])
            return web.json_response(
                {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": "load"}
            )
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        req = ollama_request(body, self._n_ctx(), messages)
        return await self._ollama_answer(request, body, req, lambda text: {"response": text})

    async def _ollama_answer(
        self, request: Any, body: dict[str, Any], req: ChatRequest, shape: Callable[[str], dict[str, Any]]
    ) -> Any:
        from aiohttp import web

        stream = body.get("stream", True)
        if not isinstance(stream, bool):
            raise RequestError("'stream' must be true or false", param="stream")
        reply = await self.backend.chat(req, self._gone(request))
        try:
            if not stream:
                text = "".join([piece async for piece in reply.pieces])
                return web.json_response(
                    {"model": reply.model, "created_at": _now(), **shape(text), **self._ollama_done(reply)}
                )
            response = await self._stream_response(request, "application/x-ndjson")
            try:
                try:
                    async for piece in reply.pieces:
                        line = {"model": reply.model, "created_at": _now(), **shape(piece), "done": False}
                        await response.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
                except HomefireError as exc:
                    await response.write(json.dumps({"error": one_line(str(exc))}).encode() + b"\n")
                    return response
                last = {"model": reply.model, "created_at": _now(), **shape(""), **self._ollama_done(reply)}
                await response.write(json.dumps(last).encode() + b"\n")
                await response.write_eof()
            except ConnectionError:
                pass
            return response
        finally:
            await reply.close()

    @staticmethod
    def _ollama_done(reply: Reply) -> dict[str, Any]:
        r = reply.result
        total = time.perf_counter() - reply.started
        ns = 1_000_000_000
        decode = r.completion_tokens / r.decode_tokens_per_s if r.decode_tokens_per_s else 0.0
        return {
            "done": True,
            "done_reason": reply.finish_reason,
            "total_duration": int(total * ns),
            "load_duration": 0,
            "prompt_eval_count": r.prompt_tokens,
            "prompt_eval_duration": int(r.time_to_first_token_s * ns),
            "eval_count": r.completion_tokens,
            "eval_duration": int(decode * ns),
            "homefire": reply.homefire(),
        }

    async def api_embed(self, request: Any) -> Any:
        from aiohttp import web

        body = await self._body(request)
        texts = self._inputs(body.get("input"), "input")
        vectors, tokens = await self.backend.embed(texts)
        return web.json_response(
            {
                "model": body.get("model") or self.backend.encoder_name,
                "embeddings": vectors,
                "prompt_eval_count": tokens,
            }
        )

    async def api_embeddings(self, request: Any) -> Any:
        from aiohttp import web

        body = await self._body(request)
        texts = self._inputs(body.get("prompt"), "prompt")
        vectors, _ = await self.backend.embed(texts[:1])
        return web.json_response({"embedding": vectors[0]})

    # -- homefire's own --------------------------------------------------------------------------

    async def status(self, request: Any) -> Any:
        from aiohttp import web

        b = self.backend
        return web.json_response(
            {
                "model": b.model_name,
                "active": b.active,
                "slots": b.slots,
                "max_queue": b.max_queue,
                "guard": b.plan.guard,
                "memory": b.memory is not None,
            }
        )
