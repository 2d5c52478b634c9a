"""`homefire guard check` and `homefire guard eval`: argument parsing and printing over Guard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import GuardError, PromptError
from .guard import STRICTNESS, Guard


def register(subparsers: Any) -> None:
    """Add the `guard` command to homefire's top-level subparsers."""
    guard = subparsers.add_parser("guard", help="check prompts with the on-device prompt guard")
    gsub = guard.add_subparsers(dest="guard_action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--strictness", choices=STRICTNESS, default="normal", help="threshold set (default normal)")
        p.add_argument("--json", action="store_true", help="print JSON")

    check = gsub.add_parser("check", help="is this prompt allowed? (exit 0 allowed, 3 blocked)")
    check.add_argument("text", nargs="*", help="the prompt (or '-' / a pipe to read stdin)")
    common(check)
    ev = gsub.add_parser("eval", help='score a JSONL file of {"prompt", "label"} lines')
    ev.add_argument("file", type=Path)
    common(ev)
    guard.set_defaults(func=cmd_guard)


def cmd_guard(args: argparse.Namespace) -> int:
    if args.guard_action == "check":
        return _check(args)
    return _eval(args)


def _check(args: argparse.Namespace) -> int:
    if args.text and args.text != ["-"]:
        text = " ".join(args.text)
    elif args.text == ["-"] or not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        raise PromptError('no text given: try `homefire guard check "how do I kill a hung process?"`')
    verdict = Guard(args.strictness).check(text)
    if args.json:
        print(json.dumps(verdict.as_dict(), ensure_ascii=False))
    else:
        state = "allowed" if verdict.allowed else "BLOCKED"
        cat = f" ({verdict.category})" if verdict.category else ""
        print(f"{state}: {verdict.label}{cat}  score {verdict.score:.3f}  {verdict.latency_ms:.1f} ms")
        s1 = "  ".join(f"{k} {v:.3f}" for k, v in verdict.scores.items())
        s2 = "  ".join(f"{k} {v:.3f}" for k, v in verdict.stage2.items()) if verdict.stage2 else "not needed"
        print(f"decided by stage {verdict.stage}; stage 1: {s1}; stage 2: {s2}")
        if not verdict.allowed:
            print(verdict.reason)
    # Exit status lets scripts use the guard as a filter, like grep's.
    return 0 if verdict.allowed else 3


def _truthy_label(value: Any, line_no: int, path: Path) -> bool:
    """True when the line's label means "should be blocked"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        v = value.strip().lower()
        if v in {"benign", "safe", "allowed", "0", "false", "ok"}:
            return False
        if v in {"harmful", "jailbreak", "injection", "unsafe", "blocked", "1", "true", "malicious"}:
            return True
    raise GuardError(f"{path}:{line_no}: unknown label {value!r} (use benign, harmful, jailbreak, or 0/1)")


def read_jsonl(path: Path) -> list[tuple[str, bool]]:
    """(prompt, should_block) pairs from a {"prompt", "label"} JSONL file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise GuardError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GuardError(f"cannot read {path}: {exc.__class__.__name__}") from None
    except ValueError:  # a NUL in the name: no file can have it
        raise GuardError(f"no such file: {str(path)!r}") from None
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            prompt, label = obj["prompt"], obj["label"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise GuardError(f'{path}:{n}: expected a JSON object with "prompt" and "label"') from None
        if not isinstance(prompt, str):
            raise GuardError(f'{path}:{n}: "prompt" must be a string')
        rows.append((prompt, _truthy_label(label, n, path)))
    if not rows:
        raise GuardError(f"{path} has no prompts")
    return rows


def evaluate(guard: Guard, rows: list[tuple[str, bool]]) -> dict[str, Any]:
    """Accuracy, TPR, FPR, F1 (positive = should be blocked) and latency percentiles."""
    tp = fp = tn = fn = 0
    lat = []
    for prompt, positive in rows:
        v = guard.check(prompt)
        lat.append(v.latency_ms)
        hit = not v.allowed
        tp += hit and positive
        fp += hit and not positive
        fn += (not hit) and positive
        tn += (not hit) and not positive
    lat.sort()
    n = len(rows)
    prec = tp / (tp + fp) if tp + fp else 0.0
    tpr = tp / (tp + fn) if tp + fn else 0.0
    return {
        "n": n,
        "accuracy": round((tp + tn) / n, 4),
        "tpr": round(tpr, 4) if tp + fn else None,
        "fpr": round(fp / (fp + tn), 4) if fp + tn else None,
        "f1": round(2 * prec * tpr / (prec + tpr), 4) if prec + tpr else 0.0,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "p50_ms": round(lat[n // 2], 3),
        "p95_ms": round(lat[min(n - 1, int(n * 0.95))], 3),
        "strictness": guard.strictness,
    }


def _eval(args: argparse.Namespace) -> int:
    rows = read_jsonl(args.file)
    result = evaluate(Guard(args.strictness), rows)
    if args.json:
        print(json.dumps(result))
        return 0

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1%}"

    print(f"{result['n']} prompts ({result['tp'] + result['fn']} to block, {result['fp'] + result['tn']} to allow)")
    print(
        f"accuracy {pct(result['accuracy'])}  TPR {pct(result['tpr'])}  FPR {pct(result['fpr'])}  F1 {result['f1']:.3f}"
    )
    print(f"latency p50 {result['p50_ms']:.1f} ms  p95 {result['p95_ms']:.1f} ms  (strictness {result['strictness']})")
    return 0
