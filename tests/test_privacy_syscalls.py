"""Privacy at the system-call level, where native code cannot hide: each everyday command runs under
`strace -f` with HOME, the XDG dirs, TMPDIR and HOMEFIRE_HOME pointed at fresh temporary folders, and fails
on any connect/sendto/sendmsg beyond loopback, any name lookup, and any file created, written, renamed or
deleted outside the data dir (ALLOWED says what else, and why).

tests/netguard (a Python audit hook, active here too) names the Python caller of a socket; this test also
sees what libraries do in C: onnxruntime's telemetry wrote ~/.cache/Microsoft/DeveloperTools/.onnxruntime/
and looked up mobile.events.data.microsoft.com, and the audit hook saw nothing of it. The commands run with
every telemetry switch set to "on" in their environment: homefire must turn them off itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_web import chromium  # noqa: F401 (the headless browser fixture)

STRACE = shutil.which("strace")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="strace is Linux's"),
    pytest.mark.skipif(STRACE is None, reason="strace is not installed (apt-get install strace; CI: make ci-deps)"),
]

TRACED = (
    "connect,sendto,sendmsg,sendmmsg,"
    "open,openat,openat2,creat,truncate,mkdir,mkdirat,rmdir,"
    "rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat"
)
# What a user's environment may say: every switch we know of asks for telemetry. homefire overrides them.
TELEMETRY_ON = {
    "ORT_DISABLE_TELEMETRY": "0",
    "HF_HUB_DISABLE_TELEMETRY": "0",
    "HF_XET_TELEMETRY_ENABLED": "true",
    "DO_NOT_TRACK": "0",
    "DISABLE_TELEMETRY": "0",
}
# glibc asks a local name-service cache before DNS: a connection to one of these is a name lookup.
NAME_SERVICES = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/")
PYCACHE = re.compile(r"/__pycache__/[^/]+\.pyc(\.\d+)?$")
# Installed code, and the test harness's own (tests/netguard is loaded by every process the suite starts).
INSTALLED = tuple(f"{p}/" for p in {Path(sys.prefix), Path(sys.base_prefix), ROOT / "homefire", ROOT / "tests"})


@dataclass
class Box:
    """Fresh HOME, XDG dirs, TMPDIR, data dir and working dir for one command."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("home", "config", "cache", "share", "state", "runtime", "tmp", "cwd", "traces"):
            (self.root / name).mkdir(mode=0o700, parents=True)
        self.data = self.root / "data"
        self.cwd = self.root / "cwd"
        self.env = {
            **os.environ,
            **TELEMETRY_ON,
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_RUNTIME_DIR": str(self.root / "runtime"),
            "TMPDIR": str(self.root / "tmp"),
            "HOMEFIRE_HOME": str(self.data),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("HF_ENDPOINT", None)
        self.runs = 0

    def allowed(self, path: str) -> str | None:
        """Why a write to `path` is fine, or None."""
        if path == str(self.data) or path.startswith(f"{self.data}/"):
            return "the data dir: everything homefire keeps"
        if path in ("/dev/null", "/dev/tty") or path.startswith("/dev/pts/") or path == "/dev/ptmx":
            return "the terminal (or nowhere)"
        if PYCACHE.search(path) and path.startswith(INSTALLED):
            return "Python's bytecode cache of installed code: no user data (none with PYTHONDONTWRITEBYTECODE set)"
        return None

    def strace(self, *args: str) -> tuple[list[str], Path]:
        self.runs += 1
        out = self.root / "traces" / str(self.runs)
        out.mkdir()
        command = [STRACE or "strace", "-f", "-ff", "-qq", "-yy", "-s", "4096", "-e", "signal=none"]
        command += ["-e", f"trace={TRACED}", "-o", str(out / "t"), "--", sys.executable, "-m", "homefire", *args]
        return command, out

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command, out = self.strace(*args)
        done = subprocess.run(command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"homefire {' '.join(args)} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        self.check(out, " ".join(args))
        return done

    def check(self, traces: Path, what: str) -> None:
        problems = Trace(traces, self).problems()
        assert not problems, f"`homefire {what}` under strace:\n" + "\n".join(problems[:40])


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path / "box")


# -- reading strace's output --------------------------------------------------------------------------

CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
DIRFD = re.compile(r"^(?:AT_FDCWD|\d+)<([^>]*)>")
INET = re.compile(
    r'sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")'
)
PEER = re.compile(r"(?:TCP|UDP|TCPv6|UDPv6):\[[^\]]*?->\[?([0-9a-fA-F.:]+?)\]?:(\d+)\]")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
PATH_CALLS = {
    "creat": (0,),
    "truncate": (0,),
    "mkdir": (0,),
    "rmdir": (0,),
    "unlink": (0,),
    "link": (0, 1),
    "symlink": (1,),
    "rename": (0, 1),
    "mkdirat": (0,),
    "unlinkat": (0,),
    "renameat": (0, 1),
    "renameat2": (0, 1),
    "linkat": (0, 1),
    "symlinkat": (1,),
}


def _loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


class Trace:
    """strace -ff's files (one per process): every network attempt and every change to the file system."""

    def __init__(self, folder: Path, box: Box) -> None:
        self.folder, self.box = folder, box

    def lines(self) -> Iterator[tuple[str, str]]:
        for path in sorted(self.folder.iterdir()):
            pid = path.name.rsplit(".", 1)[-1]
            for line in path.read_text(errors="replace").splitlines():
                yield pid, line

    def problems(self) -> list[str]:
        found: list[str] = []
        for pid, line in self.lines():
            call = CALL.match(line)
            if call is None:
                continue
            name, args, result, decoded = call.groups()
            if name in ("connect", "sendto", "sendmsg", "sendmmsg"):
                found += [f"pid {pid}: {p}: {line}" for p in self._network(name, args)]
            elif result != "?" and int(result) >= 0:
                for path in self._written(name, args, decoded):
                    if self.box.allowed(path) is None:
                        found.append(f"pid {pid}: writes outside the data dir: {path}\n    {line}")
        return found

    @staticmethod
    def _network(name: str, args: str) -> list[str]:
        """Failed attempts count too: an attempt is what a firewall log would show."""
        if name == "connect" and "sa_family=AF_UNIX" in args:
            return ["a name lookup (name-service cache)"] if any(s in args for s in NAME_SERVICES) else []
        out = []
        for port, v4, v6 in INET.findall(args):
            address = v4 or v6
            if port == "53":
                out.append(f"a DNS query to {address}")
            elif not _loopback(address):
                out.append(f"a connection to {address}:{port}")
        for address, port in PEER.findall(args.split(",", 1)[0]):  # the socket's peer, decoded by -yy
            if port == "53":
                out.append(f"a DNS query to {address}")
            elif not _loopback(address):
                out.append(f"data sent to {address}:{port}")
        return sorted(set(out))

    @staticmethod
    def _written(name: str, args: str, decoded: str) -> list[str]:
        if name in ("open", "openat", "openat2"):
            if not any(flag in args for flag in WRITE_FLAGS):
                return []
            opened = re.match(r"<(.*)>$", decoded.strip())  # -y: the file the new descriptor refers to
            if opened:  # a device comes with its numbers: /dev/null<char 1:3>
                return [re.sub(r"<(?:char|block) \d+:\d+>$", "", opened.group(1))]
        if name not in PATH_CALLS and name not in ("open", "openat", "openat2"):
            return []
        # Paths relative to a directory descriptor (or the working dir): -y prints that directory.
        parts = _split_args(args)
        strings = [(i, m) for i, part in enumerate(parts) if (m := STRING.fullmatch(part.strip()))]
        paths = []
        wanted = PATH_CALLS.get(name, (0,))
        for n, (index, match) in enumerate(strings):
            if n not in wanted:
                continue
            path = match.group(1)
            if not path.startswith("/") and index > 0:
                base = DIRFD.match(parts[index - 1].strip())
                if base:
                    path = f"{base.group(1)}/{path}"
            paths.append(os.path.normpath(path))
        return paths


def _split_args(args: str) -> list[str]:
    """Split a syscall's arguments on top-level commas (strings and braces kept whole)."""
    parts, depth, current, quoted, escaped = [], 0, "", False, False
    for ch in args:
        if quoted:
            current += ch
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch in "{[<(":
            depth += 1
        elif ch in "}]>)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return parts


# -- the parser itself, on lines strace really prints -------------------------------------------------


def test_the_trace_reader_sees_lookups_connections_and_writes(tmp_path: Path) -> None:
    box = Box(tmp_path / "box")
    folder = tmp_path / "trace"
    folder.mkdir()
    home = box.env["HOME"]
    (folder / "t.100").write_text(
        "100 is ignored: not a call\n"
        'connect(9<UDP:[0.0.0.0:0]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}'
        ", 16) = 0\n"
        'connect(8<socket:[1]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such)\n'
        "connect(5<TCP:[2]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS\n'
        'sendto(7<UDP:[10.0.0.2:4000->192.0.2.7:443]>, "x", 1, 0, NULL, 0) = 1\n'
        'connect(6<TCP:[3]>, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        f'openat(AT_FDCWD<{box.cwd}>, "{home}/.cache/Microsoft/x/deviceid", O_WRONLY|O_CREAT|O_TRUNC, 0600) '
        f"= 3<{home}/.cache/Microsoft/x/deviceid>\n"
        f'mkdirat(AT_FDCWD<{box.cwd}>, "sub", 0700) = 0\n'
        f'rename("{box.data}/a.tmp", "{box.data}/a") = 0\n'
        f'openat(AT_FDCWD<{box.cwd}>, "{box.data}/memory.db", O_RDWR|O_CREAT|O_CLOEXEC, 0644) '
        f"= 4<{box.data}/memory.db>\n"
        f'openat(AT_FDCWD<{box.cwd}>, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 5</etc/hosts>\n'
        f'openat(AT_FDCWD<{box.cwd}>, "/dev/null", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 6</dev/null<char 1:3>>\n'
        f'openat(AT_FDCWD<{box.cwd}>, "{home}/nothere", O_WRONLY|O_CREAT, 0600) = -1 EACCES (Permission denied)\n'
    )
    problems = "\n".join(Trace(folder, box).problems())
    assert "a DNS query to 10.255.255.53" in problems
    assert "name lookup (name-service cache)" in problems
    assert "a connection to 2001:db8::1:443" in problems
    assert "data sent to 192.0.2.7:443" in problems
    assert "127.0.0.1" not in problems
    assert ".cache/Microsoft/x/deviceid" in problems and f"{box.cwd}/sub" in problems
    assert "memory.db" not in problems and "a.tmp" not in problems and "/etc/hosts" not in problems
    assert "/dev/null" not in problems
    assert "nothere" not in problems  # a refused open wrote nothing
    assert len(problems.split("\npid")) == 6


# -- the commands ----------------------------------------------------------------------------------------


def test_ask(box: Box) -> None:
    done = box.run("ask", "--max-tokens", "8", "--temperature", "0", "What is the capital of France?")
    assert done.stdout.strip()
    assert (box.data / "memory.db").exists()  # what it saved, it saved in the data dir


def test_guard_check(box: Box) -> None:
    done = box.run("guard", "check", "hello there")
    assert "allowed" in done.stdout


def test_memory_add_search_and_export(box: Box) -> None:
    box.run("memory", "add", "My server is at home.lan")
    box.run("ask", "--max-tokens", "4", "--temperature", "0", "Where is my server?")
    found = box.run("history", "search", "server")
    assert "server" in found.stdout
    exported = box.run("memory", "export", "--format", "json")
    assert "home.lan" in exported.stdout


def test_cartridge_build(box: Box) -> None:
    (box.cwd / "doc.md").write_text("The spare key is under the blue flowerpot.\n")
    box.run("cartridge", "build", "keys", "doc.md")
    assert list((box.data).rglob("*.bin"))


def test_models_list_info_and_verify(box: Box) -> None:
    assert "smollm2-135m" in box.run("models", "list").stdout
    box.run("models", "info", "smollm2-135m")
    assert "matches" in box.run("models", "verify", "smollm2-135m").stdout


def _read_until(fd: int, wanted: bytes, seen: bytearray, limit: float) -> None:
    deadline = time.monotonic() + limit
    while wanted not in _plain(bytes(seen)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{wanted!r} never appeared; the terminal showed {_plain(bytes(seen))[-1500:]!r}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                raise AssertionError(f"the app left before {wanted!r}: {_plain(bytes(seen))[-1500:]!r}") from None


def _plain(screen: bytes) -> bytes:
    return re.sub(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78cM])", b"", screen)


def test_the_chat_app_in_a_terminal(box: Box) -> None:
    command, traces = box.strace("chat", "--ctx", "2048")
    env = dict(box.env, TERM="xterm-256color", COLUMNS="100", LINES="30")
    pid, terminal = pty.fork()
    if pid == 0:  # the child: strace running the app on the new terminal
        os.chdir(box.cwd)
        os.execve(command[0], command, env)
    seen = bytearray()
    try:
        _read_until(terminal, b"ready", seen, 240)
        os.write(terminal, b"What is the capital of France?")
        _read_until(terminal, b"capital of France?", seen, 60)
        os.write(terminal, b"\r")
        _read_until(terminal, b"Paris", seen, 240)
        os.write(terminal, b"\x11")  # Ctrl+Q
        deadline = time.monotonic() + 60
        while not os.waitpid(pid, os.WNOHANG)[0]:
            assert time.monotonic() < deadline, "the app did not quit on Ctrl+Q"
            with_output = select.select([terminal], [], [], 0.2)[0]
            if with_output:
                try:
                    os.read(terminal, 65536)
                except OSError:
                    pass
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
    box.check(traces, "chat (in a terminal)")


async def test_serve_web_with_a_real_browser(box: Box, chromium: str) -> None:  # noqa: F811
    pytest.importorskip("aiohttp")
    from .test_web import TOKEN
    from .test_web_sessions import descendants, tab

    command, traces = box.strace("serve", "--web", "--port", "0", "--token", TOKEN, "--ctx", "2048")
    server = subprocess.Popen(command, cwd=box.cwd, env=box.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    banner: list[str] = []
    try:
        assert server.stdout is not None
        url = None
        for raw in server.stdout:
            banner.append(raw.decode(errors="replace"))
            found = re.search(r"serving the chat app on (http://127\.0\.0\.1:\d+/)", banner[-1])
            if found:
                url = found.group(1)
                break
        assert url, "".join(banner)
        async with tab(chromium) as cdp:  # the shared DevTools tab of the page-abandonment tests
            await cdp("Page.navigate", url=f"{url}?token={TOKEN}")
            await cdp.wait_for_text("ready", limit=240, log=banner)
            await cdp.send("What is the capital of France?", log=banner)
            await cdp.wait_for_text("Paris", limit=240, log=banner)
            await cdp("Page.navigate", url="about:blank")
        # The server (strace's child) stops as a service manager would stop it.
        traced = [p for p in descendants(server.pid) if _parent(p) == server.pid]
        assert traced, "no server under strace"
        os.kill(traced[0], signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while server.poll() is None:
            assert loop.time() < deadline, "the server did not stop on SIGTERM"
            await asyncio.sleep(0.2)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    box.check(traces, "serve --web (a browser chatting)")


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
