"""Crashes and faults on real processes and real filesystems: SIGKILL during a cartridge build, a model pull
and a database migration; a full disk; a read-only data dir; two instances at once. After each, the next
start works, nothing committed is lost, no partial file is taken for a whole one, and the user is told.

(SIGKILL during a streamed answer is in test_memory_turns.py.)"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from homefire.engine import cartridge as C
from homefire.errors import CartridgeError

from .conftest import ROOT, cli_env, homefire_cmd
from .fakehub import FakeHub

pytestmark = pytest.mark.slow


def wait_until(condition, timeout: float = 120.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("homefire:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def can_mount() -> bool:
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(
    not shutil.which("unshare") or not can_mount(), reason="needs unshare -m (root) for a private mount"
)


def test_sigkill_during_a_cartridge_build_leaves_no_cartridge_and_a_rebuild_works(
    homefire_home: Path, tmp_path: Path
) -> None:
    doc = tmp_path / "licence.txt"
    doc.write_text((ROOT / "tests" / "data" / "mpl-2.0-sections-1-7.txt").read_text())
    env = cli_env(homefire_home)
    build = subprocess.Popen(
        homefire_cmd("cartridge", "build", "licence", str(doc)),
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    folder = homefire_home / "cartridges"
    wait_until(
        lambda: folder.exists() and any(p.name.startswith(".building") for p in folder.iterdir()),
        what="the build to start",
    )
    time.sleep(0.5)
    build.kill()
    build.wait()
    assert build.returncode == -signal.SIGKILL
    # The half-built one is not a cartridge: not listed as usable, not loadable.
    assert "licence" not in [c.name for c in C.all_cartridges()]
    with pytest.raises(CartridgeError, match="no cartridge named 'licence'"):
        C.load("licence")
    listing = subprocess.run(homefire_cmd("cartridge", "list"), env=env, capture_output=True, text=True)
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    # The same name builds again at once: the dead build's lock is gone with its process.
    doc.write_text("The spare key is under the blue flowerpot.\n")
    again = subprocess.run(
        homefire_cmd("cartridge", "build", "licence", str(doc)), env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert C.status(C.load("licence")) == "ok"


def test_sigkill_during_a_pull_installs_nothing_and_the_next_pull_completes(
    homefire_home: Path, default_model_path: Path
) -> None:
    with FakeHub() as hub:
        served = hub.add("test/slow-GGUF", "slow.gguf", default_model_path, delay=0.02)
        env = dict(cli_env(homefire_home), HF_ENDPOINT=hub.endpoint)
        pull = subprocess.Popen(
            homefire_cmd("models", "pull", "test/slow-GGUF", "slow.gguf"),
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        partial = homefire_home / "models" / ".partial"

        def downloaded() -> int:
            files = [p for p in partial.rglob("*") if p.is_file()] if partial.exists() else []
            return max((p.stat().st_size for p in files), default=0)

        wait_until(lambda: downloaded() > 8_000_000, what="8 MB to arrive")
        pull.kill()
        pull.wait()
        models = homefire_home / "models"
        assert not (models / "slow.gguf").exists() and not (models / "slow.json").exists()
        listing = subprocess.run(homefire_cmd("models", "list"), env=env, capture_output=True, text=True)
        assert listing.returncode == 0 and "slow " not in listing.stdout.replace("slow.gguf", "")
        served.delay = 0.0
        again = subprocess.run(
            homefire_cmd("models", "pull", "test/slow-GGUF", "slow.gguf"),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        # huggingface-hub downloads into a file unique to each process, so a killed pull starts over (an
        # interrupted transfer within one pull resumes: test_pull.py); what the dead one left is cleared.
        assert not (partial / "slow").exists()
        assert (models / "slow.gguf").read_bytes() == default_model_path.read_bytes()


MIGRATE = r"""
import os, sys
from homefire.memory import migrations
step = sys.argv[1]
if step == "old":
    migrations.MIGRATIONS[:] = migrations.MIGRATIONS[:1]  # a database from before m002
    from homefire.memory import Store
    s = Store()
    cid = s.new_conversation(title="Before the upgrade")
    s.add_message(cid, "user", "Keep this message.")
    s.close()
elif step == "crash":
    original = migrations.MIGRATIONS[1]
    def dying(db):
        original(db)
        os._exit(9)  # killed inside the migration, before it is recorded
    dying.__name__ = original.__name__
    migrations.MIGRATIONS[1] = dying
    from homefire.memory import Store
    Store()
elif step == "crash-m001":
    # m001 makes the tables and two full-text indexes; sqlite-utils commits each index on its own, so a kill
    # after the first one leaves a schema that is half made and committed.
    from sqlite_utils.db import Table
    made = Table.enable_fts
    def dying(self, *args, **kwargs):
        made(self, *args, **kwargs)
        os._exit(9)
    Table.enable_fts = dying
    from homefire.memory import Store
    Store()
