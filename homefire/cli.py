"""The command line: argument parsing and printing only; the work lives in the modules below it."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__, config, session
from .errors import HomefireError, PromptError, one_line, storage_error

if TYPE_CHECKING:
    from .interrupt import CtrlC


def _progress_bar(label: str, unit: str = "MB") -> Callable[[int, int], None]:
    """A one-line progress bar with an ETA on stderr (only when stderr is a terminal)."""
    tty = sys.stderr.isatty()
    started = time.monotonic()
    scale = 1e6 if unit == "MB" else 1

    def show(done: int, total: int) -> None:
        if not tty or not total:
            return
        width = 30
        filled = int(width * done / total)
        elapsed = time.monotonic() - started
        eta = f" ETA {elapsed * (total - done) / done:,.0f}s" if 0 < done < total else ""
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{done / scale:,.{1 if scale > 1 else 0}f}/{total / scale:,.{1 if scale > 1 else 0}f} {unit}{eta}   "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _read_question(words: list[str]) -> str:
    if words and words != ["-"]:
        return " ".join(words)
    if words == ["-"] or not sys.stdin.isatty():
        return sys.stdin.read()
    raise PromptError('no question given: try `homefire ask "What is the capital of France?"`')


def _options(args: argparse.Namespace, **more: Any) -> session.Options:
    """The session options these command-line arguments give (an option not given is None: not said)."""
    return session.Options(
        model=args.model, n_ctx=args.ctx, threads=args.threads, kv=getattr(args, "kv", None), guard=args.guard, **more
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from .interrupt import CtrlC

    with CtrlC() as stop:
        return _ask(args, stop)


def _ask(args: argparse.Namespace, stop: CtrlC) -> int:
    question = _read_question(args.question)
    settings = config.GenerationSettings(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    # The options given on the command line win over what the settings screen saved.
    plan = session.resolve(
        _options(args, system_prompt=args.system, incognito=args.incognito, cartridges=args.cartridge or [])
    )
    memory = None
    if not plan.incognito:
        from .memory_cli import open_memory

        # Opened before the model loads: a busy, damaged or locked database says so at once (or asks its passphrase).
        memory = open_memory()
    assistant = session.open_assistant(plan, settings=settings, memory=memory)
    engine = assistant.engine
    pieces: list[str] = []
    try:
        with stop.answering() as cancel:  # Ctrl-C stops the answer at the next token
            for piece in assistant.turn(question, cancel):
                pieces.append(piece)
                if not args.json:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
        stop.check()
    except KeyboardInterrupt:
        if not args.json:
            sys.stdout.write("\n")
            sys.stdout.flush()
        print("homefire: stopped", file=sys.stderr)
        return 130
    verdict = assistant.last_verdict
    if verdict is not None and not verdict.allowed:
        from .assistant import SELF_HARM_REPLY, is_self_harm

        if args.json:
            print(json.dumps({"blocked": True, "text": "", "model": engine.model.name, "verdict": verdict.as_dict()}))
        elif is_self_harm(verdict):
            print(SELF_HARM_REPLY)  # support, not a bare refusal
        print(
            f"homefire: not answered: {verdict.reason} Rephrase it if it was harmless "
            f"(`homefire guard check --json` shows the scores).",
            file=sys.stderr,
        )
        return 3
    stats = assistant.last_stats
    if args.json:
        out = {"text": "".join(pieces), "model": engine.model.name, **(stats.as_dict() if stats else {})}
        print(json.dumps(out, ensure_ascii=False))
    else:
        sys.stdout.write("\n")
    return 0


def cmd_cartridge(args: argparse.Namespace) -> int:
    from .engine import cartridge as cartridges

    if args.action == "list":
        carts = cartridges.all_cartridges()
        if not carts:
            print("no cartridges yet: make one with `homefire cartridge build NAME FILE...`")
            return 0
        print(f"{'NAME':<20} {'TOKENS':>7} {'SIZE':>9} {'KV':<5} {'MODEL':<16} STATUS")
        for c in carts:
            size = c.disk_bytes()
            kind = f" ({len(c.chunks)} chunks)" if c.chunks else ""
            print(
                f"{c.name:<20} {c.tokens:>7,} {size / 1e6:>6,.1f} MB {c.kv_type:<5} "
                f"{c.manifest['model']['name']:<16} {cartridges.status(c)}{kind}"
            )
        return 0
    if args.action == "info":
        c = cartridges.load(args.name)
        m = c.manifest
        print(f"name:      {c.name}")
        print(f"status:    {cartridges.status(c)}")
        print(f"tokens:    {m['tokens']:,}" + (f" in {len(c.chunks)} chunks" if c.chunks else ""))
        print(f"model:     {m['model']['name']} (sha256 {m['model']['sha256'][:12]}…)")
        print(f"KV cache:  {m['type_k']}, flash attention {'on' if m['flash_attn'] else 'off'}, context {m['n_ctx']:,}")
        print(f"made by:   llama-cpp-python {m['llama_cpp_python']}, {m['created']}")
        if m.get("state"):
            st = m["state"]
            print(
                f"state:     {st['bytes'] / 1e6:,.1f} MB ({st['bytes'] / m['tokens'] / 1e3:,.1f} KB/token), "
                f"sha256 {st['sha256'][:12]}…"
            )
        for s in m["sources"]:
            print(f"source:    {s['label']}  {s['path']}  ({s['bytes']:,} bytes)")
        return 0
    if args.action == "rm":
        c = cartridges.remove(args.name)
        print(f"removed cartridge {c.name}")
        return 0
    # build and rebuild
    saved = config.load_config()
    if args.action == "rebuild":
        manifest = cartridges.load(args.name).manifest
        args.model = args.model or manifest["model"]["name"]
        args.kv = args.kv or manifest["type_k"]
        args.ctx = max(args.ctx or saved.n_ctx, manifest["n_ctx"])
    else:
        cartridges.check_name(args.name)
        sources = cartridges.read_sources(args.paths)  # bad sources fail before the model loads
    plan = session.resolve(_options(args), saved)
    guard = session.load_guard(plan.guard)
    engine = session.open_engine(plan)
    bar = _progress_bar(f"reading into {args.name}", unit="tokens")
    started = time.monotonic()
    if args.action == "rebuild":
        cart = cartridges.rebuild(args.name, engine, bar, guard=guard)
    else:
        cart = cartridges.build(args.name, sources, engine, bar, chunk=args.chunk, guard=guard)
    seconds = time.monotonic() - started
    for flag in cart.manifest.get("guard_flags", []):
        print(
            f"homefire: note: the guard flags {flag['source']} as {flag['label']} ({flag['score']:.2f}); "
            "it is kept as reference data, and the model is told not to follow instructions in it",
            file=sys.stderr,
        )
    parts = f" in {len(cart.chunks)} chunks" if cart.chunks else ""
    print(
        f"cartridge {cart.name}: {cart.tokens:,} tokens{parts}, built in {seconds:.1f}s; "
        f'ask with `homefire ask --cartridge {cart.name} "..."`'
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import catalogue, store

    if args.action == "list":
        rows = store.installed()
        print(f"{'NAME':<24} {'SOURCE':<9} {'SIZE':>9}  PATH")
        for m in rows:
            size = f"{m.path.stat().st_size / 1e6:,.0f} MB" if m.path.exists() else "missing"
            print(f"{m.name:<24} {m.source:<9} {size:>9}  {m.path}")
        have = {m.name for m in rows}
        print("\nRecommended (pull with `homefire models pull NAME`):")
        for e in catalogue.CATALOGUE:
            mark = "installed" if e.name in have else f"{e.size_gb:.2f} GB"
            print(f"  {e.name:<14} {mark:>9}  RAM >= {e.min_ram_gb:.0f} GB  {e.licence:<28} {e.note}")
        return 0
    if args.action == "info":
        model = store.resolve(args.name)
        info = model.info()
        print(f"name:          {model.name} ({model.source})")
        print(f"file:          {model.path}")
        print(f"size:          {info.file_size / 1e6:,.1f} MB")
        print(f"architecture:  {info.architecture}")
        print(f"model:         {info.name}")
        print(f"quantization:  {info.quantization}")
        print(f"context:       {info.context_length or 'unknown'} tokens")
        print(f"chat template: {'yes' if info.chat_template else 'no (ChatML is used)'}")
        print(f"licence:       {info.metadata.get('general.license', 'not stated')}")
        if model.sha256:
            print(f"sha256:        {model.sha256}")
        if model.repo:
            print(f"from:          {model.repo}/{model.filename} @ {model.revision}")
        return 0
    if args.action == "verify":
        model = store.resolve(args.name)
        digest = store.verify(model, _progress_bar(f"verifying {model.name}"), force=True)
        state = "matches the expected sha256" if model.sha256 else "(no expected sha256 is known for a local file)"
        print(f"{model.name}: ok, sha256 {digest} {state}")
        return 0
    if args.action == "pull":
        from .models.pull import pull, source

        source(args.repo, args.file)
        print(
            "homefire: downloading from the Hugging Face hub (the only command that uses the network)", file=sys.stderr
        )
        model = pull(args.repo, args.file, args.revision, progress=_progress_bar("pulling"))
        print(f"{model.name}: installed and verified (sha256 {model.sha256}); use it with --model {model.name}")
        return 0
    if args.action == "rm":
        model = store.remove(args.name)
        print(f"removed {model.name} ({model.path})")
        return 0
    raise AssertionError(args.action)


def cmd_chat(args: argparse.Namespace) -> int:
    from .app import run_app

    return run_app(
        model=args.model,
        n_ctx=args.ctx,
        n_threads=args.threads,
        guard=args.guard,  # the app resolves it like every session: option, $HOMEFIRE_GUARD, saved, normal
        incognito=args.incognito,
        touch=args.touch,
    )


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", help="model name from `homefire models list`, or a path to a .gguf file")
    p.add_argument("--ctx", type=int, default=None, help="context size in tokens (default: the saved setting, 4096)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument(
        "--guard",
        choices=config.GUARD_CHOICES,
        default=None,
        help="prompt guard strictness; 'off' turns it off (default: $HOMEFIRE_GUARD or normal)",
    )
    p.add_argument(
        "--kv",
        choices=("f16", "q8_0"),
        default=None,
        help="KV cache type (q8_0 halves cartridge size; runs with flash attention)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homefire", description="A private assistant that runs on this machine.")
    parser.add_argument("--version", action="version", version=f"homefire {__version__}")
    sub = parser.add_subparsers(dest="command")

    chat = sub.add_parser("chat", help="open the chat app (the default)")
    _add_engine_options(chat)
    chat.add_argument("--incognito", action="store_true", help="save nothing and recall nothing (no memory)")
    chat.add_argument(
        "--touch", action="store_true", help="a touch screen: the tap bar shows and the greeting names taps, not keys"
    )
    chat.set_defaults(func=cmd_chat)

    ask = sub.add_parser("ask", help="answer one question on stdout")
    ask.add_argument("question", nargs="*", help="the question (or '-' / a pipe to read stdin)")
    _add_engine_options(ask)
    ask.add_argument("--system", default=None, help="system prompt (default: the saved setting)")
    ask.add_argument("--max-tokens", type=int, default=512)
    ask.add_argument("--temperature", type=float, default=None, help="0 = greedy (default for models < 1B)")
    ask.add_argument("--seed", type=int, default=None)
    ask.add_argument("--json", action="store_true", help="print one JSON object with the text and stats")
    ask.add_argument(
        "--cartridge",
        "-c",
        action="append",
        default=[],
        metavar="NAME",
        help="answer from a saved cartridge (repeat to combine several)",
    )
    ask.add_argument("--incognito", action="store_true", help="save nothing and recall nothing (no memory)")
    ask.set_defaults(func=cmd_ask)

    cart = sub.add_parser("cartridge", help="build, list, inspect, rebuild or remove cartridges (saved contexts)")
    csub = cart.add_subparsers(dest="action", required=True)
    build = csub.add_parser("build", help="read documents once and save the model's state of them")
    build.add_argument("name")
    build.add_argument("paths", nargs="+", metavar="PATH", help="text/Markdown files, folders, or '-' for stdin")
    build.add_argument("--chunk", action="store_true", help="split sources larger than the context into chunks")
    rebuild = csub.add_parser("rebuild", help="build again from the same sources")
    rebuild.add_argument("name")
    for p in (build, rebuild):
        _add_engine_options(p)
    csub.add_parser("list", help="all cartridges and whether they are usable")
    for action, text in (("info", "what a cartridge holds"), ("rm", "delete a cartridge")):
        csub.add_parser(action, help=text).add_argument("name")
    cart.set_defaults(func=cmd_cartridge)

    models = sub.add_parser("models", help="list, inspect, download, verify or remove models")
    msub = models.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="installed and recommended models")
    for action, text in (("info", "what a model is"), ("verify", "check its sha256"), ("rm", "delete a download")):
        msub.add_parser(action, help=text).add_argument("name")
    pull = msub.add_parser("pull", help="download a GGUF from the Hugging Face hub")
    pull.add_argument("repo", help="a catalogue name, or a hub repo like Qwen/Qwen2.5-0.5B-Instruct-GGUF")
    pull.add_argument("file", nargs="?", help="the .gguf file in that repo")
    pull.add_argument("--revision", help="a branch, tag or commit (default main)")
    models.set_defaults(func=cmd_models)

    from .guard.cli import register as register_guard

    register_guard(sub)
    from .memory_cli import register as register_memory

    register_memory(sub)
    from .web.cli import register as register_web

    register_web(sub)
    return parser


_COMMANDS = ("chat", "ask", "models", "cartridge", "guard", "history", "memory", "serve")


def main(argv: Sequence[str] | None = None) -> int:
    config.offline_hub()
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in _COMMANDS + ("-h", "--help", "--version"):
        words.insert(0, "chat")  # `homefire` and `homefire --model X` open the chat app
    args = parser.parse_args(words)
    try:
        return int(args.func(args))
    except HomefireError as exc:
        print(f"homefire: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("homefire: stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file or folder that failed where no layer said so itself: still one line naming it, no traceback.
        err = storage_error(exc, "a file or folder")
        print(f"homefire: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
