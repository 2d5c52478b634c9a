"""The memory store on real SQLite files: privacy, schema migrations, refusing bad databases, search and facts."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from homefire.errors import MemoryStoreError
from homefire.memory import Memory, Store
from homefire.memory.migrations import MIGRATIONS


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_is_private_wal_and_secure_delete(homefire_home: Path) -> None:
    store = Store()
    conv = store.new_conversation("private")
    store.add_message(conv, "user", "my daughter is Maya")
    db = homefire_home / "memory.db"
    assert db.exists() and mode(homefire_home) == 0o700
    for f in (db, db.with_name("memory.db-wal"), db.with_name("memory.db-shm")):
        assert f.exists(), f
        assert mode(f) == 0o600, (f, oct(mode(f)))
    conn = store.db.conn
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert conn.execute("pragma foreign_keys").fetchone()[0] == 1
    assert conn.execute("pragma secure_delete").fetchone()[0] == 1
    store.close()


def test_private_even_with_a_permissive_umask(homefire_home: Path) -> None:
    old = os.umask(0)
    try:
        store = Store()
        store.add_message(store.new_conversation(), "user", "hello")
    finally:
        os.umask(old)
    for suffix in ("", "-wal", "-shm"):
        assert mode(homefire_home / f"memory.db{suffix}") == 0o600
    store.close()


def test_migrations_run_once_and_are_recorded(homefire_home: Path) -> None:
    Store().close()
    store = Store()  # a second open applies nothing new
    names = [r[0] for r in store.db.execute("select name from _migrations order by rowid")]
    assert names == [fn.__name__ for fn in MIGRATIONS]
    assert store.schema_version() == MIGRATIONS[-1].__name__
    assert {"conversations", "messages", "facts", "embeddings", "messages_fts", "facts_fts"} <= set(
        store.db.table_names()
    )
    store.close()


def test_newer_database_is_refused_untouched(homefire_home: Path) -> None:
    store = Store()
    store.add_message(store.new_conversation("kept"), "user", "keep me")
    store.db.execute("insert into _migrations (name, applied) values ('m999_from_the_future', 'x')")
    store.db.conn.commit()
    store.close()
    db = homefire_home / "memory.db"
    with pytest.raises(MemoryStoreError, match="newer homefire") as err:
        Store()
    assert "\n" not in str(err.value)
    conn = sqlite3.connect(db)
    assert conn.execute("select text from messages").fetchall() == [("keep me",)]


def test_damaged_database_is_refused_and_kept(homefire_home: Path) -> None:
    db = homefire_home / "memory.db"
    homefire_home.mkdir(parents=True, exist_ok=True)
    junk = b"this is not sqlite at all " * 200
    db.write_bytes(junk)
    with pytest.raises(MemoryStoreError, match="damaged") as err:
        Store()
    assert "\n" not in str(err.value) and "recover" in str(err.value)
    assert db.read_bytes() == junk  # never wiped, never "repaired"


def test_locked_database_waits_then_says_so(homefire_home: Path) -> None:
    Store().close()
    other = sqlite3.connect(homefire_home / "memory.db", isolation_level=None)
    other.execute("begin exclusive")
    try:
        with pytest.raises(MemoryStoreError, match="busy"):
            store = Store(timeout=0.2)
            store.add_message(store.new_conversation(), "user", "blocked")
    finally:
        other.execute("rollback")
        other.close()


def test_deleting_a_conversation_deletes_its_messages_and_vectors(homefire_home: Path) -> None:
    memory = Memory()
    store = memory.store
    conv = store.new_conversation("to delete")
    mid = store.add_message(conv, "user", "the secret word is xylophone")
    memory.index()
    assert store.vector_stats("message")[0] == 1
    store.delete_conversation(conv)
    assert store.message(mid) is None
    assert store.vector_stats("message")[0] == 0
    assert store.search_text("xylophone") == []
    with pytest.raises(MemoryStoreError, match="no conversation"):
        store.conversation(conv)
    memory.close()


def test_sql_looking_and_enormous_text(homefire_home: Path) -> None:
    store = Store()
    conv = store.new_conversation()
    evil = "'); DROP TABLE messages; -- \" OR 1=1 NEAR(* AND"
    store.add_message(conv, "user", evil)
    assert store.messages(conv)[0]["text"] == evil
    assert store.search_text(evil)  # user words, never FTS or SQL syntax
    assert store.search_text('" OR * NEAR') is not None
    with pytest.raises(MemoryStoreError, match="too long"):
        store.add_message(conv, "user", "x" * 1_000_001)
    store.close()


def test_full_disk_fails_visibly_and_keeps_earlier_data(homefire_home: Path) -> None:
    store = Store()
    conv = store.new_conversation("before")
    store.add_message(conv, "user", "written before the disk filled up")
    # SQLite's own page limit gives the same SQLITE_FULL a full disk does.
    pages = store.db.execute("pragma page_count").fetchone()[0]
    store.db.execute(f"pragma max_page_count = {pages}")
    with pytest.raises(MemoryStoreError, match="disk is full") as err:
        store.add_message(conv, "assistant", "lorem ipsum " * 20_000)
    assert "\n" not in str(err.value)
    store.close()
    again = Store()
    assert [m["text"] for m in again.messages(conv)] == ["written before the disk filled up"]
    again.close()


def test_facts_update_a_correction_but_keep_another_thing(homefire_home: Path) -> None:
    memory = Memory()
    assert memory.remember("User's daughter is Maya.")[1] == "added"
    assert memory.remember("User's daughter is 7 years old.")[1] == "added"  # another thing about her
    assert memory.remember("user's daughter is maya")[1] == "known"  # exact, whatever the case
    assert memory.remember("User's server is at home.lan.")[1] == "added"
    fact, status = memory.remember("User's server is at nas.lan.")  # a correction: same slot
    assert status == "updated"
    assert memory.remember("User is allergic to peanuts.")[1] == "added"
    assert memory.remember("User is allergic to peanut.")[1] == "updated"  # near-duplicate by embedding
    texts = [f["text"] for f in memory.store.facts()]
    assert texts == [
        "User's daughter is Maya.",
        "User's daughter is 7 years old.",
        "User's server is at nas.lan.",
        "User is allergic to peanut.",
    ]
    # The vector of an updated fact is its new text's: it is recalled by the new words.
    assert [f.text for f in memory.recall("What is the hostname of nas.lan?")][:1] == ["User's server is at nas.lan."]
    assert memory.recall("What is the capital of France?") == []
    memory.close()


def test_recall_compares_like_with_like_and_ignores_hub_facts(homefire_home: Path) -> None:
    from homefire.memory.facts import as_user

    assert (
        as_user("What's my sister's name? I'm curious, tell me")
        == "What's User's sister's name? User is curious, tell User"
    )
    memory = Memory()
    for text in (
        "User's sister is called Ines.",
        "User's favourite food is ramen.",
        "User keeps bees.",
        "User's router is at 192.168.0.1.",
    ):
        memory.remember(text)
    # No shared word ("name" / "called"): the sentence vectors of "User's sister ..." carry it.
    assert [f.text for f in memory.recall("What's my sister's name?")][:1] == ["User's sister is called Ines."]
    # Questions about "my ..." or "I ..." that concern none of them recall nothing.
    for question in ("I have a question about loops.", "My code throws a KeyError.", "What's 17 times 23?"):
        assert memory.recall(question) == [], question
    memory.close()


def test_recall_reference_vectors_are_cached_beside_the_database(homefire_home: Path) -> None:
    import numpy as np

    memory = Memory()
    memory.remember("User's server is at home.lan.")
    first = [f.text for f in memory.recall("how do I reach my server?")]
    banks = homefire_home / "recall-banks.npz"
    assert banks.exists() and mode(banks) == 0o600
    with np.load(banks) as saved:
        assert {"probe"} < set(saved.files) and len(saved.files) == 3
    memory.close()
    banks.write_bytes(b"not an npz file")  # a damaged cache is embedded again, never an error
    again = Memory()
    assert [f.text for f in again.recall("how do I reach my server?")] == first == ["User's server is at home.lan."]
    with np.load(banks) as saved:
        assert len(saved.files) == 3
    again.close()
