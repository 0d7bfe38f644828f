"""The event loop: uvloop when it is installed (`pip install 'relay[fast]'`), asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    """Which loop `run` uses: `uvloop` or `asyncio` (RELAY_EVENT_LOOP=asyncio forces the standard one)."""
    if os.environ.get("RELAY_EVENT_LOOP", "").lower() == "asyncio":
        return "asyncio"
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on the chosen loop."""
    if loop_name() == "uvloop":
        uvloop: Any = importlib.import_module("uvloop")  # optional: the `fast` extra
        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)


__all__ = ["loop_name", "run"]
