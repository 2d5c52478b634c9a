"""The import rule of README's Architecture section, checked on the source: parts import only downward.

Layers, lowest first: errors, config -> models, encoders -> engine, guard, memory -> assistant -> session ->
the front ends (cli and its command modules, app, web). A module may import its own layer's package and
any lower layer; engine, guard and memory are siblings that do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

# omp (the OpenMP wait policy, set by the package __init__), malloc, interrupt and privacy_env import no other part.
LAYER = {
    "__init__": 0,
    "errors": 0,
    "config": 0,
    "omp": 0,
    "malloc": 0,
    "interrupt": 0,
    "privacy_env": 0,
    "models": 1,
    "encoders": 1,
    "engine": 2,
    "guard": 2,
    "memory": 2,
}
LAYER |= {"assistant": 3, "session": 4, "cli": 5, "memory_cli": 5, "app": 5, "web": 5, "__main__": 5}


def imports(path: Path, base: Path) -> list[tuple[int, str]]:
    """(line, top-level homefire part) of every homefire import in a file under `base`, relative ones resolved."""
    package = path.relative_to(base).with_suffix("").parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            names = [".".join([*base, node.module]) if node.module else ".".join(base)]
            if not node.module:
                names = [f"{names[0]}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("homefire.") and n.count(".")]
    return out


def violations(root: Path) -> list[str]:
    """Every import in the package at `root` that goes up a layer, or sideways between engine, guard and memory."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        part = path.relative_to(root).with_suffix("").parts[0]
        for line, target in imports(path, root.parent):
            if target == part or target == "__version__":
                continue
            sideways = LAYER[target] == LAYER[part] and LAYER[part] == 2
            if LAYER[target] > LAYER[part] or sideways:
                bad.append(f"{path.relative_to(root.parent)}:{line} ({part}) imports {target}")
    return bad


def test_parts_import_only_downward() -> None:
    assert violations(ROOT / "homefire") == []


def test_every_part_has_a_layer() -> None:
    parts = {p.with_suffix("").name for p in (ROOT / "homefire").iterdir() if p.suffix == ".py" or p.is_dir()}
    assert parts - {"__pycache__", "__init__"} <= set(LAYER), "give a new part its layer here and in README"


def test_an_upward_or_sideways_import_is_caught(tmp_path: Path) -> None:
    fake = tmp_path / "homefire"
    for name, text in {
        "memory/memory.py": "from ..guard import Guard\nfrom ..errors import HomefireError\n",
        "engine/engine.py": "from homefire.assistant import Assistant\n",
        "encoders.py": "from . import session\n",
        "session.py": "from .memory import Memory\n",
    }.items():
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_text(text)
    found = [v.split(" (")[1] for v in violations(fake)]
    assert sorted(found) == ["encoders) imports session", "engine) imports assistant", "memory) imports guard"]
