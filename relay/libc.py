"""The C library, loaded once, for the few calls Python has no wrapper for (prctl, mallopt)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def libc() -> ctypes.CDLL | None:
    """glibc (or the platform's C library) on Linux; None elsewhere or where it can't be found."""
    if not sys.platform.startswith("linux"):
        return None
    path = ctypes.util.find_library("c")
    return None if path is None else ctypes.CDLL(path, use_errno=True)


__all__ = ["libc"]
