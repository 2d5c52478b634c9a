"""`homefire history ...` and `homefire memory ...`: argument parsing and printing over Memory."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config, session
from .errors import MemoryLocked, MemoryStoreError, WrongPassphrase
from .memory import Memory, crypto

if TYPE_CHECKING:
    from .guard import Guard

NEW_PASSPHRASE_ENV = "HOMEFIRE_NEW_PASSPHRASE"


def register(subparsers: Any) -> None:
    """Add the `history` and `memory` commands to homefire's top-level subparsers."""
    history = subparsers.add_parser("history", help="list, search, show, export, rename or delete saved conversations")
    hsub = history.add_subparsers(dest="history_action", required=True)
    ls = hsub.add_parser("list", help="saved conversations, newest first")
    ls.add_argument("--limit", type=int, default=30)
    search = hsub.add_parser("search", help="find messages by words and meaning (full text + vectors)")
    search.add_argument("query", nargs="+")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--mode", choices=("hybrid", "text", "vector"), default="hybrid")
    show = hsub.add_parser("show", help="print one conversation")
    show.add_argument("id", type=int)
    export = hsub.add_parser("export", help="one conversation as Markdown or JSON on stdout")
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=("md", "json"), default="md")
    rename = hsub.add_parser("rename", help="give a conversation a new title")
    rename.add_argument("id", type=int)
    rename.add_argument("title", nargs="+")
    rm = hsub.add_parser("rm", help="delete a conversation for good (its text is overwritten on disk)")
    rm.add_argument("id", type=int)
    history.set_defaults(func=cmd_history)

    memory = subparsers.add_parser("memory", help="the facts homefire remembers about you: see, add, edit, forget")
    msub = memory.add_subparsers(dest="memory_action", required=True)
    msub.add_parser("list", help="every remembered fact")
    add = msub.add_parser("add", help="remember a fact")
    add.add_argument("text", nargs="+")
    add.add_argument("--pin", action="store_true", help="always put it in the prompt")
    edit = msub.add_parser("edit", help="change a fact's text")
    edit.add_argument("id", type=int)
    edit.add_argument("text", nargs="+")
    for action, text in (("forget", "forget one fact"), ("pin", "always recall it"), ("unpin", "recall when relevant")):
        msub.add_parser(action, help=text).add_argument("id", type=int)
    ex = msub.add_parser("export", help="all facts as JSON or Markdown on stdout")
    ex.add_argument("--format", choices=("json", "md"), default="json")
    imp = msub.add_parser("import", help="facts from an export (JSON) or a list, one a line")
    imp.add_argument("file", type=Path)
    wipe = msub.add_parser("wipe", help="forget every fact (--all: every conversation too), then VACUUM the file")
    wipe.add_argument("--all", action="store_true", help="delete all conversations as well")
    wipe.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rec = msub.add_parser("recover", help="copy what is readable of a damaged memory database into a new file")
    rec.add_argument("--to", type=Path, default=None, help="where to write it (default memory.recovered-TIME.db)")
    msub.add_parser("encrypt", help=f"encrypt the database with a passphrase (${crypto.PASSPHRASE_ENV} or asked)")
    msub.add_parser("decrypt", help="store the database unencrypted again")
    msub.add_parser("rekey", help=f"change the passphrase (the new one: ${NEW_PASSPHRASE_ENV} or asked)")
    memory.set_defaults(func=cmd_memory)


def open_memory(guard: Guard | None = None) -> Memory:
    """The memory database, unlocked: with $HOMEFIRE_PASSPHRASE if set, else (encrypted, on a terminal) by asking
    for the passphrase, three tries at most. Without a terminal a locked database is a one-line error."""
    memory = session.open_memory(unlock=ask_on_terminal, guard=guard)
    assert memory is not None  # ask_on_terminal never gives up quietly: it raises
    return memory


