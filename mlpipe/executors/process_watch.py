"""Children that die with their parent: Linux's ``PR_SET_PDEATHSIG``, a no-op elsewhere."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1


@functools.cache
def load_prctl() -> Callable[..., Any] | None:
    """libc's ``prctl`` (None off Linux). Call it before forking when the child must not load
    libraries (a ``preexec_fn``)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl  # type: ignore[no-any-return]


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent thread ends.

    ``0`` clears it. Returns False where the platform has no such call (the caller then
    relies on its other checks, such as comparing ``os.getppid()``).
    """
    prctl = load_prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
