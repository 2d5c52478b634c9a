"""Long-term facts (issue 18): sentences kept whole, how people talk about themselves, dates kept true, recall of
questions in other words, and the repair of facts an older homefire stored cut short. Real SQLite, real encoder."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from homefire.memory import Memory, Store
from homefire.memory.facts import explicit, extract, sentences, statement
from homefire.memory.migrations import MIGRATIONS

DATA = Path(__file__).parent / "data"
DAY = dt.date(2026, 12, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My doctor is Dr. Patel at the Riverside clinic. Is he any good?", 2),  # title
        ("My cousin works at J.P. Morgan in London. Anyway.", 2),  # initials
        ("My husband, Dr. R. J. Whitfield, is a GP. He is busy.", 2),  # spaced initials
        ("I take 2.5 mg of it. Is that a lot?", 2),  # decimals
        ("Write to k.moss@lettings.co.uk today. Thanks!", 2),  # e-mail address
        ("My blog is https://example.org/blog.html and I post weekly. Have a look.", 2),  # URL
        ("I'm allergic to latex... so gloves are an issue. What now?", 2),  # ellipsis inside a sentence
        ('She said "I love Oslo." Then she left.', 2),  # quotes
        ("I rarely go to bed before 1 a.m. on weekdays. Is that bad?", 2),  # a.m.
        ("I live at No. 5 Elm St. in Springfield. Come visit!", 2),  # No. and St.
        ("one line\nanother line", 2),  # a chat message's lines, even without full stops
    ],
)
def test_sentences_are_split_where_they_end_and_nowhere_else(text: str, expected: int) -> None:
    got = sentences(text)
    assert len(got) == expected, got
    assert " ".join(got).replace("\n", " ") == " ".join(text.split())  # nothing lost, nothing added


@pytest.mark.parametrize(
    ("said", "fact"),
    [
        # The examples: cut short, lower-cased or not found by the first rules.
        ("My doctor is Dr. Patel at the Riverside clinic.", "User's doctor is Dr. Patel at the Riverside clinic."),
        ("I was born in St. Albans in 1984.", "User was born in St. Albans in 1984."),
        ("My cousin works at J.P. Morgan in London.", "User's cousin works at J.P. Morgan in London."),
        ("My sister Dana is a vet.", "User's sister Dana is a vet."),
        ("Our cat Pixel is ten years old.", "User's cat Pixel is ten years old."),
        ("I coach my son's football team on Saturdays.", "User coaches their son's football team on Saturdays."),
        ("I've got two kids, both in primary school.", "User has got two kids, both in primary school."),
        ("I'm a huge fan of jazz, especially Coltrane.", "User is a huge fan of jazz, especially Coltrane."),
        # First person plural, fronted times, openers, modal verbs, past that lasts.
        ("We keep bees in the orchard.", "User and family keep bees in the orchard."),
        ("Every Thursday I sing in a choir.", "User sings in a choir every Thursday."),
        ("Oh, and I can't eat mushrooms.", "User can't eat mushrooms."),
        ("I grew up near Lake Como.", "User grew up near Lake Como."),
        ("My partner and I run a bakery in Hull.", "User and their partner run a bakery in Hull."),
        ("I usually walk the dog before work.", "User usually walks the dog before work."),
    ],
)
def test_self_statements_are_kept_whole_in_the_third_person(said: str, fact: str) -> None:
    assert extract(f"Morning! {said} Anyway, what's the weather like?") == [fact]


@pytest.mark.parametrize(
    "text",
    [
        "Is it true that Dr. Foster went to Gloucester?",  # a question
        "Please write me a poem about my cat.",  # a command
        "If I lived in Spain I would learn Spanish.",  # a hypothetical
        "Imagine I'm a pirate.",
        "My boss thinks remote work is lazy.",  # someone else's opinion
        "My friend says sourdough is easy.",
        "I think you're right about that.",  # the conversation itself
        "I need a recipe for soup.",
        "I'd like a shorter answer.",
        "I'm not sure I follow.",
        "I have a question about loops.",
        "My code is throwing a KeyError.",
        "I'm going to the shops later.",  # today's plans
        "I fixed the bug yesterday.",  # a past event, not who the user is
        "I'm a big fan of your work.",  # about the assistant
        "I have a meeting at 3pm, remind me what to say.",  # a command after a comma
    ],
)
def test_questions_commands_hypotheticals_and_opinions_are_not_facts(text: str) -> None:
    assert extract(text) == [], text


def test_a_relative_time_keeps_the_day_it_was_said() -> None:
    assert extract("We're moving to Leeds in the spring.", said=DAY) == [
        "User and family are moving to Leeds in the spring (said on 2 Dec 2026)."
    ]
    assert statement("Next month I'm having knee surgery.", said=DAY) == (
        "User is having knee surgery next month (said on 2 Dec 2026)."
    )
    # Asked to remember, in words no rule knows: still dated.
    assert explicit("remember that the boiler service is due next March", said=DAY) == (
        "The boiler service is due next March (said on 2 Dec 2026)."
    )
    assert extract("Remember that the boiler service is due next March.", said=DAY) == [
        "The boiler service is due next March (said on 2 Dec 2026)."
    ]
    # An absolute date needs no day: it stays true.
    assert extract("We're getting married on 12 June 2027.", said=DAY) == [
        "User and family are getting married on 12 June 2027."
    ]


def test_learn_dates_a_relative_fact_by_its_message_and_shows_the_date(homefire_home: Path) -> None:
    memory = Memory()
    cid = memory.store.new_conversation("plans")
    mid = memory.store.add_message(cid, "user", "We're moving to Leeds in the spring.")
    with memory.store.transaction() as conn:  # said long ago: the fact must say when
        conn.execute("update messages set created = '2024-03-10T09:00:00.000Z' where id = ?", [mid])
    [(fact, status)] = memory.learn("We're moving to Leeds in the spring.", mid)
    assert status == "added" and fact.text.endswith("in the spring (said on 10 Mar 2024).")
    recalled = memory.recall("Where are we moving to?")
    assert [f.text for f in recalled][:1] == [fact.text]
    assert "(said on 10 Mar 2024)" in memory.facts_prompt(recalled)
    memory.close()


def test_recall_understands_questions_in_other_words_and_keeps_unrelated_facts_out(homefire_home: Path) -> None:
    memory = Memory()
    cid = memory.store.new_conversation("about me")
    for text in (
        "I coach my son's football team on Saturdays.",
        "I'm a huge fan of jazz, especially Coltrane.",
        "I work night shifts as a nurse.",
        "My sister Dana is a vet.",
        "I'm allergic to penicillin.",
    ):
        memory.learn(text, memory.store.add_message(cid, "user", text))
    assert len(memory.store.facts()) == 5
    for question, word in (
        ("What do I do on Saturdays?", "football"),
        ("What music do I like?", "jazz"),
        ("What's my job?", "nurse"),
    ):
        assert word in " ".join(f.text for f in memory.recall(question, limit=3)), question
    for question in ("How do magnets work?", "What year did the Second World War end?", "Tell me a joke."):
        assert memory.recall(question) == [], question
    memory.close()


def _legacy_database(path: Path) -> None:
    """A database as today's homefire (schema m002, the regex splitter's rules) leaves it: the rules are
    recorded in tests/data/legacy_facts_v1.py, the schema is the first two migrations."""
    spec = importlib.util.spec_from_file_location("legacy_facts_v1", DATA / "legacy_facts_v1.py")
    assert spec is not None and spec.loader is not None
    legacy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(legacy)
    db = Database(sqlite3.connect(path))
    for fn in MIGRATIONS[:2]:
        with db.conn:
            db.execute("create table if not exists _migrations (name text primary key, applied text)")
            fn(db)
            db.execute("insert into _migrations (name, applied) values (?, 'then')", [fn.__name__])
    with db.conn:
        db.execute("insert into conversations (title, created, updated) values ('old', 'then', 'then')")
        for text in (
            "My doctor is Dr. Patel at the Riverside clinic. Thanks!",  # cut short
            "My cousin works at J.P. Morgan in London.",  # cut short, then pinned by the user
            "I was born in St. Albans in 1984.",  # cut short, then edited by the user
            "My sister Dana is a vet.",  # her name lower-cased
            "I live in Glasgow.",  # whole already
        ):
            cur = db.execute(
                "insert into messages (conversation_id, role, text, complete, created, updated) "
                "values (1, 'user', ?, 1, '2026-11-30T10:00:00.000Z', 'then')",
                [text],
            )
            for fact in legacy.extract(text):
                db.execute(
                    "insert into facts (text, source_message_id, created) values (?, ?, 'then')", [fact, cur.lastrowid]
                )
    old = [r[0] for r in db.execute("select text from facts order by id")]
    assert old == [
        "User's doctor is Dr.",
        "User's cousin works at J.P.",
        "User was born in St.",
        "User's sister dana is a vet.",
        "User lives in Glasgow.",
    ]
    with db.conn:
        db.execute("update facts set pinned = 1 where id = 2")
        db.execute("update facts set text = 'User was born in St Albans, Hertfordshire.' where id = 3")
    db.conn.close()


def test_migration_repairs_facts_cut_short_but_not_pinned_or_edited_ones(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    path = homefire_home / "memory.db"
    _legacy_database(path)
    memory = Memory(Store(path))
    assert [f["text"] for f in memory.store.facts()] == [
        "User's doctor is Dr. Patel at the Riverside clinic.",
        "User's cousin works at J.P.",  # pinned: the user's choice, left as it is
        "User was born in St Albans, Hertfordshire.",  # edited: left as it is
        "User's sister Dana is a vet.",
        "User lives in Glasgow.",
    ]
    # The repaired fact is found by its new words (its stale vectors went with the old text).
    assert "Patel" in [f for f in memory.recall("Who is my GP?", limit=3) if not f.pinned][0].text
    assert memory.store.search_facts(["riverside"]) == [1]
    memory.close()
    Store(path).close()  # opening again applies nothing