def ask_on_terminal(locked: MemoryLocked) -> Memory:
    """Session's `unlock` for a terminal: the passphrase asked three times at most, else the error."""
    if not sys.stdin.isatty():
        raise locked
    error: MemoryLocked | None = None
    for _ in range(3):
        passphrase = getpass.getpass("memory passphrase: ")
        try:
            return Memory.open(passphrase=passphrase)
        except WrongPassphrase as exc:
            error = exc
            print(f"homefire: {exc}", file=sys.stderr)
    assert error is not None
    raise error


def _passphrase(prompt: str, env: str, confirm: bool = False) -> str:
    """A passphrase from `env`, or asked on the terminal (twice when it is a new one)."""
    given = os.environ.get(env)
    if given:
        return given
    if not sys.stdin.isatty():
        raise MemoryStoreError(f"no passphrase: set {env} (there is no terminal to ask on)")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again, to be sure: ") != first:
        raise MemoryStoreError("the two passphrases differ: nothing was changed")
    return first


def _crypt(action: str) -> int:
    """encrypt / decrypt / rekey: the database is rewritten into a new file, checked, then swapped in."""
    from .memory.store import default_path

    path = default_path()
    encrypted = path.exists() and crypto.looks_encrypted(path)
    if action == "encrypt":
        if encrypted:
            raise MemoryStoreError(
                "the memory database is already encrypted: `homefire memory rekey` changes the passphrase"
            )
        crypto.driver()  # say how to install it before asking for anything
        new = _passphrase("new memory passphrase: ", crypto.PASSPHRASE_ENV, confirm=True)
        if not path.exists() or path.stat().st_size == 0:
            Memory.open(passphrase=new).close()  # a new, empty, encrypted database
            counts = {"conversations": 0, "messages": 0, "facts": 0}
        else:
            counts = crypto.rewrite(path, None, new)
        print(
            f"encrypted {path} ({counts['conversations']} conversations, {counts['messages']} messages, "
            f"{counts['facts']} facts); from now on homefire needs the passphrase (${crypto.PASSPHRASE_ENV} or asked)"
        )
        return 0
    if not encrypted:
        raise MemoryStoreError(f"the memory database is not encrypted: nothing to {action} ({path})")
    old = _passphrase("memory passphrase: ", crypto.PASSPHRASE_ENV)
    if action == "decrypt":
        counts = crypto.rewrite(path, old, None)
        print(
            f"decrypted {path} ({counts['messages']} messages, {counts['facts']} facts): it is stored unencrypted now"
            + (f"; unset {crypto.PASSPHRASE_ENV}" if os.environ.get(crypto.PASSPHRASE_ENV) else "")
        )
        return 0
    crypto.connect(path, old, 3.0).close()  # a wrong current passphrase is said before the new one is asked
    new = _passphrase("new memory passphrase: ", NEW_PASSPHRASE_ENV, confirm=True)
    counts = crypto.rewrite(path, old, new)
    print(f"changed the passphrase of {path} ({counts['messages']} messages, {counts['facts']} facts)")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    memory = open_memory()
    store = memory.store
    action = args.history_action
    if action == "list":
        rows = store.conversations(args.limit)
        if not rows:
            print('no saved conversations yet: `homefire ask "..."` and the chat app save them')
            return 0
        print(f"{'ID':>5}  {'UPDATED':<16}  {'MSGS':>4}  TITLE")
        for c in rows:
            print(f"{c['id']:>5}  {c['updated'][:16].replace('T', ' ')}  {c['messages']:>4}  {c['title']}")
        return 0
    if action == "search":
        mark = ("\033[1;33m", "\033[0m") if sys.stdout.isatty() else ("[", "]")
        started = time.perf_counter()
        hits = memory.search(" ".join(args.query), args.limit, args.mode, mark)
        ms = (time.perf_counter() - started) * 1000
        if not hits:
            print("nothing found", file=sys.stderr)
            return 1
        for h in hits:
            print(f"#{h.conversation_id} {h.date}  {h.title}\n    {h.role}: {h.snippet}")
        print(f"{len(hits)} results in {ms:.0f} ms", file=sys.stderr)
        return 0
    if action == "show":
        print(memory.export_conversation(args.id, "md"), end="")
        return 0
    if action == "export":
        print(memory.export_conversation(args.id, args.format), end="" if args.format == "md" else "\n")
        return 0
    if action == "rename":
        store.rename_conversation(args.id, " ".join(args.title))
        print(f"renamed conversation {args.id}")
        return 0
    if action == "rm":
        title = store.conversation(args.id)["title"]
        store.delete_conversation(args.id)
        print(f"deleted conversation {args.id} ({title})")
        return 0
    raise AssertionError(action)


