"""Malloc arena cap of the edge process (glibc on Linux)."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

from edge.memory import limit_malloc_arenas


def test_the_environment_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not ctypes.util.find_library("c"),
    reason="glibc only",
)
def test_arenas_are_capped_in_a_fresh_process() -> None:
    """In a new interpreter: the cap applies, and threads then share two arenas."""
    code = (
        "import os, threading, numpy as np\n"
        "os.environ.pop('MALLOC_ARENA_MAX', None)\n"
        "from edge.memory import limit_malloc_arenas\n"
        "print(limit_malloc_arenas(2))\n"
        "def work():\n"
        "    for _ in range(200):\n"
        "        a = np.ones(200_000); a.sum()\n"
        "ts = [threading.Thread(target=work) for _ in range(16)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.malloc_info(0, ctypes.c_void_p.in_dll(libc, 'stdout'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.splitlines()[0] == "True"
    # malloc_info lists one <heap nr=…> per arena in use
    assert out.count("<heap nr=") <= 2
