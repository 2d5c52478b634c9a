"""Loaded by every Python process the tests start (tests/conftest.py puts this folder on PYTHONPATH),
and by the test process itself: any socket connection or name lookup beyond this machine fails, and is
written to $HOMEFIRE_NETGUARD_LOG so a test sees it even when the code under test swallowed the error."""

from __future__ import annotations

import ipaddress
import os
import sys

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    log = os.environ.get("HOMEFIRE_NETGUARD_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {' '.join(sys.argv[:3])}: {what}\n")
    raise ConnectionRefusedError(f"network access outside this machine is not allowed in tests: {what}")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and not _local(address[0]):
            _refuse(f"{event} {address!r}")
    elif event == "socket.getaddrinfo":
        if not _local(args[0]):
            _refuse(f"name lookup of {args[0]!r}")
    elif event == "socket.gethostbyname" and args and not _local(args[0]):
        _refuse(f"name lookup of {args[0]!r}")


def install() -> None:
    if not getattr(sys, "_homefire_netguard", False):
        sys._homefire_netguard = True  # type: ignore[attr-defined]
        sys.addaudithook(_hook)


if os.environ.get("HOMEFIRE_NETGUARD") == "1":
    install()
