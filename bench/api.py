"""Benchmark: the local API (`homefire serve --api`) over HTTP, against homefire's engine without HTTP and
against llama-cpp-python's own OpenAI server (`llama_cpp.server`) on the same model, threads and sampling.

The peer runs from a scratch venv under build/ that installs our cached llama-cpp-python wheel with the
server's extras (fastapi, uvicorn, sse-starlette, pydantic-settings, starlette-context): the same llama.cpp
build as ours. Both servers are measured the same way, from outside, on streamed chat completions:
time to first token = request -> first text; decode tok/s = pieces after the first / (last - first).

    python bench/api.py [--tokens 200] [--threads 2] [--rounds 3]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOME = Path("/tmp") / f"homefire-bench-api-{os.getuid()}"
os.environ.setdefault("HOMEFIRE_HOME", str(HOME))

from homefire.config import DEFAULT_SYSTEM_PROMPT, GenerationSettings  # noqa: E402
from tests.api_server import Served  # noqa: E402

PEER_VENV = ROOT / "build" / "api-bench-peer"
PEER_EXTRAS = ["fastapi", "uvicorn", "sse-starlette", "pydantic-settings", "starlette-context"]
PROMPTS = [
    "Write a very long story about a dragon.",
    "Write a detailed story about a lighthouse keeper who finds a message in a bottle.",
    "Describe, at length, a day in the life of a medieval baker.",
    "Write a long letter from a sailor to his family back home.",
]
N_CTX = 4096


def system(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": question}]


# -- the peer ---------------------------------------------------------------------------------------


def peer_python() -> Path:
    """The scratch venv's python, made once: our cached llama-cpp-python wheel plus the server's extras."""
    python = PEER_VENV / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([python, "-c", "import llama_cpp.server.app"], capture_output=True).returncode == 0
    ):
        return python
    wheel = (
        subprocess.run(
            [sys.executable, str(ROOT / "packaging" / "install_llama.py"), "--wheel"], capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", wheel, *PEER_EXTRAS], check=True)
    return python


class Peer:
    """llama_cpp.server on a free loopback port."""

    def __init__(self, model: Path, threads: int, port: int) -> None:
        cmd = [str(peer_python()), "-m", "llama_cpp.server", "--model", str(model), "--n_ctx", str(N_CTX)]
        cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--verbose", "False"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/v1/models")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"llama_cpp.server did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
        raise SystemExit("llama_cpp.server did not start within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- measuring --------------------------------------------------------------------------------------


def stream(port: int, messages: list[dict[str, str]], tokens: int, model: str = "smollm2-135m") -> dict[str, Any]:
    """One streamed chat completion: TTFT, decode tok/s, the pieces and their times, the text."""
    body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": tokens, "stream": True}
    body |= {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1}  # homefire's defaults, for the peer
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    times: list[float] = []
    text: list[str] = []
    for line in resp:
        if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
            continue
        chunk = json.loads(line[6:])
        if not chunk.get("choices"):
            continue
        piece = chunk["choices"][0]["delta"].get("content") or ""
        if piece:
            times.append(time.perf_counter())
            text.append(piece)
    conn.close()
    return summary(started, times, "".join(text))


def summary(started: float, times: list[float], text: str) -> dict[str, Any]:
    decode = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return {
        "ttft": times[0] - started if times else float("nan"),
        "tok_s": decode,
        "pieces": len(times),
        "first": times[0] if times else started,
        "last": times[-1] if times else started,
        "text": text,
    }


def engine_alone(tokens: int, threads: int, rounds: int) -> float:
    """homefire's engine in this process, no HTTP: the same prompt, measured the same way (median tok/s)."""
    from homefire.engine import Engine

    engine = Engine(n_ctx=N_CTX, n_threads=threads)
    settings = GenerationSettings(max_tokens=tokens, temperature=0.0)
    rates = []
    try:
        for _ in range(rounds):
            engine.reset()
            started = time.perf_counter()
            times = []
            for _piece in engine.stream(system(PROMPTS[0]), settings):
                times.append(time.perf_counter())
            rates.append(summary(started, times, "")["tok_s"])
    finally:
        engine.close()
    return statistics.median(rates)


def single(port: int, tokens: int, rounds: int) -> float:
    stream(port, system(PROMPTS[0]), 8)  # warm: the model's pages are in memory
    return statistics.median(stream(port, system(PROMPTS[0]), tokens)["tok_s"] for _ in range(rounds))


def concurrent(port: int, tokens: int, rounds: int) -> tuple[float, float]:
    """4 clients at once, each its own prompt: aggregate decode tok/s (median of rounds) and p95 TTFT (all)."""
    rates, ttfts = [], []
    for _ in range(rounds):
        results: list[dict[str, Any]] = []

        def run(question: str, into: list[dict[str, Any]] = results) -> None:
            into.append(stream(port, system(question), tokens))

        threads = [threading.Thread(target=run, args=(q,)) for q in PROMPTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pieces = sum(r["pieces"] for r in results)
        span = max(r["last"] for r in results) - min(r["first"] for r in results)
        rates.append(pieces / span if span > 0 else 0.0)
        ttfts += [r["ttft"] for r in results]
    ttfts.sort()
    p95 = ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))]
    return statistics.median(rates), p95


