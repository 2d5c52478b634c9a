"""One exception family whose messages are meant for the user: one line, saying what to do."""

from __future__ import annotations

import errno
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


class EncoderError(HomefireError):
    """The sentence encoder (memory search's vectors) cannot run: its model, tokenizer or runtime is missing."""


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


class StorageError(HomefireError):
    """A folder or file homefire keeps things in cannot be made, opened or written (not a directory,
    permission, read-only, disk full, name too long)."""


# What to do about each way a path can fail, in the user's words.
_FIXES = {
    errno.ENOTDIR: "part of that path is a file, not a folder: move the file or choose another path",
    errno.EEXIST: "a file is in the way where a folder should be: move it or choose another path",
    errno.EACCES: "permission denied: fix its permissions (chmod/chown) or choose a folder you own",
    errno.EPERM: "not permitted: fix its permissions (chmod/chown) or choose a folder you own",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "your disk quota is used up: free some space",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
    errno.ELOOP: "the path has a symbolic link loop: fix the links or choose another path",
    errno.EISDIR: "a folder is in the way where a file should be: move it or choose another path",
}


def storage_error(exc: OSError, what: str, path: object = None, hint: str = "") -> StorageError:
    """One line for an OSError on `path`: which path, what went wrong, what to do.

    `hint` is where the path came from (e.g. "set HOMEFIRE_HOME to another folder")."""
    where = path if path is not None else exc.filename
    fix = _FIXES.get(exc.errno or 0, "check the path and its permissions")
    reason = exc.strerror or type(exc).__name__
    subject = f"{what} {where}" if where is not None else what
    return StorageError(f"cannot use {subject}: {reason}; {fix}" + (f" ({hint})" if hint else ""))
