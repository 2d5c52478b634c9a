"""The local API's limits: a token (401), one slot and a queue of one (429), a small body limit (413), CORS only for
named origins, a client that disconnects mid-stream freeing its slot, and --memory saving conversations."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import openai
import pytest

from .api_server import Served

TOKEN = "api-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
APP = "http://notes.example"
# The default model's greedy story runs ~560 tokens: long enough to hold the one slot while a test looks.
LONG = {
    "model": "smollm2-135m",
    "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
    "temperature": 0,
    "max_tokens": 2000,
    "stream": True,
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("api-limits-home")
    args = ["--ctx", "2048", "--token", TOKEN, "--slots", "1", "--max-queue", "1", "--max-body-kb", "8"]
    server = Served([*args, "--cors-origin", APP, "--memory", "--guard", "off"], home)
    yield server
    server.stop()
    assert "Traceback" not in "".join(server.log), "".join(server.log)


def open_stream(served: Served) -> http.client.HTTPConnection:
    """A long streamed answer, read until its first piece arrived (so it holds the slot now)."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=300)
    conn.request(
        "POST", "/v1/chat/completions", body=json.dumps(LONG), headers={**AUTH, "Content-Type": "application/json"}
    )
    resp = conn.getresponse()
    assert resp.status == 200
    while b'"content": "' not in (line := resp.readline()) or b'"content": ""' in line:
        assert line, "the stream ended before its first piece"
    return conn


def test_the_guard_off_is_said_at_start(served: Served) -> None:
    assert any("guard is OFF" in line for line in served.log)


def test_without_the_token_every_route_is_401(served: Served) -> None:
    for path in ("/v1/models", "/api/tags", "/homefire/status"):
        code, headers, out = served.request("GET", path)
        assert code == 401 and headers.get("www-authenticate") == "Bearer", (path, out)
    code, _, out = served.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong-token-0000000"})
    assert code == 401 and out["error"]["type"] == "authentication_error"
    client = openai.OpenAI(base_url=f"{served.base}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    good = openai.OpenAI(base_url=f"{served.base}/v1", api_key=TOKEN, max_retries=0)
    assert [m.id for m in good.models.list().data] == ["smollm2-135m"]


def test_a_body_over_the_limit_is_413(served: Served) -> None:
    big = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "x" * 9000}]}
    code, _, out = served.request("POST", "/v1/chat/completions", big, AUTH)
    assert code == 413 and "8,192 bytes" in out["error"]["message"]


def test_cors_only_for_the_named_origin(served: Served) -> None:
    pre = {"Origin": APP, "Access-Control-Request-Method": "POST"}
    code, headers, _ = served.request("OPTIONS", "/v1/chat/completions", headers=pre)
    assert code == 204 and headers["access-control-allow-origin"] == APP
    code, headers, _ = served.request("GET", "/v1/models", headers={**AUTH, "Origin": APP})
    assert code == 200 and headers["access-control-allow-origin"] == APP
    code, headers, _ = served.request("GET", "/v1/models", headers={**AUTH, "Origin": "http://other.example"})
    assert code == 403 and "access-control-allow-origin" not in headers


def test_a_full_queue_is_429_with_retry_after(served: Served) -> None:
    conn = open_stream(served)  # in the one slot
    waiting = http.client.HTTPConnection("127.0.0.1", served.port, timeout=300)
    try:
        waiting.request(
            "POST", "/v1/chat/completions", body=json.dumps(LONG), headers={**AUTH, "Content-Type": "application/json"}
        )
        served.wait_for(lambda: served.status(AUTH)["active"] == 2, what="the second request to queue")
        body = {**LONG, "stream": False, "max_tokens": 5}
        code, headers, out = served.request("POST", "/v1/chat/completions", body, AUTH)
        assert code == 429 and int(headers["retry-after"]) >= 1 and out["error"]["type"] == "rate_limit_error"
        code, headers, out = served.request("POST", "/api/chat", {**body, "stream": False}, AUTH)
        assert code == 429 and "retry-after" in headers and isinstance(out["error"], str)
    finally:
        conn.close()
        waiting.close()
    served.wait_for(lambda: served.status(AUTH)["active"] == 0, what="the stream to end")


def test_a_client_that_disconnects_mid_stream_frees_its_slot(served: Served) -> None:
    conn = open_stream(served)
    assert served.status(AUTH)["active"] == 1
    conn.close()  # gone mid-answer: the ~560-token story must not run on
    served.wait_for(lambda: served.status(AUTH)["active"] == 0, what="the disconnected stream to stop")
    body = {**LONG, "stream": False, "max_tokens": 5}
    code, _, out = served.request("POST", "/v1/chat/completions", body, AUTH)
    assert code == 200 and out["choices"][0]["finish_reason"] == "length"


def test_with_memory_the_conversation_is_saved_and_followed(served: Served) -> None:
    first = [{"role": "user", "content": "My sister is called Ada."}]
    body = {"model": "smollm2-135m", "messages": first, "temperature": 0, "max_tokens": 20}
    code, _, out = served.request("POST", "/v1/chat/completions", body, AUTH)
    assert code == 200
    answer = out["choices"][0]["message"]["content"]
    follow = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "What is her name?"}]
    code, _, _ = served.request("POST", "/v1/chat/completions", {**body, "messages": follow}, AUTH)
    assert code == 200
    from homefire.memory import Memory
    from homefire.memory.store import Store

    memory = Memory(Store(served.home / "memory.db"))
    try:
        talks = [[m["text"] for m in memory.store.messages(c["id"])] for c in memory.store.conversations()]
        ada = [t for t in talks if "My sister is called Ada." in t]
        assert len(ada) == 1  # the follow-up joined the first turn's conversation
        assert ada[0][:3] == ["My sister is called Ada.", answer, "What is her name?"] and len(ada[0]) == 4
    finally:
        memory.close()
