"""Opens a session: options, then saved settings, then defaults; then the guard, memory, engine and Assistant.

The one place these are decided. The command line (`ask`, `cartridge build`), the chat app and its
reload workers, and the memory commands open theirs here; the browser route runs the chat app, so it
does too, and a later API server will. What differs between callers is a parameter: how a passphrase
is asked for (`unlock`: a terminal prompt or a dialog), and the cores kept for a UI (`reserve_cores`).

    plan = resolve(Options(model="qwen", guard="strict"))   # what was said, else saved, else default
    memory = open_memory(unlock=ask_on_terminal)             # None when the user chose not to unlock
    assistant = open_assistant(plan, memory=memory)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config import GUARD_CHOICES, GenerationSettings, UserConfig, load_config
from .errors import GuardError, MemoryLocked, WrongPassphrase

if TYPE_CHECKING:
    from .assistant import Assistant
    from .engine import Engine
    from .guard import Guard
    from .memory import Memory

# Asked for the passphrase of a locked memory (the MemoryLocked says why): the opened Memory, or None to go
# on without memory (incognito). A terminal prompt in the CLI, a dialog in the chat app.
Unlock = Callable[[MemoryLocked], "Memory | None"]


@dataclass
class Options:
    """What a caller was told (command-line options, the chat app's arguments). None: not said."""

    model: str | Path | None = None
    n_ctx: int | None = None
    threads: int | None = None
    kv: str | None = None
    guard: str | None = None
    system_prompt: str | None = None
    incognito: bool = False
    cartridges: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a session runs with, every choice made: Options, else the saved settings, else the defaults."""

    model: str | Path | None  # None: the embedded default model
    n_ctx: int
    threads: int | None  # None: every core (the engine's default)
    kv: str
    guard: str  # a level of config.GUARD_CHOICES ("off" included)
    system_prompt: str
    incognito: bool = False
    cartridges: list[str] = field(default_factory=list)
    reserve_cores: int = 0  # cores the engine leaves to a UI's event loop (engine/threads.py)

    def but(self, **changes: object) -> Plan:
        """A copy with these choices changed (a model switch, new settings)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def guard_level(given: str | None = None, saved: UserConfig | None = None) -> str:
    """The guard level: the option given, else $HOMEFIRE_GUARD, else the saved setting, else normal."""
    level = (given or os.environ.get("HOMEFIRE_GUARD") or (saved.guard if saved else None) or "normal").lower()
    if level not in GUARD_CHOICES:
        raise GuardError(f"unknown guard level '{level}': use one of {', '.join(GUARD_CHOICES)}")
    return level


def threads(given: int | None, saved: UserConfig | None = None) -> int | None:
    """CPU threads for the model: the option given, else the saved setting, else None: the engine chooses
    and adapts (engine/threads.py), leaving the plan's reserve_cores to a UI."""
    return given if given is not None else (saved.threads if saved else None)


def resolve(options: Options, saved: UserConfig | None = None, *, reserve_cores: int = 0) -> Plan:
    """Every choice of a session. What a cartridge needs (its model, KV type, context) comes before the saved
    settings, which fill in only what neither the options nor the cartridges say."""
    saved = saved if saved is not None else load_config()
    model, kv, n_ctx = options.model, options.kv, options.n_ctx or saved.n_ctx
    if options.cartridges:
        from .engine import cartridge as cartridges

        first = cartridges.load(options.cartridges[0]).manifest
        model = model or first["model"]["name"]
        kv = kv or first["type_k"]
        n_ctx = max(n_ctx, first["n_ctx"])
    system = options.system_prompt if options.system_prompt is not None else saved.system_prompt
    return Plan(
        model=model or saved.model,
        n_ctx=n_ctx,
        threads=threads(options.threads, saved),
        kv=kv or "f16",
        guard=guard_level(options.guard, saved),
        system_prompt=system,
        incognito=options.incognito,
        cartridges=list(options.cartridges),
        reserve_cores=reserve_cores,
    )


def load_guard(level: str | None = None) -> Guard | None:
    """The prompt guard at this level (None: $HOMEFIRE_GUARD, else normal), or None when it was turned off."""
    level = guard_level(level)
    if level == "off":
        return None
    from .guard import Guard

    try:
        return Guard(strictness=level)
    except GuardError as exc:
        raise GuardError(f"{exc} — or run with --guard off to go on without the guard") from exc


def open_memory(unlock: Unlock | None = None, guard: Guard | None = None) -> Memory | None:
    """The memory database, unlocked ($HOMEFIRE_PASSPHRASE, else `unlock` when it is encrypted); facts written
    to it are checked by `guard`. None when unlock gave up (incognito). Without `unlock` a locked database
    raises MemoryLocked; a wrong $HOMEFIRE_PASSPHRASE raises WrongPassphrase, never asks."""
    from .memory import Memory

    try:
        memory: Memory | None = Memory.open()
    except WrongPassphrase:
        raise
    except MemoryLocked as exc:
        if unlock is None:
            raise
        memory = unlock(exc)
    if memory is not None and guard is not None:
        memory.fact_check = guard.flag_fact
    return memory


def open_engine(plan: Plan) -> Engine:
    from .engine import Engine

    return Engine(
        plan.model, n_ctx=plan.n_ctx, n_threads=plan.threads, kv_type=plan.kv, reserve_cores=plan.reserve_cores
    )


def open_assistant(
    plan: Plan, *, settings: GenerationSettings | None = None, memory: Memory | None = None
) -> Assistant:
    """The guard, then the engine (the slow part), then the Assistant over them and `memory`, with the plan's
    cartridges attached (a stale or foreign one is refused here)."""
    from .assistant import Assistant

    guard = load_guard(plan.guard)
    engine = open_engine(plan)
    assistant = Assistant(
        engine, system_prompt=plan.system_prompt or None, settings=settings, guard=guard, memory=memory
    )
    if plan.cartridges:
        assistant.attach(plan.cartridges)
    return assistant
