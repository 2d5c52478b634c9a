"""One exception family whose messages are meant for the user: one line, saying what to do."""

from __future__ import annotations

import unicodedata


def one_line(text: str) -> str:
    """`text` with its control characters and line separators escaped (a name the user typed may hold a
    carriage return or a newline): an error message stays one line on any terminal."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


class HomefireError(Exception):
    """Base of every error homefire shows to a person. str(err) is the one-line message."""

    exit_code = 1


class ModelError(HomefireError):
    """A model could not be found, read, verified or loaded."""


class ChecksumMismatch(ModelError):
    """A file's sha256 is not the one it should have."""


class DownloadError(ModelError):
    """A model download failed."""


class PromptError(HomefireError):
    """The prompt cannot be answered as given (empty, or larger than the context)."""

    exit_code = 2


class GuardError(HomefireError):
    """The prompt guard cannot run (its runtime, encoder or classifier file is missing or damaged)."""


class CartridgeError(HomefireError):
    """A cartridge cannot be built, or cannot be used as it is (stale, damaged, made differently)."""


class Cancelled(HomefireError):
    """The user stopped an answer (Escape, Ctrl-C)."""

    exit_code = 130


class MemoryStoreError(HomefireError):
    """The memory database cannot be used (busy, damaged, newer than this homefire, disk full) or input is bad."""


class ConfigError(HomefireError):
    """The settings file, or a setting given, is not valid."""

    exit_code = 2


class MemoryLocked(MemoryStoreError):
    """The memory database is encrypted and no passphrase was given: ask for one, then open it again."""


class WrongPassphrase(MemoryLocked):
    """The passphrase given does not open the encrypted memory database (nothing was changed)."""
