"""The memory database: one SQLite file, `<data dir>/memory.db`, with conversations, messages, facts and vectors.

Only this module speaks SQL to it (and migrations.py, for the schema). Every SQLite failure
becomes a one-line MemoryStoreError: a busy, damaged or newer database is refused and left
exactly as it is, never wiped or "repaired".
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from .. import config
from ..errors import MemoryStoreError
from . import crypto
from .migrations import migrate

DB_NAME = "memory.db"
BUSY_TIMEOUT_S = 3.0  # another homefire writing: wait this long, then say so
MAX_TEXT = 1_000_000  # characters; a larger message is refused rather than bloating every search


@contextmanager
def _migration_lock(db: Path) -> Iterator[None]:
    """One process at a time checks and applies migrations: two homefires opening a new database at once
    would otherwise both create the schema (and the second would think the file damaged)."""
    lock = db.with_name(db.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise MemoryStoreError(_unwritable(db.parent, exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if the process dies
        yield
    finally:
        os.close(fd)


def _unwritable(folder: Path, exc: OSError) -> str:
    return (
        f"cannot write in {folder} ({exc.strerror}): the memory database needs a writable data dir (or use --incognito)"
    )


def _row_id(n: int) -> bool:
    """Could `n` be a row's id? SQLite's are 64-bit: a larger number typed on the command line is no row
    (and would not even bind as a parameter)."""
    return 0 < n < 2**63


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_path() -> Path:
    return config.data_dir() / DB_NAME


def _error_classes() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(operational, database) error classes of sqlite3 and, once it is in use, of SQLCipher's module."""
    operational: list[type[Exception]] = [sqlite3.OperationalError]
    database: list[type[Exception]] = [sqlite3.DatabaseError]
    cipher = sys.modules.get("sqlcipher3.dbapi2")
    if cipher is not None:
        operational.append(cipher.OperationalError)
        database.append(cipher.DatabaseError)
    return tuple(operational), tuple(database)


