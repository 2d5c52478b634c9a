"""One conversation turn, and the only place the parts meet: guard -> recall -> engine -> memory.

The CLI and the TUI only ever call this (session.py builds it for them). With `memory=None` (incognito)
nothing is written anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import interrupt
from .config import DEFAULT_SYSTEM_PROMPT, GenerationSettings
from .engine import ChatEngine, Engine, Message, TurnStats
from .engine import cartridge as cartridges
from .errors import CartridgeError, MemoryStoreError, PromptError
from .malloc import give_back_freed_memory

if TYPE_CHECKING:
    from .guard import Guard, Verdict
    from .memory import Fact, Memory


# The guard's category for asks about hurting oneself: answered with support, never with a cold refusal.
SELF_HARM = "self-harm"
SELF_HARM_REPLY = (
    "I'm really sorry you're feeling this way, and I'm glad you said something. I can't help with anything "
    "that could hurt you, but you don't have to go through this alone. If you might act on these thoughts or "
    "are in danger right now, please contact your local emergency services or a crisis line straight away. "
    "If you can, talk to someone you trust today: a friend, a family member, a doctor or a counsellor. "
    "If you'd like to tell me what's been happening, I'm here to listen."
)


def is_self_harm(verdict: Verdict) -> bool:
    return not verdict.allowed and verdict.label == "harmful" and verdict.category == SELF_HARM


def refusal(verdict: Verdict) -> str:
    """What the user reads instead of an answer: short, respectful, and how to go on (self-harm: support)."""
    if is_self_harm(verdict):
        return SELF_HARM_REPLY
    return (
        f"I won't answer that one. {verdict.reason} "
        "If you meant something harmless, please rephrase it (saying what it is for helps); "
        "type /why for the guard's details."
    )


@dataclass
class Conversation:
    """The messages of one chat, oldest first (the system prompt is kept apart)."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    messages: list[Message] = field(default_factory=list)
    id: int | None = None  # its row in the memory database, once its first message is saved

    def for_model(self) -> list[Message]:
        """What the model sees: never a blocked prompt nor its refusal, and only role and text."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [{"role": m["role"], "content": m["content"]} for m in self.messages if not m.get("blocked")]


class Assistant:
    def __init__(
        self,
        engine: ChatEngine,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        settings: GenerationSettings | None = None,
        guard: Guard | None = None,
        memory: Memory | None = None,
        recall_budget: int = 120,
    ):
        """guard=None means no guard: session.py loads one unless the user turned it off.

        memory=None is incognito: nothing is saved, nothing recalled. `recall_budget` caps the tokens
        of remembered facts added to the system prompt.
        """
        self.engine = engine
        self.guard = guard
        self.last_verdict: Verdict | None = None
        self.settings = settings or GenerationSettings()
        self.system_prompt = system_prompt or ""
        self.conversation = Conversation(self.system_prompt)
        self.cartridges: list[cartridges.Cartridge] = []
        self.last_stats: TurnStats | None = None
        self.memory = memory
        self.recall_budget = recall_budget
        self.last_facts: list[Fact] = []  # the facts recalled into the latest answer's prompt
        if memory is not None:
            self.use_guard(guard)

    def use_guard(self, guard: Guard | None) -> None:
        """Check prompts with this guard (None: unchecked), and the facts memory writes with it too."""
        self.guard = guard
        if self.memory is not None:
            self.memory.fact_check = guard.flag_fact if guard is not None else None

    def explain(self) -> str:
        """The guard's reasoning on the latest user message, in Markdown (the TUI's /why)."""
        if self.guard is None:
            return "The guard is **off**: prompts go to the model unchecked."
        for m in reversed(self.conversation.messages):
            if m["role"] == "user" and m.get("verdict"):
                v = m["verdict"]
                g = self.guard
                stage1 = ", ".join(
                    f"{label} {score:.2f} (blocks at {g.thresholds[label]:.2f})" for label, score in v["scores"].items()
                )
                decision = "blocked" if not v["allowed"] else "allowed"
                extra = f" Category: {v['category']}." if v["category"] else ""
                if v.get("stage2"):  # in stage 1's uncertain band: stage 2 judged it again
                    th2 = getattr(g, "stage2_thresholds", {})
                    stage2 = ", ".join(
                        f"{label} {score:.2f}" + (f" (blocks at {th2[label]:.2f})" if label in th2 else "")
                        for label, score in v["stage2"].items()
                    )
                    if v.get("stage") == 2:
                        stages = f"Decided by stage 2 (stage 1 was unsure). Stage 1: {stage1}. Stage 2: {stage2}."
                    else:  # a long text stage 1 blocked: stage 2 read only its ends and cannot clear it
                        stages = (
                            f"Decided by stage 1 (stage 2 read only the ends of this long text). Stage 1: {stage1}. "
                            f"Stage 2: {stage2}."
                        )
                else:
                    stages = f"Decided by stage 1. Scores: {stage1}. Stage 2: not needed."
                return (
                    f"**Guard ({g.strictness})** {decision} “{m['content'][:80]}” "
                    f"in {v['latency_ms']:.1f} ms. {stages}{extra} {v['reason']}"
                )
        return "Nothing checked yet in this conversation."

    def new_conversation(self) -> None:
        self.conversation = Conversation(self.conversation.system_prompt)

    def attach(self, names: list[str]) -> list[cartridges.Cartridge]:
        """Ask with these cartridges from now on (checked now: a stale or foreign one is refused)."""
        self.cartridges = self.check_cartridges(names)
        return self.cartridges

    def check_cartridges(self, names: list[str]) -> list[cartridges.Cartridge]:
        """These cartridges, loaded and checked for this engine (a stale or foreign one is refused); attaches
        nothing, so a UI can check them in a worker and attach them on its own thread."""
        if not names:
            return []
        engine = self._kv_engine()
        carts = [cartridges.load(n) for n in names]
        for cart in carts:
            for part in [cartridges.load(p) for p in cart.chunks] or [cart]:
                cartridges.validate(part, engine)
        return carts

    def _kv_engine(self) -> Engine:
        """The engine, for cartridges: they restore llama.cpp KV state, which only the real engine has."""
        if not isinstance(self.engine, Engine):
            raise CartridgeError(f"cartridges need the llama.cpp engine, not {type(self.engine).__name__}")
        return self.engine

    def detach(self) -> None:
        self.cartridges = []
        self.conversation.system_prompt = self.system_prompt

    def resume(self, conversation_id: int) -> None:
        """Go on with a saved conversation: its messages become the history the model sees."""
        if self.memory is None:
            raise MemoryStoreError("incognito: there are no saved conversations to go on with")
        self.memory.store.conversation(conversation_id)
        conv = Conversation(self.conversation.system_prompt, id=conversation_id)
        for m in self.memory.store.messages(conversation_id):
            blocked = bool(m["verdict"]) and not m["verdict"].get("allowed", True)
            blocked = blocked or (m["role"] == "assistant" and bool(conv.messages and conv.messages[-1].get("blocked")))
            entry: Message = {"role": m["role"], "content": m["text"], "id": m["id"], "verdict": m["verdict"]}
            if blocked:
                entry["blocked"] = True
            conv.messages.append(entry)
        self.conversation = conv

    def rewind(self, index: int) -> None:
        """Forget the conversation from message `index` on (to edit a question, or regenerate an answer):
        gone from what the model sees and from the database."""
        dropped = self.conversation.messages[index:]
        del self.conversation.messages[index:]
        if self.memory is not None:
            for m in dropped:
                if m.get("id") is not None:
                    self.memory.store.delete_message(m["id"])

    def regenerate(self, cancel: threading.Event | None = None) -> Iterator[str]:
        """Answer the last question again: its old answer is dropped (on disk too), the question asked anew."""
        questions = [i for i, m in enumerate(self.conversation.messages) if m["role"] == "user"]
        if not questions:
            raise PromptError("there is no question to answer again yet")
        i = questions[-1]
        text = self.conversation.messages[i]["content"]
        self.rewind(i)
        yield from self.turn(text, cancel)

    def _saved_conversation(self, first_text: str) -> int:
        assert self.memory is not None
        if self.conversation.id is None:
            self.conversation.id = self.memory.store.new_conversation(
                title=" ".join(first_text.split())[:60],
                model=self.engine.model.name,
                cartridges=[c.name for c in self.cartridges],
            )
        return self.conversation.id

    def _memory_command(self, text: str) -> Iterator[str]:
        """/remember and /forget: handled here, never shown to the model."""
        command, _, rest = text.partition(" ")
        if self.memory is None:
            yield "Incognito: nothing is remembered or forgotten in this session."
            return
        if command == "/remember":
            from .memory.facts import explicit

            # Memory writes are flagged, not refused: a flagged fact is kept and listed but never recalled.
            fact, status = self.memory.remember(explicit(rest), pinned=False)
            if status == "flagged":
                label = self.memory.store.fact(fact.id)["guard_flag"]
                yield (
                    f"Kept as fact {fact.id}, but the guard reads it as {label}, so it will not be recalled into "
                    "my prompts. See or forget it with `homefire memory list` / `/forget`."
                )
                return
            said = {"added": "I'll remember", "updated": "Updated", "known": "I already knew"}[status]
            yield f"{said}: {fact.text} (fact {fact.id})"
            return
        gone = self.memory.forget(rest)
        if not gone:
            yield f"I had nothing remembered about “{rest.strip()}”. See them all with `homefire memory list`."
            return
        yield "Forgotten: " + "; ".join(f.text for f in gone)

    def turn(self, text: str, cancel: threading.Event | None = None) -> Iterator[str]:
        """Answer `text`, streaming the reply. The exchange joins the conversation even if stopped early."""
        text = text.strip()
        if not text:
            raise PromptError("the message is empty: type a question first")
        if text.split(" ", 1)[0] in ("/remember", "/forget"):
            # Not a turn: no verdict, stats or facts of an earlier turn may be shown against it.
            self.last_verdict, self.last_stats, self.last_facts = None, None, []
            yield from self._memory_command(text)
            return
        conv = self.conversation
        # A message that can never fit is said to be too long, whatever the guard would make of it.
        self.engine.fit(
            Conversation(conv.system_prompt, [{"role": "user", "content": text}]).for_model(), self.settings.max_tokens
        )
        # The guard decides before the model sees anything; a blocked prompt never reaches it.
        verdict = self.guard.check(text) if self.guard is not None else None
        self.last_verdict = verdict
        if verdict is not None and not verdict.allowed:
            self.last_stats = None
            conv.messages.append({"role": "user", "content": text, "verdict": verdict.as_dict(), "blocked": True})
            conv.messages.append({"role": "assistant", "content": refusal(verdict), "blocked": True})
            if self.memory is not None:
                cid = self._saved_conversation(text)
                conv.messages[-2]["id"] = self.memory.store.add_message(cid, "user", text, verdict=verdict.as_dict())
                conv.messages[-1]["id"] = self.memory.store.add_message(cid, "assistant", refusal(verdict))
            return
        if self.cartridges:
            # The documents become the system prompt; their KV state comes from disk, not a re-read.
            engine = self._kv_engine()
            chosen = cartridges.expand(self.cartridges, text, engine)
            conv.system_prompt = cartridges.activate(engine, chosen)["content"]
        conv.messages.append({"role": "user", "content": text, "verdict": verdict.as_dict() if verdict else None})
        for_model = conv.for_model()
        writer = None
        user_id = None
        self.last_facts = []
        if self.memory is not None:
            # Saved before generation: whatever happens next, the question is on disk.
            cid = self._saved_conversation(text)
            user_id = self.memory.store.add_message(
                cid, "user", text, verdict=verdict.as_dict() if verdict else None, tokens=self.engine.count_tokens(text)
            )
            conv.messages[-1]["id"] = user_id
            writer = self.memory.answer(cid)
            # With cartridges the system prompt is a restored KV state: changing it would re-read the documents.
            if not self.cartridges and for_model and for_model[0]["role"] == "system":
                self.last_facts = self.memory.recall(text, self.recall_budget)
                if self.last_facts:
                    extra = self.memory.facts_prompt(self.last_facts)
                    for_model[0] = {"role": "system", "content": f"{for_model[0]['content']}\n\n{extra}"}
        pieces: list[str] = []
        rejected = False
        ended = False
        try:
            for piece in self.engine.stream(for_model, self.settings, cancel):
                pieces.append(piece)
                if writer is not None:
                    writer.add(piece)
                yield piece
            ended = True
        except PromptError:
            rejected = True
            conv.messages.pop()  # a message that cannot fit is not kept: the user will shorten it
            if self.memory is not None and user_id is not None:
                self.memory.store.delete_message(user_id)
            raise
        finally:
            self.last_stats = self.engine.last_stats
            if not rejected:
                answer_id = writer.message_id if writer is not None else None
                conv.messages.append({"role": "assistant", "content": "".join(pieces), "id": answer_id})
                if writer is not None:
                    stats = self.last_stats.as_dict() if self.last_stats else None
                    # Complete only when the model ended it; a stop, Ctrl-C or error leaves it marked incomplete.
                    finished = ended and (stats or {}).get("finish_reason") != "cancelled"
                    writer.finish(complete=finished, stats=stats)
        if self.memory is not None and user_id is not None:
            # After the answer, not before: facts and vectors never delay the first token. An exit waits for them.
            with interrupt.saving():
                self.memory.learn(text, user_id)
                self.memory.index()
        give_back_freed_memory()  # the encoders' temporary buffers, kept by malloc otherwise (~75 MB)
