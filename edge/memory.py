"""Process memory settings for a long-running node with many decoding threads.

glibc gives each thread that allocates under contention its own malloc arena (up to
8 per core). A node decodes every camera on its own thread and frees ~0.7 MB frames on
other threads, so the frames of 16 cameras end up scattered over dozens of arenas whose
free space is rarely handed back: RSS creeps up for tens of minutes. Two arenas keep the
same throughput (frame allocations are few and large) and make RSS level off early.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (before threads start); False where it does not apply.

    ``MALLOC_ARENA_MAX`` in the environment wins (it is read by glibc at start-up).
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_ARENA_MAX, max(1, arenas)))
    log.debug("malloc arenas capped at %d: %s", arenas, ok)
    return ok
