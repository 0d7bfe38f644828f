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


def settle() -> None:
    """Collect everything collectable, then exempt what survives from later collections."""
    gc.unfreeze()  # what an earlier settle froze (a registry since replaced) can be collected again
    gc.collect()
    gc.freeze()


__all__ = ["settle"]
