"""Keeping unscrubbed payloads out of core dumps.

A crashing process's memory holds the events it was scrubbing, before scrubbing. At start the relay (each
worker, and the scrubbing child) sets its core-file size limit to 0 (`RLIMIT_CORE`, inherited by children)
and marks itself non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core dump, whatever the limit or a
`core_pattern` pipe says, and no ptrace attach by other users). An operator who needs core dumps to debug
the relay opts in with `core_dumps: true` in the config.
"""

from __future__ import annotations

import ctypes
import resource
import sys

from .libc import libc

_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3


def forbid_core_dumps() -> list[str]:
    """No core dumps from this process or its children; what couldn't be done, as sentences (else [])."""
    problems: list[str] = []
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        problems.append(f"could not set RLIMIT_CORE to 0: {exc}")
    if sys.platform.startswith("linux"):
        if _prctl(_PR_SET_DUMPABLE, 0) != 0:
            problems.append("could not mark the process non-dumpable (prctl PR_SET_DUMPABLE)")
    return problems


def dumpable() -> bool | None:
    """Whether this process may dump core (prctl PR_GET_DUMPABLE), or None where that can't be asked."""
    if not sys.platform.startswith("linux"):
        return None
    value = _prctl(_PR_GET_DUMPABLE, 0)
    return None if value < 0 else value != 0


def _prctl(option: int, value: int) -> int:
    c = libc()
    if c is None:
        return -1
    return int(c.prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                          ctypes.c_ulong(0)))  # fmt: skip


__all__ = ["dumpable", "forbid_core_dumps"]
