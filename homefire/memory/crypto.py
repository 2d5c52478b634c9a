"""Encryption at rest for memory.db: SQLCipher 4 (the `sqlcipher3` wheel), off unless a passphrase is given.

An encrypted memory.db is an ordinary SQLCipher 4 file (AES-256, HMAC-SHA512 per page, PBKDF2 key
derivation), so the `sqlcipher` shell opens it too. Encrypting, decrypting and changing the
passphrase never touch the file in place: the whole database is exported into a new file beside it,
the copy is checked (integrity, row counts, the full-text index), and only then is it renamed over
the old one. Measured against the other candidates in bench/encryption.py.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import MemoryLocked, MemoryStoreError, WrongPassphrase

PASSPHRASE_ENV = "HOMEFIRE_PASSPHRASE"
INSTALL_HINT = "pip install 'homefire[encrypt]'"
_SQLITE_HEADER = b"SQLite format 3\x00"


def passphrase_from_env() -> str | None:
    """$HOMEFIRE_PASSPHRASE, or None when it is unset or empty."""
    return os.environ.get(PASSPHRASE_ENV) or None


def driver() -> ModuleType:
    """The SQLCipher DB-API module (a drop-in for sqlite3), or a one-line error saying how to install it."""
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        raise MemoryStoreError(f"encrypting the memory database needs the sqlcipher3 package: {INSTALL_HINT}") from None
    return dbapi2


def looks_encrypted(path: Path) -> bool:
    """Does this file look like an encrypted database rather than a plain or a damaged one?

    A SQLCipher file has no readable header: its first page is indistinguishable from random bytes.
    A damaged file (zeros, text, a truncated copy) is not random, and is called damaged, not locked."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if len(head) < 1024 or head.startswith(_SQLITE_HEADER):
        return False
    return len(set(head)) >= 200  # random bytes: ~255 distinct values in a page; text or zeros: far fewer


def _is_plain_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == _SQLITE_HEADER
    except OSError:
        return False


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_passphrase(passphrase: str) -> None:
    if not passphrase or not passphrase.strip():
        raise MemoryStoreError("the passphrase is empty: choose one with at least one character that is not a space")
    if "\x00" in passphrase:
        raise MemoryStoreError("the passphrase cannot contain a NUL character")


def connect(path: Path, passphrase: str | None, timeout: float, *, create: bool = False, readonly: bool = False) -> Any:
    """A DB-API connection to `path`: plain sqlite3 without a passphrase, SQLCipher with one.

    Raises MemoryLocked when the file is encrypted and no passphrase was given, WrongPassphrase when the
    passphrase does not open it. Nothing is written before the passphrase is known to be right."""
    encrypted = looks_encrypted(path)
    if passphrase is None:
        if encrypted:
            raise MemoryLocked(
                f"the memory database is encrypted: set {PASSPHRASE_ENV} or enter its passphrase ({path})"
            )
        if readonly:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
        return sqlite3.connect(str(path), timeout=timeout, check_same_thread=False)
    _check_passphrase(passphrase)
    empty = not path.exists() or path.stat().st_size == 0
    if not encrypted and not empty:
        if not _is_plain_sqlite(path):
            raise MemoryStoreError(
                f"the memory database is damaged (it is neither a SQLite nor an encrypted file) and was left "
                f"untouched: `homefire memory recover` copies what is readable into a new file (or move {path} "
                f"aside to start afresh)"
            )
        raise MemoryStoreError(
            f"a passphrase was given but the memory database is not encrypted: `homefire memory encrypt` encrypts "
            f"it (or unset {PASSPHRASE_ENV}) ({path})"
        )
    if empty and not create:
        raise MemoryStoreError(f"there is no memory database at {path} to unlock")
    lib = driver()
    if readonly:
        conn = lib.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    else:
        conn = lib.connect(str(path), timeout=timeout, check_same_thread=False)
    try:
        conn.execute("pragma cipher_log_level = NONE")  # SQLCipher would print a wrong key's HMAC failure
        conn.execute(f"pragma key = {_quote(passphrase)}")
        conn.execute("select count(*) from sqlite_master").fetchone()  # the first read decrypts page 1
    except lib.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc):
            raise WrongPassphrase(
                f"wrong passphrase for the memory database (nothing was changed): try again ({path})"
            ) from None
        raise
    return conn


def errors_of(conn: Any) -> tuple[type[Exception], type[Exception]]:
    """(OperationalError, DatabaseError) of the module that made `conn`: sqlite3's or SQLCipher's."""
    if isinstance(conn, sqlite3.Connection):
        return sqlite3.OperationalError, sqlite3.DatabaseError
    lib = driver()
    return lib.OperationalError, lib.DatabaseError


