"""Type stub for the C family triggers (_triggers.c)."""

FAMILIES: tuple[str, ...]

def fired(text: str, /) -> int:
    """The bits (in FAMILIES order) of the families whose trigger fires on `text`."""