def long_chat(target: int = 2000) -> list[dict[str, str]]:
    """A chat of about `target` tokens of history (~4 characters a token)."""
    facts = [
        f"Note {i}: the shop on street number {i} sells {['bread', 'lamps', 'maps', 'tea', 'rope'][i % 5]} "
        f"and opens at {6 + i % 5} in the morning."
        for i in range(400)
    ]
    history, used, i = [], 0, 0
    while used < target * 4:
        user = " ".join(facts[i : i + 6])
        history += [{"role": "user", "content": user}, {"role": "assistant", "content": "Noted."}]
        used += len(user) + 6
        i += 6
    return [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, *history]


def follow_up(port: int, rounds: int) -> float:
    """TTFT of the next turn of a ~2,000-token chat whose previous turn was just answered (median)."""
    out = []
    for r in range(rounds):
        chat = long_chat()
        chat[1] = {"role": "user", "content": f"Round {r}. " + chat[1]["content"]}  # a fresh chat each round
        first = stream(port, [*chat, {"role": "user", "content": "Which shop sells maps?"}], 16)
        chat += [
            {"role": "user", "content": "Which shop sells maps?"},
            {"role": "assistant", "content": first["text"]},
            {"role": "user", "content": "And which one sells tea?"},
        ]
        out.append(stream(port, chat, 16)["ttft"])
    return statistics.median(out)


def guard_cost(on: Served, off: Served, reps: int) -> float:
    """Median request time with the guard minus without (ms): short, distinct prompts (no cached verdict)."""

    def timed(served: Served, tag: str) -> float:
        times = []
        for i in range(reps):
            body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": f"{tag} {i}: what is {i} + 1?"}]}
            body |= {"max_tokens": 1, "temperature": 0}
            started = time.perf_counter()
            code, _, out = served.request("POST", "/v1/chat/completions", body)
            assert code == 200, out
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    timed(on, "warm"), timed(off, "warm")
    return (timed(on, "Question") - timed(off, "Question")) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    HOME.mkdir(parents=True, exist_ok=True)
    from homefire.models.store import embedded_model

    model = embedded_model().path
    common = ["--ctx", str(N_CTX), "--threads", str(args.threads)]

    engine_rate = engine_alone(args.tokens, args.threads, args.rounds)
    ours = Served(common, HOME)
    try:
        our_single = single(ours.port, args.tokens, args.rounds)
        our_agg, our_p95 = concurrent(ours.port, args.tokens, args.rounds)
        our_follow = follow_up(ours.port, args.rounds)
        off = Served([*common, "--guard", "off"], HOME)
        try:
            guard_ms = guard_cost(ours, off, 30)
        finally:
            off.stop()
    finally:
        ours.stop()
    peer = Peer(model, args.threads, free_port())
    try:
        peer_single = single(peer.port, args.tokens, args.rounds)
        peer_agg, peer_p95 = concurrent(peer.port, args.tokens, args.rounds)
        peer_follow = follow_up(peer.port, args.rounds)
    finally:
        peer.stop()

    rows = [
        (
            "single client streamed decode tok/s vs engine without HTTP",
            our_single / engine_rate,
            ">= 0.95x",
            f"{our_single:.1f} vs {engine_rate:.1f} tok/s",
        ),
        (
            "single client vs llama_cpp.server",
            our_single / peer_single,
            ">= 1.0x",
            f"{our_single:.1f} vs {peer_single:.1f} tok/s",
        ),
        (
            "4 concurrent clients aggregate vs single client",
            our_agg / our_single,
            ">= 1.5x",
            f"{our_agg:.1f} vs {our_single:.1f} tok/s (llama_cpp.server: {peer_agg:.1f} vs {peer_single:.1f})",
        ),
        (
            "4 concurrent clients p95 TTFT vs llama_cpp.server",
            our_p95 / peer_p95,
            "reported",
            f"{our_p95:.2f} vs {peer_p95:.2f} s",
        ),
        (
            "follow-up of a 2,000-token chat TTFT vs llama_cpp.server",
            our_follow / peer_follow,
            "<= 0.2x",
            f"{our_follow * 1000:.0f} vs {peer_follow * 1000:.0f} ms",
        ),
        ("guard overhead per request (short prompt)", guard_ms, "<= 5 ms", f"{guard_ms:.1f} ms"),
    ]
    print(f"\nlocal API, {args.threads} threads, {args.tokens} tokens, {args.rounds} rounds, smollm2-135m Q4_1\n")
    print(f"| {'':58} | {'measured':>9} | {'target':>8} | detail")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 10}|-------")
    for name, value, target, detail in rows:
        shown = f"{value:.1f} ms" if target.endswith("ms") else f"{value:.2f}x"
        print(f"| {name:58} | {shown:>9} | {target:>8} | {detail}")
    print(
        json.dumps(
            {
                "bench": "api",
                "threads": args.threads,
                "tokens": args.tokens,
                "engine_tok_s": round(engine_rate, 2),
                "single_tok_s": round(our_single, 2),
                "peer_single_tok_s": round(peer_single, 2),
                "concurrent4_tok_s": round(our_agg, 2),
                "peer_concurrent4_tok_s": round(peer_agg, 2),
                "p95_ttft_s": round(our_p95, 3),
                "peer_p95_ttft_s": round(peer_p95, 3),
                "follow_up_ttft_s": round(our_follow, 4),
                "peer_follow_up_ttft_s": round(peer_follow, 4),
                "guard_overhead_ms": round(guard_ms, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
