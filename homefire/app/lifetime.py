"""A chat process ends when its app does, within seconds, whatever its worker threads are doing.

Textual runs thread workers in asyncio's default executor, and asyncio.run() waits for that executor's
threads without limit once the app has gone: a model still loading or an answer still streaming kept the
process alive (and busy) after its browser had left. During that wait the web driver's SIGTERM/SIGINT
handlers were still installed, posting "exit" to an app that no longer existed, so those signals did
nothing. The app cancels its answer as it unmounts; this is the backstop for what cannot be cancelled
(a model load is one call into llama.cpp)."""

from __future__ import annotations

import os
import sys
import threading
import time

from .. import interrupt

EXIT_GRACE = 2.0  # seconds a clean shutdown gets: a cancelled answer stops at its next token
SAVE_GRACE = 20.0  # then what a turn is still saving (its facts and vectors) gets this long to finish


def exit_within(seconds: float = EXIT_GRACE, code: int = 0, saving: float = SAVE_GRACE) -> None:
    """End this process with `code` after `seconds` if it has not ended by then, once what a turn is still
    saving has finished (at most `saving` seconds more). Memory writes in small transactions, so what was
    saved is already committed: a stop mid-answer loses at most its last fraction of a second."""

    def last_resort() -> None:
        time.sleep(seconds)
        interrupt.wait_saved(saving)
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    threading.Thread(target=last_resort, name="homefire-exit", daemon=True).start()
