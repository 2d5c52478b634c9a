"""Memory benchmark: writes, search at scale, and fact recall. Prints a table, then one JSON line.

    python bench/memory.py [--messages 100000] [--conversations 2000] [--real-vectors 2000]

Every message goes through Store.add_message (one transaction each, FTS triggers included),
as in a real turn. Embedding 100,000 messages with the real encoder would take many minutes on
2 cores, so only `--real-vectors` of them get real MiniLM vectors; the rest get random unit
vectors, which cost exactly as much to search. Queries are embedded with the real encoder.
Fact recall uses 50 scripted (statement, question) pairs spoken in conversations, with chatter
that must not become facts (the development split), and 30 held-out pairs never tuned on.
`--passphrase PW` measures an encrypted (SQLCipher) database; `--facts-only` skips the 100k part;
`--model-extraction` also learns facts with the default model proposing what the rules miss.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homefire.memory import Memory, Store  # noqa: E402
from homefire.memory.facts import normalized  # noqa: E402

WORDS = (
    "the a to and of in is it you that for on with as this was be at have are not can do we my your how what "
    "python server bread garden dragon recipe train music budget invoice printer kernel backup holiday weather "
    "coffee meeting report laptop battery network password camera bicycle doctor school football guitar paint "
    "window kitchen market river mountain library history science planet ocean forest winter summer spring "
    "autumn question answer problem idea reason method result example number system language program file"
).split()

# (what the user says, a word the right fact contains, a later question that needs it)
PAIRS = [
    ("My daughter is Maya.", "maya", "What should I get my daughter for her birthday?"),
    # "peanut", not "peanuts": "I have a peanut allergy." below updates this fact (a near-duplicate), and the
    # stored "User has a peanut allergy." is the right fact for this question too.
    ("I'm allergic to peanuts.", "peanut", "Suggest a snack I can take on a hike."),
    ("Remember that my server is at home.lan.", "home.lan", "How do I ssh into my server?"),
    ("I live in Glasgow.", "glasgow", "What's the weather like where I live?"),
    ("I am vegetarian.", "vegetarian", "What should I cook for dinner tonight?"),
    ("I work as a nurse.", "nurse", "How can I sleep better after work shifts?"),
    ("My dog is called Biscuit.", "biscuit", "What toys would my dog like?"),
    ("I speak French and Spanish.", "french", "Which languages could I use on holiday in South America?"),
    ("I have two cats.", "cats", "How much food do my cats need?"),
    ("My birthday is on March 3rd.", "march", "When is my birthday?"),
    ("I use Fedora on my laptop.", "fedora", "How do I install a package on my laptop?"),
    ("I prefer metric units.", "metric", "How tall is Mount Everest?"),
    ("My locker code is 4312.", "4312", "What is my locker code?"),
    ("I drive a blue Honda Civic.", "honda", "When should my car have its next service?"),
    ("I was born in Lisbon.", "lisbon", "Where was I born?"),
    ("My favourite band is Radiohead.", "radiohead", "Recommend some music I might like."),
    ("Call me Sam.", "sam", "What is my name?"),
    ("I don't eat pork.", "pork", "Plan a barbecue menu for me."),
    ("My partner is allergic to shellfish.", "shellfish", "Which seafood restaurant dishes are safe for my partner?"),
    ("I'm 34 years old.", "34", "How old am I?"),
    ("My home router is at 192.168.1.1.", "192.168.1.1", "How do I open my router's admin page?"),
    ("I own a small bakery.", "bakery", "How can I get more customers for my shop?"),
    ("I'm diabetic.", "diabetic", "Is this dessert a good idea for me?"),
    ("My wife is called Priya.", "priya", "What is my wife's name?"),
    ("My son is 7 years old.", "7", "What books suit my son's age?"),
    ("I'm from Brazil.", "brazil", "Which country am I from?"),
    ("My favourite colour is green.", "green", "What colour should I paint my bedroom?"),
    ("I study chemistry.", "chemistry", "Help me plan revision for my subject."),
    ("My cat is named Luna.", "luna", "What is my cat called?"),
    ("I have a peanut allergy.", "peanut", "Can I eat satay sauce?"),
    ("My email is sam at example dot org.", "email", "What is my email address?"),
    ("I work at a hospital.", "hospital", "Where do I work?"),
    ("My brother lives in Oslo.", "oslo", "Where does my brother live?"),
    ("I am a teacher.", "teacher", "Give me ideas for my classroom."),
    ("My phone number is 555 0199.", "555", "What is my phone number?"),
    ("I'm lactose intolerant.", "lactose", "Can I have a milkshake?"),
    ("My sister is a pilot.", "pilot", "What does my sister do for a living?"),
    ("I use Neovim for coding.", "neovim", "Which editor do I use?"),
    ("My car is a Tesla Model 3.", "tesla", "How far can my car go on a charge?"),
    ("I own a Raspberry Pi 5.", "raspberry", "Which single-board computer do I have?"),
    ("My garden is in Devon.", "devon", "When should I plant tomatoes in my garden?"),
    ("I'm a beekeeper.", "beekeeper", "What should I do with my hives in winter?"),
    ("My mother is called Helen.", "helen", "What is my mother's name?"),
    ("I speak Japanese.", "japanese", "Which language could I use in Tokyo?"),
    ("I'm allergic to penicillin.", "penicillin", "Which antibiotics should I avoid?"),
    ("My timezone is CET.", "cet", "What time zone am I in?"),
    ("I have a sourdough starter called Bubbles.", "bubbles", "How often should I feed my starter?"),
    ("My bike is a Brompton.", "brompton", "How do I fold my bike?"),
    ("I live in a flat on the fifth floor.", "fifth", "Which floor do I live on?"),
    ("My favourite food is ramen.", "ramen", "What should I order for lunch?"),
]
# Held out: written after recall@3 stood at 0.88 on PAIRS and before any change made to raise it; never
# tuned on. Reported apart from PAIRS (the development split) so a gain there can be told from overfitting.
HELDOUT_PAIRS = [
    ("My husband is called Tom.", "tom", "What's my husband's name?"),
    ("I'm allergic to bee stings.", "bee", "What should I carry when I go walking in summer?"),
    ("I live in Montreal.", "montreal", "Do I need snow tyres this winter?"),
    ("My daughter is 12 years old.", "12", "Which films are suitable for my daughter?"),
    ("I work as an accountant.", "accountant", "What's a good certification for my career?"),
    ("My cat is called Pepper.", "pepper", "What's my cat's name?"),
    ("I speak German.", "german", "Which language should I use when I visit Vienna?"),
    ("I use Arch Linux.", "arch", "How do I update all packages on my system?"),
    ("My wifi network is called Hearth.", "hearth", "Which wifi network should my guests join?"),
    ("I'm vegan.", "vegan", "Suggest a dessert recipe for me."),
    ("I was born in 1988.", "1988", "How old will I be next year?"),
    ("My favourite author is Ursula Le Guin.", "ursula", "Recommend me a book to read next."),
    ("I have a Labrador named Rufus.", "rufus", "How long should I walk my dog each day?"),
    ("I play the piano.", "piano", "What instrument should I practise this evening?"),
    ("My NAS is at 10.0.0.5.", "10.0.0.5", "How do I mount my NAS?"),
    ("I'm gluten intolerant.", "gluten", "Can I eat regular pasta?"),
    ("My grandmother lives in Naples.", "naples", "Where should I fly to visit my grandmother?"),
    ("I drive a Volkswagen Golf.", "golf", "What tyre pressure does my car need?"),
    ("Remember that my passport expires in May 2027.", "passport", "When do I need to renew my passport?"),
    ("I'm a software engineer.", "software", "What should I put in my CV?"),
    ("My partner is called Alex.", "alex", "Help me plan a surprise for my partner."),
    ("I prefer Celsius.", "celsius", "What temperature should I bake bread at?"),
    ("I own a sailboat.", "sailboat", "What maintenance does my boat need before spring?"),
    ("My office is in Leeds.", "leeds", "How long is my commute by train from York?"),
    ("I'm left-handed.", "left", "Which scissors should I buy?"),
    ("My favourite sport is cycling.", "cycling", "What should I do this weekend to stay fit?"),
    ("I have high blood pressure.", "blood", "Is a lot of salt bad for me?"),
    ("My printer is a Brother HL-L2350.", "brother", "How do I replace the toner in my printer?"),
    ("I teach maths at a primary school.", "maths", "Give me a fun activity for my lessons."),
    ("My son's name is Leo.", "leo", "What's my son called?"),
]
CHATTER = [
    "What is the capital of France?",
    "My question is about Python decorators.",
    "I have a question about loops.",
    "Can you explain how interest is calculated?",
    "I'm a bit confused by your last answer.",
    "Write a story where my brother is a dragon.",
    "I think the answer is 42.",
    "My code is throwing a KeyError, why?",
]

UNRELATED = [
    "How do I reverse a list in Python?",
    "What's 17 times 23?",
    "Tell me a joke.",
    "Explain photosynthesis briefly.",
    "What year did the Second World War end?",
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_scale(
    n_messages: int, n_conversations: int, real_vectors: int, passphrase: str | None = None, queries: int = 50
) -> dict[str, float]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "memory.db", passphrase=passphrase)
        memory = Memory(store)
        convs = [store.new_conversation(f"conversation {i}", "smollm2-135m") for i in range(n_conversations)]
        # A Zipf-like vocabulary: a few very common words and a long tail, as in real chat text.
        vocab = WORDS + [f"{rng.choice(WORDS[20:])}{i}" for i in range(20_000)]
        weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
        texts = [" ".join(rng.choices(vocab, weights, k=rng.randint(8, 40))) for _ in range(n_messages)]
        t = time.perf_counter()
        ids = [
            store.add_message(convs[i % n_conversations], "user" if i % 2 else "assistant", x)
            for i, x in enumerate(texts)
        ]
        insert_s = time.perf_counter() - t
        # Real vectors for some, random unit vectors for the rest (same search cost).
        t = time.perf_counter()
        for mid, text in zip(ids[:real_vectors], texts[:real_vectors], strict=True):
            store.set_vectors(memory.embed(text), message_id=mid)
        embed_ms = (time.perf_counter() - t) / max(real_vectors, 1) * 1000
        vecs = np.random.default_rng(7).standard_normal((n_messages - real_vectors, 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        with store.transaction() as conn:
            conn.executemany(
                "insert into embeddings (message_id, vector) values (?, ?)",
                ((mid, v.tobytes()) for mid, v in zip(ids[real_vectors:], vecs, strict=True)),
            )
        qs = [" ".join(rng.sample(vocab[20:2000], 2)) for _ in range(queries)]
        memory.search(qs[0])  # loads the vector matrix once, as a running app has it
        timings: dict[str, list[float]] = {"text": [], "vector": [], "hybrid": []}
        for q in qs:
            for mode in timings:
                t = time.perf_counter()
                memory.search(q, mode=mode)
                timings[mode].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        fresh = Memory(Store(Path(tmp) / "memory.db", passphrase=passphrase))
        fresh.search(qs[1])
        cold_ms = (time.perf_counter() - t) * 1000
        # Streamed-answer writes at this size: one small update transaction each.
        writer = memory.answer(convs[0], interval=0.0)
        for i in range(200):
            writer.add(f"token{i} ")
        writer.finish(True, {"completion_tokens": 200})
        store.db.execute("pragma wal_checkpoint(truncate)")
        size = os.path.getsize(Path(tmp) / "memory.db")
        out = {
            "messages": n_messages,
            "insert_per_s": n_messages / insert_s,
            "embed_ms_per_message": embed_ms,
            "stream_write_ms": writer.write_seconds / writer.writes * 1000,
            "cold_first_search_ms": cold_ms,
            "db_mb": size / 1e6,
        }
        for mode, values in timings.items():
            out[f"{mode}_p50_ms"], out[f"{mode}_p95_ms"] = pct(values, 50), pct(values, 95)
        fresh.close()
        memory.close()
        return out


def bench_facts(pairs: list[tuple[str, str, str]], learn: Any = None) -> dict[str, float]:
    """Speak the statements (shuffled among chatter) in one conversation, then ask each question: is the
    right fact among the 3 recalled? `learn(memory, text, message_id)` replaces Memory.learn (the model stage)."""
    with tempfile.TemporaryDirectory() as tmp:
        memory = Memory(Store(Path(tmp) / "memory.db"))
        cid = memory.store.new_conversation("facts")
        lines = [p[0] for p in pairs] + CHATTER
        random.Random(3).shuffle(lines)
        for line in lines:
            mid = memory.store.add_message(cid, "user", line)
            if learn is None:
                memory.learn(line, mid)
            else:
                learn(memory, line, mid)
        stored = [f["text"] for f in memory.store.facts()]
        keys = [k for _, k, _ in pairs]
        correct = [f for f in stored if any(k in normalized(f).split() or k in f.lower() for k in keys)]
        hits = 0
        for _, key, question in pairs:
            recalled = memory.recall(question, budget_tokens=10_000, limit=3)[:3]
            hits += any(key in f.text.lower() for f in recalled)
        unrelated = [memory.recall(q, budget_tokens=10_000, limit=3) for q in CHATTER + UNRELATED]
        memory.close()
        return {
            "unrelated_facts_per_question": sum(map(len, unrelated)) / len(unrelated),
            "pairs": len(pairs),
            "facts_stored": len(stored),
            "facts_missed": len(pairs) - len({k for k in keys if any(k in f.lower() for f in stored)}),
            "stored_precision": len(correct) / max(len(stored), 1),
            "recall_at_3": hits / len(pairs),
        }


def model_learner() -> Any:
    """Memory.learn plus the model's proposals for sentences the rules found nothing in (grounded in the user's
    words), as bench/facts_model.py measures it: the stage homefire does not ship."""
    from facts_model import FIRST_PERSON, ModelStage, grounded

    from homefire.memory.facts import _SENTENCES, extract

    stage = ModelStage(threads=1)

    def learn(memory: Memory, text: str, message_id: int) -> None:
        memory.learn(text, message_id)
        for sentence in _SENTENCES.split(text):
            if sentence.strip() and not extract(sentence) and FIRST_PERSON.search(sentence):
                fact = grounded(sentence, stage.rewrite(sentence.strip()))
                if fact:
                    memory.remember(fact, message_id)

    return learn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--conversations", type=int, default=2_000)
    ap.add_argument("--real-vectors", type=int, default=2_000)
    ap.add_argument("--passphrase", default=None, help="measure an encrypted database (SQLCipher) instead")
    ap.add_argument("--facts-only", action="store_true", help="only the fact recall part (no 100k messages)")
    ap.add_argument(
        "--model-extraction",
        action="store_true",
        help="also measure facts learnt with the default model proposing what the rules miss (bench/facts_model.py)",
    )
    args = ap.parse_args()
    scale = (
        {}
        if args.facts_only
        else bench_scale(args.messages, args.conversations, min(args.real_vectors, args.messages), args.passphrase)
    )
    facts = {"dev": bench_facts(PAIRS), "heldout": bench_facts(HELDOUT_PAIRS)}
    if args.model_extraction:
        learn = model_learner()
        facts["dev_model"], facts["heldout_model"] = bench_facts(PAIRS, learn), bench_facts(HELDOUT_PAIRS, learn)
    if scale:
        keyed = " (encrypted, SQLCipher)" if args.passphrase else ""
        print(f"\nmemory at {scale['messages']:,} messages in {args.conversations:,} conversations{keyed}\n")
        print("| measure | value |\n|---|---|")
        print(f"| insert rate (one transaction per message, FTS triggers) | {scale['insert_per_s']:,.0f} msg/s |")
        print(f"| streamed-answer update (one transaction) | {scale['stream_write_ms']:.2f} ms |")
        print(f"| embedding a message (MiniLM int8, one thread) | {scale['embed_ms_per_message']:.1f} ms |")
        for mode in ("text", "vector", "hybrid"):
            print(f"| {mode} search p50 / p95 | {scale[mode + '_p50_ms']:.1f} / {scale[mode + '_p95_ms']:.1f} ms |")
        print(f"| first search in a new process (loads vectors) | {scale['cold_first_search_ms']:.0f} ms |")
        print(f"| database size | {scale['db_mb']:.0f} MB |")
    else:
        print("\n| measure | value |\n|---|---|")
    splits = [("dev", "development pairs"), ("heldout", "held-out pairs")]
    if args.model_extraction:
        splits += [
            ("dev_model", "development pairs, rules + model"),
            ("heldout_model", "held-out pairs, rules + model"),
        ]
    for split, name in splits:
        f = facts[split]
        print(
            f"| facts, {name}: stored precision / recall@3 ({f['pairs']} pairs) | "
            f"{f['stored_precision']:.2f} / {f['recall_at_3']:.2f} ({f['facts_missed']} never extracted) |"
        )
    unrelated = (facts["dev"]["unrelated_facts_per_question"], facts["heldout"]["unrelated_facts_per_question"])
    print(
        "| facts recalled for an unrelated question (of 3 at most; dev / held-out) | "
        f"{unrelated[0]:.1f} / {unrelated[1]:.1f} |"
    )
    print(json.dumps({"scale": scale, "facts": facts}))


if __name__ == "__main__":
    main()