class Store:
    """The memory database. Safe to share between threads (one connection behind a lock).

    With a passphrase (given, or $HOMEFIRE_PASSPHRASE) the file is a SQLCipher database: a new one is
    created encrypted, an encrypted one is opened with it. An encrypted file opened without one raises
    MemoryLocked; a wrong passphrase raises WrongPassphrase. Neither changes a byte of the file."""

    def __init__(
        self, path: Path | None = None, timeout: float = BUSY_TIMEOUT_S, passphrase: str | None = None
    ) -> None:
        self.path = Path(path) if path else default_path()
        self._lock = threading.RLock()
        if passphrase is None:
            passphrase = crypto.passphrase_from_env()
        self.encrypted = passphrase is not None
        with self._errors():
            existed = self.path.exists()
            # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
            # database file's mode, so they are private from their first byte too.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
            try:
                conn = crypto.connect(self.path, passphrase, timeout, create=True)
            except BaseException:
                if not existed and self.path.stat().st_size == 0:
                    self.path.unlink()  # the empty file made above: leave no trace of a failed open
                raise
            try:
                conn.execute("pragma journal_mode=wal")
                conn.execute("pragma foreign_keys=on")
                # Deleted text is overwritten with zeros, not left readable in free pages.
                conn.execute("pragma secure_delete=on")
                # In WAL mode NORMAL survives a killed process; only a power cut may lose the last commit.
                conn.execute("pragma synchronous=normal")
                self.db = Database(conn)
                with _migration_lock(self.path):
                    migrate(self.db)
            except BaseException:
                conn.close()
                raise
            self._private_sidecars()

    def _private_sidecars(self) -> None:
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists() and stat.S_IMODE(side.stat().st_mode) != 0o600:
                os.chmod(side, 0o600)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's exceptions into one-line messages that say what to do."""
        operational, database = _error_classes()
        try:
            with self._lock:
                yield
        except MemoryStoreError:
            raise
        except operational as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise MemoryStoreError(
                    "the memory database is busy (another homefire is writing to it): try again in a moment"
                ) from None
            if "full" in text:
                raise MemoryStoreError(
                    "the disk is full: this was not saved (earlier conversations are intact); free some space"
                ) from None
            if "readonly" in text or "unable to open" in text:
                raise MemoryStoreError(
                    f"the memory database cannot be written: check the permissions of {self.path}"
                ) from None
            raise MemoryStoreError(f"the memory database failed: {exc} ({self.path})") from None
        except database as exc:  # "file is not a database", "database disk image is malformed"
            raise MemoryStoreError(
                f"the memory database is damaged ({exc}) and was left untouched: `homefire memory recover` copies "
                f"what is readable into a new file (or move {self.path} aside to start afresh)"
            ) from None
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise MemoryStoreError(_unwritable(self.path.parent, exc)) from None
            raise MemoryStoreError(f"the memory database cannot be opened: {exc.strerror} ({self.path})") from None

    def _scrub(self) -> None:
        """After a delete: secure_delete zeroed the pages in the file; checkpointing empties the WAL, which
        would otherwise still hold the old copies of those pages."""
        with self._errors():
            self.db.execute("pragma wal_checkpoint(truncate)")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors(), self.db.conn:
            yield self.db.conn

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def _fetch(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._errors():
            cur = self.db.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [_decode(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]

    def schema_version(self) -> str:
        with self._errors():
            row = self.db.execute("select name from _migrations order by rowid desc limit 1").fetchone()
        return str(row[0]) if row else ""

    # conversations ---------------------------------------------------------------------------

    def new_conversation(self, title: str = "", model: str = "", cartridges: list[str] | None = None) -> int:
        stamp = now()
        with self.transaction() as conn:
            cur = conn.execute(
                "insert into conversations (title, model, cartridges, created, updated) values (?, ?, ?, ?, ?)",
                [title[:200], model, json.dumps(cartridges or []), stamp, stamp],
            )
        return int(cur.lastrowid or 0)

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        rows = []
        if _row_id(conversation_id):
            rows = self._fetch(
                "select c.*, (select count(*) from messages m where m.conversation_id = c.id) as messages "
                "from conversations c where c.id = ?",
                [conversation_id],
            )
        if not rows:
            raise MemoryStoreError(f"there is no conversation {conversation_id}: see `homefire history list`")
        return rows[0]

    def conversations(self, limit: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "select c.*, (select count(*) from messages m where m.conversation_id = c.id) as messages "
            "from conversations c order by c.updated desc, c.id desc"
        )
        return self._fetch(sql + (f" limit {int(limit)}" if limit else ""))

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self.conversation(conversation_id)
        with self.transaction() as conn:
            conn.execute(
                "update conversations set title = ?, updated = ? where id = ?", [title[:200], now(), conversation_id]
            )

    def delete_conversation(self, conversation_id: int) -> None:
        self.conversation(conversation_id)
        with self.transaction() as conn:
            # Facts learnt from it stay (the user may still want them); their source link is cleared by the FK.
            conn.execute("delete from conversations where id = ?", [conversation_id])
        self._scrub()

    # messages --------------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        role: str,
        text: str,
        *,
        verdict: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
        tokens: int | None = None,
        complete: bool = True,
    ) -> int:
        if len(text) > MAX_TEXT:
            raise MemoryStoreError(f"the message is too long to keep ({len(text):,} characters; at most {MAX_TEXT:,})")
        stamp = now()
        with self.transaction() as conn:
            cur = conn.execute(
                "insert into messages (conversation_id, role, text, tokens, verdict, stats, complete, created, "
                "updated) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    conversation_id,
                    role,
                    text,
                    tokens,
                    _json(verdict),
                    _json(stats),
                    int(complete),
                    stamp,
                    stamp,
                ],
            )
            conn.execute("update conversations set updated = ? where id = ?", [stamp, conversation_id])
        return int(cur.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        text: str,
        *,
        complete: bool | None = None,
        stats: dict[str, Any] | None = None,
        tokens: int | None = None,
    ) -> None:
        """One small transaction: called every ~250 ms while an answer streams, and once to finalise it."""
        sets: list[str] = ["text = ?", "updated = ?"]
        values: list[Any] = [text[:MAX_TEXT], now()]
        if complete is not None:
            sets.append("complete = ?")
            values.append(int(complete))
        if stats is not None:
            sets.append("stats = ?")
            values.append(_json(stats))
        if tokens is not None:
            sets.append("tokens = ?")
            values.append(tokens)
        with self.transaction() as conn:
            conn.execute(f"update messages set {', '.join(sets)} where id = ?", [*values, message_id])

    def delete_message(self, message_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("delete from messages where id = ?", [message_id])

    def messages(self, conversation_id: int) -> list[dict[str, Any]]:
        return self._fetch("select * from messages where conversation_id = ? order by id", [conversation_id])

    def message(self, message_id: int) -> dict[str, Any] | None:
        rows = self._fetch("select * from messages where id = ?", [message_id])
        return rows[0] if rows else None

    def search_text(self, query: str, limit: int = 50, mark: tuple[str, str] = ("[", "]")) -> list[tuple[int, str]]:
        """Full-text matches (FTS5, bm25 order): (message id, highlighted snippet).

        Messages with all the words come first; only when there are too few of them are messages with any
        of the words added (ranking every message that has one common word is what costs at 100k messages).
        """
        quoted = self.db.quote_fts(query)  # user words, never FTS syntax: "SQL-looking" text is just text
        if not quoted.strip('" '):
            return []
        sql = (
            "select rowid, snippet(messages_fts, 0, ?, ?, '…', 12) from messages_fts "
            "where messages_fts match ? order by rank limit ?"
        )
        with self._errors():
            rows = self.db.execute(sql, [mark[0], mark[1], quoted, limit]).fetchall()
            if len(rows) < limit and '" "' in quoted:
                seen = {r[0] for r in rows}
                more = self.db.execute(sql, [mark[0], mark[1], quoted.replace('" "', '" OR "'), limit]).fetchall()
                rows += [r for r in more if r[0] not in seen][: limit - len(rows)]
        return [(int(r[0]), str(r[1])) for r in rows]

    def hits(self, message_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Messages with their conversation's title, in one query: id -> row."""
        if not message_ids:
            return {}
        marks = ",".join("?" * len(message_ids))
        rows = self._fetch(
            "select m.id, m.conversation_id, m.role, m.text, m.created, c.title from messages m "
            f"join conversations c on c.id = m.conversation_id where m.id in ({marks})",
            list(message_ids),
        )
        return {r["id"]: r for r in rows}

    def search_facts(self, words: list[str], limit: int = 20) -> list[int]:
        """Facts containing any of these words (FTS5, porter stems), best first."""
        if not words:
            return []
        query = " OR ".join(self.db.quote_fts(w) for w in words)
        with self._errors():
            rows = self.db.execute(
                "select rowid from facts_fts where facts_fts match ? order by rank limit ?", [query, limit]
            ).fetchall()
        return [int(r[0]) for r in rows]

    # facts -----------------------------------------------------------------------------------

    def add_fact(
        self, text: str, source_message_id: int | None = None, pinned: bool = False, guard_flag: str | None = None
    ) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "insert into facts (text, source_message_id, created, pinned, guard_flag) values (?, ?, ?, ?, ?)",
                [text, source_message_id, now(), int(pinned), guard_flag],
            )
        return int(cur.lastrowid or 0)

    def fact(self, fact_id: int) -> dict[str, Any]:
        rows = self._fetch("select * from facts where id = ?", [fact_id]) if _row_id(fact_id) else []
        if not rows:
            raise MemoryStoreError(f"there is no fact {fact_id}: see `homefire memory list`")
        return rows[0]

    def facts(self) -> list[dict[str, Any]]:
        return self._fetch("select * from facts order by id")

    def update_fact(self, fact_id: int, text: str | None = None, pinned: bool | None = None) -> None:
        self.fact(fact_id)
        with self.transaction() as conn:
            if text is not None:
                conn.execute("update facts set text = ? where id = ?", [text, fact_id])
                conn.execute("delete from embeddings where fact_id = ?", [fact_id])  # stale: re-embedded on use
            if pinned is not None:
                conn.execute("update facts set pinned = ? where id = ?", [int(pinned), fact_id])

    def set_fact_flag(self, fact_id: int, guard_flag: str | None) -> None:
        """Mark a fact flagged by the guard (kept and listed, never recalled), or clear the mark."""
        self.fact(fact_id)
        with self.transaction() as conn:
            conn.execute("update facts set guard_flag = ? where id = ?", [guard_flag, fact_id])

    def touch_facts(self, fact_ids: list[int]) -> None:
        if not fact_ids:
            return
        with self.transaction() as conn:
            conn.executemany("update facts set last_used = ? where id = ?", [(now(), i) for i in fact_ids])

    def delete_fact(self, fact_id: int) -> None:
        self.fact(fact_id)
        with self.transaction() as conn:
            conn.execute("delete from facts where id = ?", [fact_id])
        self._scrub()

    # vectors ---------------------------------------------------------------------------------

    def set_vectors(self, vectors: np.ndarray, *, message_id: int | None = None, fact_id: int | None = None) -> None:
        """Replace the vectors of one message or fact (float32 BLOBs, one per encoder chunk)."""
        column, item = ("message_id", message_id) if message_id is not None else ("fact_id", fact_id)
        blobs = [(item, np.asarray(v, dtype=np.float32).tobytes()) for v in vectors]
        with self.transaction() as conn:
            conn.execute(f"delete from embeddings where {column} = ?", [item])
            conn.executemany(f"insert into embeddings ({column}, vector) values (?, ?)", blobs)

    def vectors(self, kind: str = "message", after: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
        """(item ids, matrix n x dim, last embedding row id) of messages' or facts' vectors with rowid > after."""
        column = "message_id" if kind == "message" else "fact_id"
        with self._errors():
            rows = self.db.execute(
                f"select id, {column}, vector from embeddings where {column} is not null and id > ? order by id",
                [after],
            ).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32), after
        ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return ids, matrix, int(rows[-1][0])

    def unembedded(self, kind: str = "message", limit: int = 500, newer_only: bool = False) -> list[tuple[int, str]]:
        """Complete messages (or facts) that have no vector yet: (id, text)."""
        if kind == "message" and newer_only:
            sql = (
                "select id, text from messages where complete = 1 and text != '' and id > "
                "(select coalesce(max(message_id), 0) from embeddings) order by id limit ?"
            )
        elif kind == "message":
            sql = (
                "select id, text from messages where complete = 1 and text != '' and not exists "
                "(select 1 from embeddings e where e.message_id = messages.id) order by id limit ?"
            )
        else:
            sql = (
                "select id, text from facts where not exists "
                "(select 1 from embeddings e where e.fact_id = facts.id) order by id limit ?"
            )
        with self._errors():
            return [(int(r[0]), str(r[1])) for r in self.db.execute(sql, [limit]).fetchall()]

    def version(self) -> tuple[int, int]:
        """Changes by other connections (data_version) and by this one (total_changes): equal means unchanged."""
        with self._errors():
            return int(self.db.execute("pragma data_version").fetchone()[0]), self.db.conn.total_changes

    def vector_stats(self, kind: str = "message") -> tuple[int, int]:
        """(how many, highest row id) of one kind's vectors: tells a cache whether it is still whole."""
        column = "message_id" if kind == "message" else "fact_id"
        with self._errors():
            row = self.db.execute(
                f"select count(*), coalesce(max(id), 0) from embeddings where {column} is not null"
            ).fetchone()
        return int(row[0]), int(row[1])

    # everything ------------------------------------------------------------------------------

    def wipe(self, conversations: bool = False) -> None:
        """Delete every fact (and with conversations=True every conversation), then VACUUM the file."""
        with self.transaction() as conn:
            conn.execute("delete from facts")
            if conversations:
                conn.execute("delete from conversations")
        with self._errors():
            # VACUUM rewrites the file without the free pages; the checkpoint empties the WAL too.
            self.db.execute("vacuum")
            self.db.execute("pragma wal_checkpoint(truncate)")


SALVAGE_TABLES = ("conversations", "messages", "facts")


def salvage(damaged: Path, dest: Path, passphrase: str | None = None) -> dict[str, int]:
    """Copy what is still readable of a damaged memory database into a new one at `dest`; `damaged` is
    only ever opened read-only. Rows are read one by one where a whole-table read fails, so one bad page
    costs only the rows on it. Vectors and the search index are rebuilt, not copied. An encrypted one is
    read with `passphrase` (None: $HOMEFIRE_PASSPHRASE), and the copy is encrypted with it too."""
    if dest.exists():
        raise MemoryStoreError(f"{dest} already exists: choose another path with --to")
    key = passphrase if passphrase is not None else crypto.passphrase_from_env()
    # A damaged plain file is read as one (with a passphrase, the copy is encrypted all the same).
    src_key = key if crypto.looks_encrypted(damaged) else None
    _, database_errors = _error_classes()
    try:
        src = crypto.connect(damaged, src_key, BUSY_TIMEOUT_S, readonly=True)
        _, database_errors = _error_classes()
        src.execute("select count(*) from sqlite_master").fetchone()
    except database_errors:
        raise MemoryStoreError(
            f"nothing in {damaged} can be read (its header is damaged): there is nothing to recover"
        ) from None
    counts = dict.fromkeys(SALVAGE_TABLES, 0)
    counts["unreadable"] = 0
    target = Store(dest, passphrase=key)
    keep = {
        "conversations": ("id", "title", "model", "cartridges", "created", "updated"),
        "messages": (
            "id",
            "conversation_id",
            "role",
            "text",
            "tokens",
            "verdict",
            "stats",
            "complete",
            "created",
            "updated",
        ),
        "facts": ("id", "text", "source_message_id", "created", "last_used", "pinned"),
    }
    try:
        for table in SALVAGE_TABLES:
            cols = ", ".join(keep[table])
            try:
                rows = src.execute(f"select {cols} from {table}").fetchall()
            except database_errors:
                rows = []
                try:
                    top: int | None = src.execute(f"select max(rowid) from {table}").fetchone()[0] or 0
                except database_errors:
                    top = None  # unknown: read on until a long run of missing rows
                rowid = misses = 0
                while (rowid < top) if top is not None else (misses < 10_000):
                    rowid += 1
                    try:
                        row = src.execute(f"select {cols} from {table} where rowid = ?", [rowid]).fetchone()
                    except database_errors:
                        counts["unreadable"] += 1
                        misses += 1
                        continue
                    if row is None:
                        misses += 1
                    else:
                        rows.append(row)
                        misses = 0
            with target.transaction() as conn:
                if table == "messages":
                    known = {r[0] for r in conn.execute("select id from conversations")}
                    counts["unreadable"] += sum(1 for r in rows if r[1] not in known)
                    rows = [r for r in rows if r[1] in known]
                if table == "facts":
                    known = {r[0] for r in conn.execute("select id from messages")}
                    rows = [(*r[:2], r[2] if r[2] in known else None, *r[3:]) for r in rows]
                marks = ", ".join("?" * len(keep[table]))
                conn.executemany(f"insert into {table} ({cols}) values ({marks})", rows)
            counts[table] = len(rows)
    finally:
        src.close()
        target.close()
    return counts


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _decode(out: dict[str, Any]) -> dict[str, Any]:
    for key in ("verdict", "stats", "cartridges"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    for key in ("complete", "pinned"):
        if key in out:
            out[key] = bool(out[key])
    return out
