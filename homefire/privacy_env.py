"""Every dependency's telemetry switched off, before any of them loads (homefire/__init__.py runs this first).

The switches are environment variables that native code reads once, when it starts: onnxruntime's
telemetry is set up as its library loads, so calling `onnxruntime.disable_telemetry_events()` after
`import onnxruntime` is too late (its device id and event queue are already on disk). They are forced,
not defaulted: a `0` left in the user's environment by another program must not turn telemetry back on.

The audit behind the list (SECURITY.md has it as a table; tests/test_privacy_syscalls.py checks the
result at the system-call level):
- onnxruntime (1.17+ on Linux): Microsoft's 1DS telemetry writes a device id and an upload queue under
  ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and sends them to mobile.events.data.microsoft.com.
- huggingface-hub (`models pull` only): telemetry adds library and "agent" details to its requests and
  may fetch a registry of AI agents from the hub; hf-xet (its download backend) reports transfer
  telemetry. Both read HF_HUB_DISABLE_TELEMETRY and DO_NOT_TRACK; hf-xet also has its own switch.
- llama.cpp (llama-cpp-python), tokenizers, textual, textual-serve, aiohttp, sqlcipher3, numpy,
  sqlite-utils: no telemetry and no update check found (nothing to switch off; the strace test keeps
  watching them).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

TELEMETRY_OFF: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime: no 1DS device id, event queue or upload
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface-hub and hf-xet
    "HF_XET_TELEMETRY_ENABLED": "false",  # hf-xet's own switch for its transfer reports
    "DO_NOT_TRACK": "1",  # the shared convention (https://donottrack.sh): huggingface-hub and hf-xet read it
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # huggingface-hub's CLI version check (we never run its CLI; belt and braces)
}


def telemetry_off(environ: MutableMapping[str, str] = os.environ) -> None:
    """Force every switch in TELEMETRY_OFF, whatever the environment said (os.environ reaches native code)."""
    environ.update(TELEMETRY_OFF)
