"""homefire: a private assistant that runs entirely on your own machine."""

from .privacy_env import telemetry_off

# First thing, before any dependency loads: their telemetry reads these switches as it starts.
telemetry_off()

__version__ = "0.1.0"

# Before anything can load llama.cpp: libgomp reads its wait policy once, when it loads.
from .omp import set_wait_policy  # noqa: E402

set_wait_policy()
