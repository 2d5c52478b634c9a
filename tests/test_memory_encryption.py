"""Encryption at rest (SQLCipher via sqlcipher3) on real files: no plaintext on disk, a wrong or missing
passphrase is a one-line error that changes nothing, and encrypt / decrypt / rekey rewrite the file safely."""

from __future__ import annotations

import getpass
import hashlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input, Label

from homefire.app.passphrase import PassphraseScreen
from homefire.cli import main
from homefire.errors import MemoryLocked, MemoryStoreError, WrongPassphrase
from homefire.memory import Memory, Store, crypto

SECRET = "zebracrossing"  # a word that must never be readable in the raw bytes


def raw(db: Path) -> bytes:
    """The database and its WAL and shared-memory files, as bytes on disk."""
    return b"".join(
        p.read_bytes() for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()
    )


def digest(db: Path) -> str:
    return hashlib.sha256(raw(db)).hexdigest()


def fill(memory: Memory, close: bool = True) -> None:
    cid = memory.store.new_conversation(f"{SECRET} planning")
    memory.store.add_message(cid, "user", f"my {SECRET} question about the garden")
    memory.store.add_message(cid, "assistant", "plant beans in spring")
    memory.remember(f"User's password hint is {SECRET}.")
    if close:
        memory.close()


def test_encrypted_database_has_no_plaintext_and_everything_works(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    memory = Memory.open(passphrase="correct horse")
    assert memory.encrypted
    fill(memory, close=False)
    wal = db.with_name("memory.db-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the newest pages are in the WAL: it is checked too
    blob = raw(db)
    assert SECRET.encode() not in blob and b"garden" not in blob and b"SQLite format 3" not in blob
    for f in (db, wal, db.with_name("memory.db-shm")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # Full text (FTS5), vectors and facts all work on the encrypted file.
    assert [h.snippet for h in memory.search(SECRET, mode="text")] == [f"my [{SECRET}] question about the garden"]
    assert memory.search("when to sow vegetables", mode="vector")
    assert [f.text for f in memory.recall(f"what is my password hint, {SECRET}?")] == [
        f"User's password hint is {SECRET}."
    ]
    memory.close()
    again = Memory.open(passphrase="correct horse")
    assert [c["title"] for c in again.store.conversations()] == [f"{SECRET} planning"]
    again.close()


def test_missing_or_wrong_passphrase_is_one_line_and_changes_nothing(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory.open(passphrase="correct horse"))
    before = digest(db)
    with pytest.raises(MemoryLocked) as locked:
        Memory.open()
    assert not isinstance(locked.value, WrongPassphrase)
    assert "encrypted" in str(locked.value) and "HOMEFIRE_PASSPHRASE" in str(locked.value)
    for wrong in ("correct horse ", "Correct horse", "x"):
        with pytest.raises(WrongPassphrase) as bad:
            Memory.open(passphrase=wrong)
        assert "wrong passphrase" in str(bad.value) and "\n" not in str(bad.value)
    with pytest.raises(MemoryStoreError, match="empty"):
        Memory.open(passphrase="   ")
    assert digest(db) == before
    assert len(Memory.open(passphrase="correct horse").store.facts()) == 1


def test_cli_locked_database_says_how_to_unlock(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    homefire_home.mkdir(parents=True)
    fill(Memory.open(passphrase="s3cret"))
    assert main(["memory", "list"]) == 1  # no terminal to ask on, no $HOMEFIRE_PASSPHRASE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HOMEFIRE_PASSPHRASE" in err and "Traceback" not in err
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "nope")
    assert main(["history", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong passphrase" in err  # SQLCipher's own log lines are silenced
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "s3cret")
    assert main(["history", "search", SECRET, "--mode", "text"]) == 0
    assert SECRET in capsys.readouterr().out


def test_cli_asks_for_the_passphrase_on_a_terminal(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    homefire_home.mkdir(parents=True)
    fill(Memory.open(passphrase="s3cret"))
    answers = iter(["wrong", "s3cret"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert main(["memory", "list"]) == 0
    out = capsys.readouterr()
    assert "password hint" in out.out and "wrong passphrase" in out.err


def test_encrypt_rekey_decrypt_round_trip(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory())
    assert SECRET.encode() in raw(db)  # off by default: a plain SQLite file
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "first one")
    assert main(["history", "list"]) == 1  # a passphrase for a plain file: say how to encrypt, don't guess
    assert "memory encrypt" in capsys.readouterr().err
    assert main(["memory", "encrypt"]) == 0
    assert "encrypted" in capsys.readouterr().out
    assert SECRET.encode() not in raw(db) and crypto.looks_encrypted(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    copies = (p.name for p in homefire_home.iterdir() if p.name.startswith((".memory", "memory")))
    assert sorted(n for n in copies if not n.endswith(".lock")) == ["memory.db"]  # no temporary or old copy left behind
    assert main(["memory", "encrypt"]) == 1 and "already encrypted" in capsys.readouterr().err
    # The copy keeps its triggers: new messages are still indexed for full-text search.
    memory = Memory.open()
    cid = memory.store.new_conversation("after")
    memory.store.add_message(cid, "user", "pelicans and quinoa")
    assert memory.store.search_text("pelicans") and memory.store.search_text(SECRET)
    memory.close()
    monkeypatch.setenv("HOMEFIRE_NEW_PASSPHRASE", "second one")
    assert main(["memory", "rekey"]) == 0
    capsys.readouterr()
    with pytest.raises(WrongPassphrase):
        Memory.open(passphrase="first one")
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "second one")
    assert len(Memory.open().store.facts()) == 1
    assert main(["memory", "decrypt"]) == 0
    assert "unset HOMEFIRE_PASSPHRASE" in capsys.readouterr().out
    monkeypatch.delenv("HOMEFIRE_PASSPHRASE")
    assert db.read_bytes()[:16] == b"SQLite format 3\x00"
    plain = Memory()
    assert len(plain.store.conversations()) == 2 and plain.store.search_text("pelicans")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def another_homefire(home: Path, passphrase: str | None = None) -> subprocess.Popen[str]:
    """Another homefire, idle but with the database open (a separate process: SQLite's locks are per process)."""
    env = dict(os.environ, HOMEFIRE_HOME=str(home))
    env.pop("HOMEFIRE_PASSPHRASE", None)
    if passphrase:
        env["HOMEFIRE_PASSPHRASE"] = passphrase
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from homefire.memory import Memory; m = Memory.open(); "
            "m.store.conversations(); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert other.stdout is not None and other.stdout.readline().strip() == "ready"
    return other


def test_encrypt_decrypt_and_rekey_refuse_while_another_homefire_has_it_open(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory())
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "pw")
    monkeypatch.setenv("HOMEFIRE_NEW_PASSPHRASE", "new pw")
    for action, passphrase in (("encrypt", None), ("decrypt", "pw"), ("rekey", "pw")):
        if action == "decrypt":
            assert main(["memory", "encrypt"]) == 0  # now that the other one has gone
            capsys.readouterr()
        other = another_homefire(homefire_home, passphrase)
        try:
            before = db.read_bytes()
            assert main(["memory", action]) == 1, action
            err = capsys.readouterr().err
            assert (
                err == "homefire: the memory database is in use (another homefire is running): close it and try again\n"
            )
            assert db.read_bytes() == before and crypto.looks_encrypted(db) == (action != "encrypt")
            assert [p.name for p in homefire_home.iterdir() if p.name.startswith(".memory")] == []
        finally:
            other.communicate("", timeout=30)
    assert main(["memory", "rekey"]) == 0  # once it has gone
    assert len(Memory.open(passphrase="new pw").store.facts()) == 1


def test_a_mistyped_passphrase_or_the_same_one_changes_nothing(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory())
    before = digest(db)
    answers = iter(["one passphrase", "another passphrase"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert main(["memory", "encrypt"]) == 1
    assert capsys.readouterr().err == "homefire: the two passphrases differ: nothing was changed\n"
    assert digest(db) == before and not crypto.looks_encrypted(db)
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "same")
    assert main(["memory", "encrypt"]) == 0
    capsys.readouterr()
    encrypted = digest(db)
    monkeypatch.setenv("HOMEFIRE_NEW_PASSPHRASE", "same")
    assert main(["memory", "rekey"]) == 1
    assert capsys.readouterr().err == "homefire: the new passphrase is the same as the old one: nothing to do\n"
    assert digest(db) == encrypted


def test_the_old_file_is_overwritten_with_zeros(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory())
    Memory().close()  # the last connection folds the WAL into the file
    elsewhere = homefire_home.parent / "old-inode"
    os.link(db, elsewhere)  # a second name for the plaintext file: it shows what becomes of its blocks
    size = elsewhere.stat().st_size
    assert SECRET.encode() in elsewhere.read_bytes()
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "pw")
    assert main(["memory", "encrypt"]) == 0
    capsys.readouterr()
    assert db.stat().st_ino != elsewhere.stat().st_ino and crypto.looks_encrypted(db)
    old = elsewhere.read_bytes()
    assert len(old) == size and old == b"\0" * size


def content(db: Path, passphrase: str | None) -> list[object]:
    memory = Memory.open(db, passphrase=passphrase)
    store = memory.store
    out: list[object] = [store.conversations(), store.facts()]
    out += [store.messages(c["id"]) for c in store.conversations()]
    memory.close()
    return out


def test_rewrite_failure_leaves_the_original(homefire_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory.open(passphrase="pw"))
    before = content(db, "pw")

    checked = crypto._verify

    def loses_a_row(lib, tmp: Path, passphrase: str | None, counts: dict[str, int], timeout: float) -> None:  # type: ignore[no-untyped-def]
        # The copy really is short of a message when the real check runs (as a failed export would leave it).
        conn = lib.connect(str(tmp))
        conn.execute(f"pragma key = '{passphrase}'")
        conn.execute("delete from messages where id = (select max(id) from messages)")
        conn.commit()
        conn.close()
        checked(lib, tmp, passphrase, counts, timeout)

    with monkeypatch.context() as patch:
        patch.setattr(crypto, "_verify", loses_a_row)
        with pytest.raises(MemoryStoreError) as lost:
            crypto.rewrite(db, "pw", "new")
    assert str(lost.value) == "the rewritten database lost rows of messages (1 of 2); the original is unchanged"
    # Same content under the same passphrase (its WAL was folded into the file, so not the same bytes).
    assert content(db, "pw") == before
    assert [p.name for p in homefire_home.iterdir() if p.name.startswith(".memory")] == []

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", disk_full)
        with pytest.raises(MemoryStoreError) as full:
            crypto.rewrite(db, "pw", "new")
    assert str(full.value) == "rewriting the memory database failed (the disk is full); the original is unchanged"
    assert content(db, "pw") == before
    assert [p.name for p in homefire_home.iterdir() if p.name.startswith(".memory")] == []
    exact = digest(db)
    with pytest.raises(WrongPassphrase):
        crypto.rewrite(db, "not it", "new")
    assert digest(db) == exact  # a wrong passphrase is found before anything is written


def test_missing_library_says_how_to_install(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(Memory())
    monkeypatch.setitem(sys.modules, "sqlcipher3", None)  # as if it were not installed
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "pw")
    assert main(["memory", "encrypt"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'homefire[encrypt]'" in err and err.count("\n") == 1
    assert not crypto.looks_encrypted(homefire_home / "memory.db")


def test_damaged_file_is_called_damaged_not_locked(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    (homefire_home / "memory.db").write_bytes(b"\x00garbage" * 512)
    for passphrase in (None, "pw"):
        with pytest.raises(MemoryStoreError, match="damaged") as exc:
            Store(passphrase=passphrase)
        assert not isinstance(exc.value, MemoryLocked)


class _Host(App[None]):
    def __init__(self, db: Path) -> None:
        super().__init__()
        self.db = db
        self.result: object = "unset"

    def on_mount(self) -> None:
        self.push_screen(PassphraseScreen.for_memory("The memory database is encrypted.", self.db), self._done)

    def _done(self, result: object) -> None:
        self.result = result


async def _wait(pilot, condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


async def test_passphrase_screen_unlocks_and_retries(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    fill(Memory.open(db, passphrase="open sesame"))
    app = _Host(db)
    async with app.run_test() as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, PassphraseScreen))
        box = app.screen.query_one(Input)
        assert box.password
        box.value = "open says me"
        await pilot.press("enter")
        error = app.screen.query_one("#passphrase-error", Label)
        await _wait(pilot, lambda: "wrong passphrase" in str(error.render()))
        assert isinstance(app.screen, PassphraseScreen) and box.value == "" and not box.disabled
        box.value = "open sesame"
        await pilot.press("enter")
        await _wait(pilot, lambda: app.result != "unset")
    assert isinstance(app.result, Memory) and len(app.result.store.facts()) == 1
    app.result.close()


async def test_passphrase_screen_escape_goes_on_without_memory(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    db = homefire_home / "memory.db"
    Memory.open(db, passphrase="pw").close()
    app = _Host(db)
    async with app.run_test() as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, PassphraseScreen))
        await pilot.press("escape")
        await _wait(pilot, lambda: app.result != "unset")
    assert app.result is None


def test_recover_reads_a_damaged_encrypted_database_with_its_passphrase(
    homefire_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOMEFIRE_PASSPHRASE", "pw")
    store = Memory.open().store
    for i in range(40):
        cid = store.new_conversation(f"topic {i}")
        store.add_message(cid, "user", f"question {i} marker{i:03d} " + "lorem ipsum dolor " * 60)
    store.close()
    db = homefire_home / "memory.db"
    data = bytearray(db.read_bytes())
    page = len(data) // 4096 - 1  # the last page written: not the schema (the first pages)
    data[page * 4096 : (page + 1) * 4096] = b"\xde\xad\xbe\xef" * 1024  # one page fails its HMAC check
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    out_path = homefire_home / "rescued.db"
    assert main(["memory", "recover", "--to", str(out_path)]) == 0
    assert "recovered 40 conversations" in capsys.readouterr().out and db.read_bytes() == before
    assert crypto.looks_encrypted(out_path)  # the copy is encrypted with the same passphrase
    rescued = Memory.open(out_path)
    assert len(rescued.store.conversations()) == 40
    rescued.close()