elif step == "use":
    import json
    from homefire.memory import Store
    s = Store()
    cid = s.new_conversation(title="After the crash")
    s.add_message(cid, "user", "pelicans and quinoa")
    s.add_fact("User grows quinoa.")
    found = [h for h in s.search_text("pelicans")]
    facts = s.db.execute("select count(*) from facts_fts where facts_fts match 'quinoa'").fetchone()[0]
    ok = s.db.execute("pragma integrity_check").fetchone()[0]
    print(json.dumps({"version": s.schema_version(), "found": len(found), "facts": facts, "integrity": ok}))
else:
    from homefire.memory import Store
    s = Store()
    print(s.schema_version(), [m["text"] for m in s.messages(s.conversations()[0]["id"])])
"""


def test_a_crash_inside_a_migration_loses_nothing_and_the_next_start_finishes_it(homefire_home: Path) -> None:
    env = cli_env(homefire_home)

    def run(step: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", MIGRATE, step],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("old").returncode == 0
    crashed = run("crash")
    assert crashed.returncode == 9, crashed.stderr
    after = run("open")
    assert after.returncode == 0, after.stderr
    from homefire.memory.migrations import MIGRATIONS

    # Every migration ran, the interrupted one included, and the old message is still there.
    assert after.stdout.startswith(MIGRATIONS[-1].__name__) and "Keep this message." in after.stdout


def test_a_crash_inside_the_first_migration_is_finished_by_the_next_start(homefire_home: Path) -> None:
    env = cli_env(homefire_home)

    def run(step: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", MIGRATE, step], env=env, capture_output=True, text=True, timeout=120
        )

    crashed = run("crash-m001")
    assert crashed.returncode == 9, crashed.stderr
    used = run("use")
    assert used.returncode == 0, used.stderr
    report = json.loads(used.stdout.strip().splitlines()[-1])
    from homefire.memory.migrations import MIGRATIONS

    latest = MIGRATIONS[-1].__name__
    assert report == {"version": latest, "found": 1, "facts": 1, "integrity": "ok"}, report


FULL_DISK = r"""
import json, os, sys
from pathlib import Path
from homefire.cli import main
from homefire.memory import Store
home = Path(os.environ["HOMEFIRE_HOME"])
s = Store()
cid = s.new_conversation(title="Saved before the disk filled")
s.add_message(cid, "user", "Keep this message.")
s.close()
with open(home / "filler", "wb") as f:  # take every free byte
    try:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    except OSError:
        pass
code = main(["ask", "--max-tokens", "8", "--temperature", "0", "What is the capital of France?"])
(home / "filler").unlink()
s = Store()
kept = [m["text"] for m in s.messages(cid)]
ok = s.db.execute("pragma integrity_check").fetchone()[0]
print(json.dumps({"code": code, "kept": kept, "integrity": ok}))
"""


@needs_mount
def test_a_full_disk_fails_the_turn_visibly_and_keeps_what_was_saved(tmp_path: Path) -> None:
    home = tmp_path / "small"
    home.mkdir()
    script = f"mount -t tmpfs -o size=3m,mode=0700 tmpfs {home} && exec {sys.executable} -c '{FULL_DISK}'"
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], env=cli_env(home), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["code"] != 0 and report["kept"] == ["Keep this message."] and report["integrity"] == "ok"
    said = [line for line in run.stderr.splitlines() if line.startswith("homefire:")]
    assert len(said) == 1 and ("disk" in said[0] or "space" in said[0]), run.stderr[-2000:]


@needs_mount
def test_a_read_only_data_dir_is_a_clear_error_and_changes_nothing(homefire_home: Path) -> None:
    env = cli_env(homefire_home)
    first = subprocess.run(
        homefire_cmd("memory", "add", "My server is at home.lan"), env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in homefire_home.glob("memory.db*")}
    ask = " ".join(homefire_cmd("ask", "--max-tokens", "4", "hello"))
    script = f"mount --bind -o ro {homefire_home} {homefire_home} && exec {ask}"
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    said = one_line_error(run)
    assert said == (
        f"homefire: cannot write in {homefire_home} (Read-only file system): the memory database needs a "
        "writable data dir (or use --incognito)"
    ), said
    after = {p.name: p.read_bytes() for p in homefire_home.glob("memory.db*")}
    assert after == before


def test_two_instances_at_once_both_answer_and_both_are_saved(homefire_home: Path) -> None:
    env = dict(cli_env(homefire_home))
    asks = [
        subprocess.Popen(
            homefire_cmd("ask", "--max-tokens", "8", "--temperature", "0", "--threads", "1", q),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for q in ("What is the capital of France?", "What is the capital of Japan?")
    ]
    outs = [a.communicate(timeout=300) for a in asks]
    assert [a.returncode for a in asks] == [0, 0], [o[1] for o in outs]
    from homefire.memory import Store

    store = Store()
    titles = sorted(c["title"] for c in store.conversations())
    assert titles == ["What is the capital of France?", "What is the capital of Japan?"]
    assert all(len(store.messages(c["id"])) == 2 for c in store.conversations())
