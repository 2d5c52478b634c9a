"""Encryption at rest: SQLCipher-compatible libraries compared on the memory database's own workload.

    python bench/encryption.py [--messages 20000] [--queries 50]

Each library that can be imported is measured on the same schema as memory.db (messages with an
FTS5 index kept in step by triggers, WAL, secure_delete): plain sqlite3 is the baseline. The
candidates are separate wheels with clashing module names, so measure one at a time:

    pip install --target /tmp/c1 sqlcipher3 && PYTHONPATH=/tmp/c1 python bench/encryption.py
    pip install --target /tmp/c2 apsw-sqlite3mc && PYTHONPATH=/tmp/c2 python bench/encryption.py

It reports the insert rate (one transaction per message, as a turn writes), full-text search
p50/p95, the time to open a keyed file (key derivation), and checks that the raw bytes of the file
and its WAL hold no plaintext and that a wrong passphrase is refused. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCHEMA = [
    "create table messages (id integer primary key, conversation_id integer, role text, text text, created text)",
    "create virtual table messages_fts using fts5 (text, content=messages, content_rowid=id, tokenize='porter')",
    "create trigger messages_ai after insert on messages begin "
    "insert into messages_fts (rowid, text) values (new.id, new.text); end",
]
SECRET = "zebracrossing"  # a word that must not appear in the raw bytes of an encrypted file
PASSPHRASE = "correct horse battery staple"


class Candidate:
    """One library: how to open a (keyed) connection with it, and run SQL through it."""

    def __init__(self, name: str, module: str, cipher: str) -> None:
        self.name, self.module, self.cipher = name, module, cipher
        self.lib: Any = importlib.import_module(module)

    def connect(self, path: Path, key: str | None) -> Any:
        if self.module == "apsw":
            conn = self.lib.Connection(str(path))
            if key is not None:
                # SQLite3 Multiple Ciphers in SQLCipher 4 mode: files readable by SQLCipher itself.
                conn.execute("pragma cipher = 'sqlcipher'")
                conn.execute("pragma legacy = 4")
                conn.execute("pragma key = " + _quote(key))
            return conn
        conn = self.lib.connect(str(path), isolation_level=None)
        if key is not None:
            if self.module == "pysqlite3mc":
                conn.execute("pragma cipher = 'sqlcipher'")
                conn.execute("pragma legacy = 4")
            conn.execute("pragma key = " + _quote(key))
        return conn

    def version(self) -> str:
        if self.module == "apsw":
            return f"SQLite {self.lib.sqlite_lib_version()}, apsw {self.lib.apsw_version()}"
        conn = self.lib.connect(":memory:")
        cipher = ""
        try:
            row = conn.execute("pragma cipher_version").fetchone()
            cipher = f", SQLCipher {row[0]}" if row else ""
        except Exception:  # noqa: BLE001 - not every build has the pragma
            pass
        return f"SQLite {self.lib.sqlite_version}{cipher}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return list(conn.execute(sql, params))


def measure(c: Candidate, n: int, queries: int, encrypted: bool) -> dict[str, Any]:
    rng = random.Random(7)
    words = "python server bread garden dragon recipe train music budget invoice printer kernel backup".split()
    vocab = words + [f"{rng.choice(words)}{i}" for i in range(5000)]
    texts = [" ".join(rng.choices(vocab, k=rng.randint(8, 40))) for _ in range(n)]
    texts[n // 2] += f" {SECRET}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.db"
        key = PASSPHRASE if encrypted else None
        t = time.perf_counter()
        conn = c.connect(path, key)
        for pragma in ("journal_mode=wal", "secure_delete=on", "synchronous=normal", "foreign_keys=on"):
            _rows(conn, f"pragma {pragma}")
        for sql in SCHEMA:
            conn.execute(sql)
        t = time.perf_counter()
        for i, text in enumerate(texts):
            conn.execute("begin")
            conn.execute(
                "insert into messages (conversation_id, role, text, created) values (?, ?, ?, ?)",
                (i % 2000, "user", text, "2026-01-01T00:00:00Z"),
            )
            conn.execute("commit")
        insert_s = time.perf_counter() - t
        timings = []
        for _ in range(queries):
            q = " ".join(rng.sample(vocab[13:], 2))
            t = time.perf_counter()
            _rows(
                conn,
                "select rowid, snippet(messages_fts, 0, '[', ']', '…', 12) from messages_fts "
                "where messages_fts match ? order by rank limit 50",
                (f'"{q.split()[0]}" OR "{q.split()[1]}"',),
            )
            timings.append((time.perf_counter() - t) * 1000)
        assert _rows(conn, "select rowid from messages_fts where messages_fts match ?", (SECRET,))
        raw = path.read_bytes() + (Path(str(path) + "-wal").read_bytes() if Path(str(path) + "-wal").exists() else b"")
        leaked = SECRET.encode() in raw or b"SQLite format 3" in raw[:16]
        conn.close()
        t = time.perf_counter()
        again = c.connect(path, key)
        _rows(again, "select count(*) from messages")
        open_ms = (time.perf_counter() - t) * 1000
        again.close()
        wrong_refused = None
        if encrypted:
            try:
                bad = c.connect(path, "wrong passphrase")
                _rows(bad, "select count(*) from sqlite_master")
                wrong_refused = False
            except Exception as exc:  # noqa: BLE001 - each library has its own exception classes
                wrong_refused = "not a database" in str(exc) or "encrypted" in str(exc)
        size = os.path.getsize(path)
    timings.sort()
    return {
        "library": c.name,
        "version": c.version(),
        "encrypted": encrypted,
        "insert_per_s": n / insert_s,
        "fts_p50_ms": timings[len(timings) // 2],
        "fts_p95_ms": timings[int(len(timings) * 0.95) - 1],
        "open_ms": open_ms,
        "mb": size / 1e6,
        "plaintext_in_file": leaked,
        "wrong_passphrase_refused": wrong_refused,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    found: list[tuple[Candidate, bool]] = [(Candidate("sqlite3 (stdlib)", "sqlite3", ""), False)]
    for name, module in (("sqlcipher3", "sqlcipher3"), ("pysqlite3mc", "pysqlite3mc"), ("apsw-sqlite3mc", "apsw")):
        try:
            cand = Candidate(name, module, "sqlcipher")
        except ImportError:
            continue
        if module == "apsw":
            try:  # plain apsw has no cipher: only the SQLite3 Multiple Ciphers build counts
                _rows(cand.connect(Path(":memory:"), None), "select sqlite3mc_version()")
            except Exception:  # noqa: BLE001
                continue
        found += [(cand, False), (cand, True)]
    results = [measure(c, args.messages, args.queries, enc) for c, enc in found]
    print(f"\n{args.messages:,} messages, one transaction each, FTS5 triggers, WAL ({sys.platform})\n")
    head = ["library", "keyed", "insert msg/s", "FTS p50 / p95 ms", "open ms", "MB"]
    head += ["plaintext in file", "wrong key refused"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['library']} ({r['version']}) | {'yes' if r['encrypted'] else 'no'} | {r['insert_per_s']:,.0f} | "
            f"{r['fts_p50_ms']:.1f} / {r['fts_p95_ms']:.1f} | {r['open_ms']:.0f} | {r['mb']:.1f} | "
            f"{'yes' if r['plaintext_in_file'] else 'no'} | {r['wrong_passphrase_refused']} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
