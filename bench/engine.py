"""Benchmark: homefire's engine against bare llama-cpp-python on the same model, prompt, threads and sampling.

Speed runs alternate between the two in one process (both models loaded, KV cache cleared
before every run so each pays its full prefill); peak RSS is measured in a fresh child
process per side. Timing is taken the same way for both, from outside the stream:
TTFT = call -> first text; prefill tok/s = prompt tokens / TTFT; decode tok/s = tokens
after the first / (end - first text).

    python bench/engine.py [--runs 5] [--tokens 256] [--threads 2] [--model NAME|PATH]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HOMEFIRE_HOME", str(Path("/tmp") / f"homefire-bench-{os.getuid()}"))

from homefire.config import GenerationSettings  # noqa: E402
from homefire.engine import Engine  # noqa: E402

PROMPT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."
SYSTEM = "You are a helpful assistant."
N_CTX = 2048


def messages() -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


def settings(tokens: int) -> GenerationSettings:
    return GenerationSettings(temperature=0.0, max_tokens=tokens, repeat_penalty=1.1, repeat_last_n=64, seed=1)


def time_stream(stream: Any, count_tokens: Any) -> dict[str, float]:
    t0 = time.perf_counter()
    first = None
    text = []
    for piece in stream:
        if first is None and piece:
            first = time.perf_counter()
        text.append(piece)
    end = time.perf_counter()
    n = count_tokens()
    assert first is not None, "no output"
    return {"ttft_s": first - t0, "decode_s": end - first, "tokens": n, "chars": len("".join(text))}


def run_ours(engine: Engine, tokens: int) -> dict[str, float]:
    engine.reset()
    out = time_stream(engine.stream(messages(), settings(tokens)), lambda: engine.last_stats.completion_tokens)
    out["prompt_tokens"] = engine.last_stats.prompt_tokens
    return out


def load_bare(path: str, threads: int) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=path, n_ctx=N_CTX, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False, seed=1
    )


def run_bare(llm: Any, prompt: str, tokens: int) -> dict[str, float]:
    llm.reset()
    s = settings(tokens)
    count = {"n": 0}

    def pieces():  # type: ignore[no-untyped-def]
        for chunk in llm.create_completion(
            prompt,
            max_tokens=tokens,
            temperature=0.0,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=s.min_p,
            repeat_penalty=s.repeat_penalty,
            stream=True,
            seed=1,
        ):
            choice = chunk["choices"][0]
            if choice["finish_reason"] is None:  # the closing chunk carries no token
                count["n"] += 1
            yield choice["text"]

    out = time_stream(pieces(), lambda: count["n"])
    out["prompt_tokens"] = len(llm.tokenize(prompt.encode(), special=True))
    return out


def rates(r: dict[str, float]) -> dict[str, float]:
    return {
        "decode_tok_s": (r["tokens"] - 1) / r["decode_s"] if r["decode_s"] > 0 else 0.0,
        "prefill_tok_s": r["prompt_tokens"] / r["ttft_s"],
        "ttft_ms": r["ttft_s"] * 1000,
        "tokens": r["tokens"],
    }


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_rss(side: str, model: str, threads: int, tokens: int) -> float:
    """Peak RSS in MB of a fresh process that loads the model one way and answers once."""
    here = str(Path(__file__).resolve().parent)
    if side == "ours":
        engine = f"Engine({model!r}, n_ctx=b.N_CTX, n_threads={threads})"
        work = f"from homefire.engine import Engine; b.run_ours({engine}, {tokens})"
    else:
        work = (
            f"from homefire.models.store import resolve; from homefire.models.gguf import read_gguf; "
            f"from homefire.engine.template import ChatTemplate; m = resolve({model!r}); "
            f"p = ChatTemplate(read_gguf(m.path).chat_template).render(b.messages()); "
            f"b.run_bare(b.load_bare(str(m.path), {threads}), p, {tokens})"
        )
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    code = f"import sys; sys.path.insert(0, {here!r}); import engine as b; {work}; print(b.peak_rss_mb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    engine = Engine(args.model, n_ctx=N_CTX, n_threads=args.threads)
    prompt = engine.template.render(messages())
    bare = load_bare(str(engine.model.path), args.threads)
    run_ours(engine, 16)  # warm-up both
    run_bare(bare, prompt, 16)
    results: dict[str, list[dict[str, float]]] = {"ours": [], "bare": []}
    for i in range(args.runs):
        order = ("ours", "bare") if i % 2 == 0 else ("bare", "ours")
        for side in order:
            r = run_ours(engine, args.tokens) if side == "ours" else run_bare(bare, prompt, args.tokens)
            results[side].append(rates(r))
    del bare
    engine.close()
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in results.items()}
    rss = {side: child_rss(side, args.model, args.threads, args.tokens) for side in ("ours", "bare")}

    ratio = {
        "decode": med["ours"]["decode_tok_s"] / med["bare"]["decode_tok_s"],
        "prefill": med["ours"]["prefill_tok_s"] / med["bare"]["prefill_tok_s"],
        "ttft": med["ours"]["ttft_ms"] / med["bare"]["ttft_ms"],
        "rss": rss["ours"] / rss["bare"],
    }
    print(f"model {args.model}, {args.threads} threads, {args.tokens} tokens, median of {args.runs} alternating runs")
    print(f"{'':<22}{'homefire':>12}{'bare llama-cpp':>16}{'ratio':>9}")
    rows = [
        ("decode tok/s", "decode_tok_s", "decode", "{:.1f}"),
        ("prefill tok/s", "prefill_tok_s", "prefill", "{:.1f}"),
        ("time to first token ms", "ttft_ms", "ttft", "{:.0f}"),
    ]
    for label, key, rk, fmt in rows:
        print(f"{label:<22}{fmt.format(med['ours'][key]):>12}{fmt.format(med['bare'][key]):>16}{ratio[rk]:>8.2f}x")
    print(f"{'peak RSS MB':<22}{rss['ours']:>12.0f}{rss['bare']:>16.0f}{ratio['rss']:>8.2f}x")
    print(
        json.dumps(
            {
                "bench": "engine",
                "model": args.model,
                "threads": args.threads,
                "tokens": args.tokens,
                "runs": args.runs,
                "ours": med["ours"],
                "bare": med["bare"],
                "rss_mb": rss,
                "ratio": ratio,
                "targets": {"decode_ratio_min": 1.0, "rss_mb_max": 450},
                "pass": ratio["decode"] >= 1.0 and rss["ours"] <= 450,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
