"""Type stub for the C family triggers (_triggers.c)."""

FAMILIES: tuple[str, ...]

def fired(text: str, /) -> int:
    """The bits (in FAMILIES order) of the families whose trigger fires on `text`."""

def safe_shape(text: str, /) -> bool:
    """Whether engine._SAFE_SHAPE fullmatches `text` (a timestamp, a UUID or a short number)."""