def _recover(args: argparse.Namespace) -> int:
    from .memory.store import default_path, salvage

    damaged = default_path()
    if not damaged.exists():
        raise MemoryStoreError(f"there is no memory database at {damaged}: nothing to recover")
    dest = args.to or damaged.with_name(f"memory.recovered-{time.strftime('%Y%m%d-%H%M%S')}.db")
    counts = salvage(damaged, dest)
    print(
        f"recovered {counts['conversations']} conversations, {counts['messages']} messages and {counts['facts']} "
        f"facts into {dest} ({counts['unreadable']} unreadable rows left behind); {damaged} is unchanged. "
        f"To use the copy: mv {dest} {damaged}"
    )
    return 0


def cmd_memory(args: argparse.Namespace) -> int:
    if args.memory_action == "recover":
        return _recover(args)  # before opening: the database may not open at all
    if args.memory_action in ("encrypt", "decrypt", "rekey"):
        return _crypt(args.memory_action)  # these rewrite the file: nothing else may have it open
    guard = None
    if args.memory_action in ("add", "import", "edit"):
        # Facts written here are checked like /remember, by the guard at the level a chat would use.
        guard = session.load_guard(session.guard_level(None, config.load_config()))
    memory = open_memory(guard)
    store = memory.store
    action = args.memory_action
    if action == "list":
        rows = store.facts()
        if not rows:
            print("no facts remembered yet: `homefire memory add TEXT`, or tell homefire about yourself")
            return 0
        print(f"{'ID':>4}  {'PIN':<3}  {'LAST USED':<16}  FACT")
        for f in rows:
            used = (f["last_used"] or "never")[:16].replace("T", " ")
            flag = f"  [flagged by the guard: {f['guard_flag']}; never recalled]" if f.get("guard_flag") else ""
            print(f"{f['id']:>4}  {'yes' if f['pinned'] else '':<3}  {used:<16}  {f['text']}{flag}")
        return 0
    if action == "add":
        from .memory.facts import explicit

        # Same wording as /remember: "my daughter is Maya" is kept as "User's daughter is Maya."
        fact, status = memory.remember(explicit(" ".join(args.text)), pinned=args.pin)
        note = " (flagged by the guard: kept, never recalled)" if status == "flagged" else ""
        print(f"{status} fact {fact.id}: {fact.text}{note}")
        return 0
    if action == "edit":
        text = " ".join(args.text).strip()
        flag = memory.edit_fact(args.id, text)
        note = f" (flagged by the guard as {flag}: kept, never recalled)" if flag else ""
        print(f"fact {args.id}: {text}{note}")
        return 0
    if action in ("pin", "unpin"):
        store.update_fact(args.id, pinned=action == "pin")
        print(f"fact {args.id} {action}ned")
        return 0
    if action == "forget":
        text = store.fact(args.id)["text"]
        store.delete_fact(args.id)
        print(f"forgot fact {args.id}: {text}")
        return 0
    if action == "export":
        print(memory.export_facts(args.format), end="" if args.format == "md" else "\n")
        return 0
    if action == "import":
        counts = memory.import_facts(args.file)
        print(
            f"imported {args.file}: {counts['added']} added, {counts['updated']} updated, {counts['known']} known, "
            f"{counts['flagged']} flagged by the guard (kept, never recalled)"
        )
        return 0
    if action == "wipe":
        what = "every fact and every conversation" if args.all else "every fact"
        if not args.yes:
            if not sys.stdin.isatty():
                raise MemoryStoreError(f"wipe deletes {what}: add --yes to confirm")
            if input(f"Delete {what} for good? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        store.wipe(conversations=args.all)
        print(f"deleted {what}; the file was vacuumed")
        return 0
    raise AssertionError(action)
