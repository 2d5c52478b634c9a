"""How llama.cpp's OpenMP threads wait for each other, decided before the library loads.

Our llama.cpp links libgomp, which reads `OMP_WAIT_POLICY` and `GOMP_SPINCOUNT` once, when it is
loaded. Its default lets a waiting thread spin for 300,000 rounds (a few hundred microseconds) at
each of the hundreds of barriers per token: the fastest on an idle machine, and a collapse (3-80x
slower) as soon as another program wants one of the cores, because the threads that still run
burn their time slices waiting for the one that was descheduled. Fully passive waiting survives
contention but costs about 70% on an idle machine. A short spin keeps most of the idle speed and
hands the core back quickly; `bench/contention.py` measured the value below against both.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# Spin rounds before a waiting thread sleeps (libgomp's default is 300,000). Chosen with
# `make bench-contention`: see README, "Speed on a busy machine".
SPINCOUNT = "10000"

USER_KNOBS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def set_wait_policy(environ: MutableMapping[str, str] | None = None) -> bool:
    """Give libgomp a short spin unless the user chose a wait policy; True if we set it.

    Must run before llama.cpp (and so libgomp) is loaded: `homefire/__init__.py` calls it first.
    """
    env = os.environ if environ is None else environ
    if any(env.get(knob) for knob in USER_KNOBS):
        return False  # an explicit setting wins, even one we would not choose
    env["GOMP_SPINCOUNT"] = SPINCOUNT
    return True
