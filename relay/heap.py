"""Keeping the cyclic garbage collector off the long-lived heap.

The relay's long-lived objects (compiled rules, detectors' regexes, plan and string caches, the server's
own machinery) are built at start-up and on a rules reload, then live on. Every full (oldest-generation)
collection walks all of them again, although they are never garbage; on a scrubbing workload that was a fifth
of the CPU time per event. `settle()` collects once and freezes what survives (`gc.freeze`): later
collections skip it. Called after start-up, after each rules reload (first unfreezing, so that a replaced
registry can be collected) and in the scrubbing child process once it has compiled its rules.
"""

from __future__ import annotations

import gc

from .libc import libc


def settle() -> None:
    """Collect everything collectable, then exempt what survives from later collections."""
    gc.unfreeze()  # what an earlier settle froze (a registry since replaced) can be collected again
    gc.collect()
    gc.freeze()


__all__ = ["settle", "tune_malloc"]


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_malloc() -> bool:
    """Make glibc give large freed buffers back to the system: a decompressed body or a big payload (MiBs) is
    allocated with mmap (a fixed threshold of 256 KiB, where glibc would raise it to 32 MiB after the first such
    buffer is freed, and keep the rest in its heap), and at most two arenas (each worker thread would otherwise
    keep its own heap of freed buffers). Without it, a few decompression bombs left RSS at 220 MB after they
    were refused. True where glibc's mallopt was found (Linux); elsewhere nothing happens."""
    c = libc()
    mallopt = getattr(c, "mallopt", None) if c is not None else None
    if mallopt is None:
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 256 * 1024) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 1024 * 1024) == 1 and ok
    return bool(mallopt(_M_ARENA_MAX, 2) == 1) and ok
