"""The memory database's schema, only ever changed here: ordered migrations, each applied once and recorded.

The pattern is simonw/llm's: `m001_...`, `m002_...` functions in order; `_migrations` says which ran.
A database that records a migration this homefire does not know was written by a newer
version: it is refused, never "repaired", so an older homefire cannot damage it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlite_utils import Database

from ..errors import MemoryStoreError

Migration = Callable[[Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def applied(db: Database) -> list[str]:
    if "_migrations" not in db.table_names():
        return []
    return [row[0] for row in db.execute("select name from _migrations order by rowid")]


def migrate(db: Database) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; returns their names."""
    done = applied(db)
    known = [fn.__name__ for fn in MIGRATIONS]
    newer = [name for name in done if name not in known]
    if newer:
        raise MemoryStoreError(
            f"the memory database was written by a newer homefire (schema {newer[-1]}): upgrade homefire to open it"
        )
    ran = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        # sqlite-utils' enable_fts commits on its own (executescript), so a migration cannot be one
        # transaction: each is written to be safe to run again if a crash cut it short.
        with db.conn:
            db.execute("create table if not exists _migrations (name text primary key, applied text)")
            fn(db)
            db.execute(
                "insert into _migrations (name, applied) values (?, ?)",
                [fn.__name__, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())],
            )
        ran.append(fn.__name__)
    return ran


@migration
def m001_initial(db: Database) -> None:
    # Plain DDL rather than sqlite-utils' create(): its foreign keys cannot say ON DELETE CASCADE,
    # and deleting a conversation must really delete its messages and their vectors.
    db.execute(
        """create table if not exists conversations (
            id integer primary key,
            title text not null default '',
            model text not null default '',
            cartridges text not null default '[]',
            created text not null,
            updated text not null
        )"""
    )
    db.execute(
        """create table if not exists messages (
            id integer primary key,
            conversation_id integer not null references conversations(id) on delete cascade,
            role text not null,
            text text not null default '',
            tokens integer,
            verdict text,
            stats text,
            complete integer not null default 0,
            created text not null,
            updated text not null
        )"""
    )
    db.execute("create index if not exists messages_conversation on messages (conversation_id, id)")
    db.execute(
        """create table if not exists facts (
            id integer primary key,
            text text not null,
            source_message_id integer references messages(id) on delete set null,
            created text not null,
            last_used text,
            pinned integer not null default 0
        )"""
    )
    # One row per encoder chunk: a long message has several, and search takes the best one.
    db.execute(
        """create table if not exists embeddings (
            id integer primary key,
            message_id integer references messages(id) on delete cascade,
            fact_id integer references facts(id) on delete cascade,
            vector blob not null,
            check ((message_id is null) != (fact_id is null))
        )"""
    )
    db.execute("create index if not exists embeddings_message on embeddings (message_id)")
    db.execute("create index if not exists embeddings_fact on embeddings (fact_id)")
    # Triggers keep the full-text index in step with every insert, update and delete.
    db.table("messages").enable_fts(["text"], create_triggers=True, tokenize="porter", replace=True)
    db.table("facts").enable_fts(["text"], create_triggers=True, tokenize="porter", replace=True)


@migration
def m002_fact_guard_flag(db: Database) -> None:
    # A fact the guard flags (e.g. an instruction planted as a "fact") is kept, shown, and never recalled.
    if "guard_flag" not in db["facts"].columns_dict:
        db.execute("alter table facts add column guard_flag text")


@migration
def m003_repair_cut_facts(db: Database) -> None:
    # Facts stored cut short by the first sentence splitter ("User's doctor is Dr." from "My doctor is Dr. Patel
    # at the Riverside clinic"), or with a name lower-cased, are rebuilt from their source message. Pinned
    # facts, facts with no source message, and facts whose text is not exactly what the old rules made (the
    # user edited it, or a correction replaced it) are left as they are. A repaired fact loses its vectors:
    # they are made again from the new text on next use. Safe to run again: a whole fact is not repaired.
    import datetime as dt

    from .facts import normalized, repaired

    rows = db.execute(
        "select f.id, f.text, m.text, m.created from facts f join messages m on m.id = f.source_message_id "
        "where f.pinned = 0 and f.guard_flag is null"
    ).fetchall()
    known = {normalized(r[0]): r[1] for r in db.execute("select text, id from facts")}
    for fact_id, text, source, created in rows:
        said = dt.datetime.fromisoformat(created.replace("Z", "+00:00")).date() if created else None
        whole = repaired(text, source, said)
        if whole is None:
            continue
        if known.get(normalized(whole), fact_id) != fact_id:
            db.execute("delete from facts where id = ?", [fact_id])  # the whole fact is already kept
            continue
        db.execute("update facts set text = ? where id = ?", [whole, fact_id])
        db.execute("delete from embeddings where fact_id = ?", [fact_id])
        known[normalized(whole)] = fact_id
