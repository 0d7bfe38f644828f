"""Type stub for the C tree walk (_walker.c)."""

from collections.abc import Callable
from typing import Any

FAMILIES: tuple[str, ...]

class Walker:
    def __init__(
        self,
        child: Callable[..., Any],
        scrub_string: Callable[..., Any],
        redact_whole: Callable[..., Any],
        scrub_number: Callable[..., Any],
        enter: Callable[[int], None],
        checkpoint: Callable[[], None],
        reset: Callable[[], None],
        unchanged: object,
        max_cached: int,
        cache_limit: int,
        max_depth: int,
        pause: bool,
    ) -> None: ...
    def walk(
        self, value: Any, plan: Any, path: list[str], meta: dict[str, Any] | None, depth: int, key: str | None
    ) -> Any:
        """Scrubber._value, in C: the value to keep."""
