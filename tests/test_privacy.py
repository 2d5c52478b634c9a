"""Privacy is the product: no network unless the user pulls a model, and every file of user data private.

The whole suite runs under tests/netguard (see conftest.py); these tests check the guard itself, then that
the everyday paths open no internet socket at all, and that a full session leaves only 0600 files in
0700 folders."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import NETGUARD_LOG, cli_env, homefire_cmd

SESSION = r"""
import asyncio, json, socket, sys
opened = []

def hook(event, args):
    if event == "socket.__new__" and args[1] in (socket.AF_INET, socket.AF_INET6):
        opened.append(repr(args[1:]))

sys.addaudithook(hook)
from homefire.cli import main

steps = {}
steps["ask"] = main(["ask", "--max-tokens", "8", "--temperature", "0", "What is the capital of France?"])
open("doc.md", "w").write("The spare key is under the blue flowerpot.\n")
steps["cartridge"] = main(["cartridge", "build", "keys", "doc.md"])
steps["memory add"] = main(["memory", "add", "My server is at home.lan"])
steps["search"] = main(["history", "search", "capital"])
steps["export"] = main(["memory", "export", "--format", "md"])

async def tui():
    from homefire.app import HomefireApp
    from homefire.config import GenerationSettings
    app = HomefireApp(settings=GenerationSettings(temperature=0, max_tokens=8))
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.ready:
            await pilot.pause(0.05)
        app.query_one("#prompt").value = "Hello!"
        await pilot.press("enter")
        await pilot.pause(0.2)
        while app.answering:
            await pilot.pause(0.05)
        shown = len(app.query("ChatMessage"))
        app.chat.action_export_chat("json")  # a chat action: the chat screen has it
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        await pilot.press("ctrl+s")  # save the settings as they are: writes config.toml
        await pilot.pause(0.3)
    return shown

steps["tui messages"] = asyncio.run(tui())
print(json.dumps({"steps": steps, "inet_sockets": opened}))
"""


def test_the_network_guard_refuses_and_logs_in_this_process_and_in_children() -> None:
    try:
        with pytest.raises(OSError, match="not allowed in tests"):
            socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed
        with pytest.raises(OSError, match="not allowed in tests"):
            socket.getaddrinfo("huggingface.co", 443)
        child = subprocess.run(
            [sys.executable, "-c", "import socket; socket.getaddrinfo('example.com', 80)"],
            capture_output=True,
            text=True,
        )
        assert child.returncode != 0 and "not allowed in tests" in child.stderr
        assert NETGUARD_LOG.read_text().count("\n") == 3
        # Loopback is allowed: the fake hub, the web server and the browser test live there.
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            socket.create_connection(server.getsockname(), timeout=1).close()
    finally:
        NETGUARD_LOG.unlink(missing_ok=True)


@pytest.mark.slow
def test_ask_cartridges_memory_search_and_the_tui_open_no_internet_socket(tmp_path: Path, homefire_home: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SESSION],
        cwd=tmp_path,
        env=cli_env(homefire_home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    steps = report["steps"]
    assert steps.pop("tui messages") == 2 and set(steps.values()) == {0}, steps
    assert report["inet_sockets"] == []
    # Every file of user data the session left is 0600, every folder 0700.
    loose = []
    for path in [homefire_home, *homefire_home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        want = 0o700 if path.is_dir() else 0o600
        if mode & 0o077 or (path.is_dir() and mode != want):
            loose.append(f"{oct(mode)} {path.relative_to(homefire_home)}")
    assert not loose, "files or folders others can read:\n" + "\n".join(loose)
    kinds = {p.name.split(".")[-1] for p in homefire_home.rglob("*") if p.is_file()}
    assert {"db", "toml", "json", "bin"} <= kinds  # the database, settings, an export and a cartridge state


def test_no_user_text_in_logs_by_default(homefire_home: Path) -> None:
    """homefire keeps no log file: a session writes the database, settings, exports and cartridges, nothing else."""
    run = subprocess.run(
        homefire_cmd("ask", "--max-tokens", "4", "--temperature", "0", "My secret word is zebracrossing."),
        env=cli_env(homefire_home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "zebracrossing" not in run.stderr
    names = {p.name for p in homefire_home.rglob("*") if p.is_file()}
    assert not [n for n in names if n.endswith(".log")], names