def rewrite(path: Path, old: str | None, new: str | None, timeout: float = 3.0) -> dict[str, int]:
    """Write the database at `path` again under passphrase `new` (None: unencrypted), verify, then replace.

    `old` opens it as it is. The new file is made 0600 beside it, filled with sqlcipher_export, checked
    (integrity_check, same row count in every table, the full-text index answers), and renamed over
    `path` in one step; the old file is then overwritten with zeros before it is unlinked. On any
    failure the original keeps its content and passphrase (its WAL folded into it) and the half-written
    copy is removed; a wrong `old` passphrase is found before anything is written."""
    if old == new:
        raise MemoryStoreError("the new passphrase is the same as the old one: nothing to do")
    lib = driver()
    if new is not None:
        _check_passphrase(new)
    if not path.exists():
        raise MemoryStoreError(f"there is no memory database at {path}")
    src = _open_with(lib, path, old, timeout)
    tmp = path.with_name(f".{path.name}.rewrite-{os.getpid()}")
    old_copy = path.with_name(f".{path.name}.old-{os.getpid()}")
    for leftover in (tmp, old_copy):
        _unlink_all(leftover)
    try:
        try:
            # Every page in the main file and nothing in a WAL: leaving WAL mode needs the only connection,
            # so another homefire still using the database makes this fail here, before anything is written.
            src.execute("pragma wal_checkpoint(truncate)")
            mode = src.execute("pragma journal_mode = delete").fetchone()[0]
        except lib.OperationalError:
            raise MemoryStoreError(
                "the memory database is in use (another homefire is running): close it and try again"
            ) from None
        if str(mode).lower() != "delete":
            raise MemoryStoreError(
                "the memory database is in use (another homefire is running): close it and try again"
            )
        tables = [
            r[0]
            for r in src.execute(
                "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
            ).fetchall()
        ]
        counts = {t: int(src.execute(f'select count(*) from "{t}"').fetchone()[0]) for t in tables}
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        src.execute(f"attach database ? as rewritten key {_quote(new or '')}", [str(tmp)])
        src.execute("select sqlcipher_export('rewritten')")
        version = src.execute("pragma main.user_version").fetchone()[0]
        src.execute(f"pragma rewritten.user_version = {int(version)}")
        src.execute("detach database rewritten")
        _verify(lib, tmp, new, counts, timeout)
        os.chmod(tmp, 0o600)
        _fsync(tmp)
        # Keep a second name for the old file, so that after the swap it can be overwritten, not just unlinked.
        try:
            os.link(path, old_copy)
        except OSError:
            pass  # a filesystem without hard links: the old file is unlinked, not overwritten
        os.replace(tmp, path)
    except BaseException as exc:
        src.close()
        _unlink_all(tmp)
        old_copy.unlink(missing_ok=True)  # before the swap a second name of the original; after it, a leftover
        if isinstance(exc, MemoryStoreError) or not isinstance(exc, lib.Error | OSError):
            raise
        reason = getattr(exc, "strerror", None) or str(exc)
        if "full" in reason.lower() or getattr(exc, "errno", None) == 28:
            reason = "the disk is full"
        raise MemoryStoreError(f"rewriting the memory database failed ({reason}); the original is unchanged") from None
    src.close()
    try:
        _fsync_dir(path.parent)  # the rename itself on disk
    except OSError:
        pass
    if old_copy.exists():
        _shred(old_copy)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists() and side.stat().st_size == 0:
            side.unlink()
    return counts


def _open_with(lib: ModuleType, path: Path, passphrase: str | None, timeout: float) -> Any:
    if passphrase is None:
        if looks_encrypted(path):
            raise MemoryLocked(f"the memory database is encrypted: give its current passphrase ({path})")
        conn = lib.connect(str(path), timeout=timeout)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
        except lib.DatabaseError as exc:
            conn.close()
            raise MemoryStoreError(f"the memory database is damaged ({exc}) and was left untouched") from None
        return conn
    conn = connect(path, passphrase, timeout)
    return conn


def _verify(lib: ModuleType, tmp: Path, passphrase: str | None, counts: dict[str, int], timeout: float) -> None:
    conn = lib.connect(str(tmp), timeout=timeout)
    try:
        conn.execute("pragma cipher_log_level = NONE")
        if passphrase is not None:
            conn.execute(f"pragma key = {_quote(passphrase)}")
        ok = conn.execute("pragma integrity_check").fetchone()[0]
        if ok != "ok":
            raise MemoryStoreError(f"the rewritten database did not check out ({ok}); the original is unchanged")
        for table, n in counts.items():
            got = int(conn.execute(f'select count(*) from "{table}"').fetchone()[0])
            if got != n:
                raise MemoryStoreError(
                    f"the rewritten database lost rows of {table} ({got} of {n}); the original is unchanged"
                )
        for fts in ("messages_fts", "facts_fts"):
            if fts in counts:
                conn.execute(f"insert into {fts} ({fts}) values ('integrity-check')")
        conn.commit()
    except lib.DatabaseError as exc:
        raise MemoryStoreError(f"the rewritten database did not check out ({exc}); the original is unchanged") from None
    finally:
        conn.close()
    raw = tmp.read_bytes()[:16]
    if (passphrase is None) != raw.startswith(_SQLITE_HEADER):
        raise MemoryStoreError("the rewritten database is not in the expected form; the original is unchanged")


def _unlink_all(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.unlink()


def _shred(path: Path) -> None:
    """Overwrite a file with zeros, then unlink it: the old plaintext does not stay in free disk blocks
    (best effort: a copy-on-write filesystem or an SSD may still keep old blocks)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            chunk = b"\x00" * (1 << 20)
            left = size
            while left > 0:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
