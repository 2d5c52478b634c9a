"""Fact extraction, rules alone or with the default model (SmolLM2-135M) as a second stage. Table, then JSON.

    python bench/facts_model.py [--threads 1]

Measured on tests/data/facts_labelled.jsonl (the development set the rules were written on) and
tests/data/facts_heldout.jsonl (written afterwards, never tuned on), as precision and recall of the
facts kept. Three ways of letting the model help, each greedy and a few tokens long:

- confirm (yes/no): each rule candidate is kept only if the model answers "yes" to "is this a fact?";
- confirm (rewrite): kept only if the model, asked to restate the message as a fact or say "none",
  does not say "none";
- propose: for a first-person sentence the rules found nothing in, the model restates it as a
  "User ..." fact, which is kept only if the rules' filters pass it and every content word of it
  was said by the user (so nothing is made up).

homefire ships rules only: see the README's memory section for why.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homefire.config import GenerationSettings  # noqa: E402
from homefire.engine import Engine, Message  # noqa: E402
from homefire.memory.facts import _NOT_A_STATEMENT, _finish, extract, normalized, sentences  # noqa: E402
from homefire.memory.memory import content_words  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SPLITS = {"dev": DATA / "facts_labelled.jsonl", "held-out": DATA / "facts_heldout.jsonl"}
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|my|we|we're|our)\b", re.I)
REWRITE_SYSTEM = (
    "Rewrite the user's message as one short fact about the user, in the third person, starting with 'User'. "
    "If the message does not state a lasting fact about the user, write: none"
)
REWRITE_SHOTS = [
    ("I live in Paris.", "User lives in Paris."),
    ("What is the capital of Peru?", "none"),
    ("My cat is called Tom.", "User's cat is called Tom."),
    ("Write a poem about my dog.", "none"),
]
YES_NO_SHOTS = [
    ("I live in Paris.", "yes"),
    ("Write a story where I live in Paris.", "no"),
    ("My cat is called Tom.", "yes"),
    ("My question is about loops.", "no"),
]


class ModelStage:
    def __init__(self, threads: int) -> None:
        self.engine = Engine(n_ctx=1024, n_threads=threads)
        self.settings = GenerationSettings(temperature=0.0, max_tokens=24, seed=42)
        self.calls = 0
        self.seconds = 0.0

    def _ask(self, messages: list[Message], max_tokens: int) -> str:
        started = time.perf_counter()
        self.settings.max_tokens = max_tokens
        out = "".join(self.engine.stream(messages, self.settings)).strip()
        self.calls += 1
        self.seconds += time.perf_counter() - started
        return out.split("\n")[0]

    def says_yes(self, sentence: str) -> bool:
        messages: list[Message] = [{"role": "system", "content": "Answer yes or no."}]
        question = "Does the user tell us a fact about themselves?"
        for text, answer in YES_NO_SHOTS:
            messages += [
                {"role": "user", "content": f'Message: "{text}" {question}'},
                {"role": "assistant", "content": answer},
            ]
        messages.append({"role": "user", "content": f'Message: "{sentence}" {question}'})
        return self._ask(messages, 3).lower().startswith("yes")

    def rewrite(self, sentence: str) -> str:
        messages: list[Message] = [{"role": "system", "content": REWRITE_SYSTEM}]
        for text, answer in REWRITE_SHOTS:
            messages += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": sentence})
        return self._ask(messages, 24)


def grounded(sentence: str, fact: str) -> str | None:
    """The model's fact, if the rules would let it through and it uses only words the user said."""
    if not fact.startswith("User") or _NOT_A_STATEMENT.search(sentence) or sentence.strip().endswith("?"):
        return None
    said = set(content_words(sentence))
    said |= {w.rstrip("s") for w in said}
    words = [w for w in content_words(fact) if w not in ("user", "their", "they", "them")]
    if not words or any(w not in said and w.rstrip("s") not in said for w in words):
        return None
    return _finish(fact)


def score(path: Path, facts_of: Callable[[str], set[str]]) -> dict[str, float]:
    tp = fp = fn = 0
    for line in path.read_text().splitlines():
        item = json.loads(line)
        got = facts_of(item["text"])
        want = {normalized(f) for f in item["facts"]}
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model = ModelStage(args.threads)

    def rules(text: str) -> set[str]:
        return {normalized(f) for f in extract(text)}

    def confirm_yes_no(text: str) -> set[str]:
        return {normalized(f) for s in sentences(text) for f in extract(s) if model.says_yes(s.strip())}

    def confirm_rewrite(text: str) -> set[str]:
        kept = set()
        for s in sentences(text):
            found = extract(s)
            if found and not model.rewrite(s.strip()).lower().startswith("none"):
                kept |= {normalized(f) for f in found}
        return kept

    def propose(text: str) -> set[str]:
        kept = set()
        for s in sentences(text):
            found = extract(s)
            kept |= {normalized(f) for f in found}
            if not found and s.strip() and FIRST_PERSON.search(s):
                fact = grounded(s, model.rewrite(s.strip()))
                if fact:
                    kept.add(normalized(fact))
        return kept

    ways = {
        "rules only (shipped)": rules,
        "rules + model confirms (yes/no)": confirm_yes_no,
        "rules + model confirms (rewrite or none)": confirm_rewrite,
        "rules + model proposes, rules validate": propose,
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, way in ways.items():
        calls, seconds = model.calls, model.seconds
        results[name] = {split: score(path, way) for split, path in SPLITS.items()}
        n = model.calls - calls
        results[name]["model"] = {"calls": n, "ms_per_call": (model.seconds - seconds) / max(n, 1) * 1000}
    print("\n| extraction | dev P / R | held-out P / R | model calls (ms each) |\n|---|---|---|---|")
    for name, r in results.items():
        dev, held, m = r["dev"], r["held-out"], r["model"]
        calls = f"{m['calls']:.0f} ({m['ms_per_call']:.0f})" if m["calls"] else "0"
        print(
            f"| {name} | {dev['precision']:.2f} / {dev['recall']:.2f} | "
            f"{held['precision']:.2f} / {held['recall']:.2f} | {calls} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
