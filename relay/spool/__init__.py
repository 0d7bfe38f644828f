"""The spool: accepted envelopes waiting for the forwarder."""

from .base import Entry, Spool
from .memory import MemorySpool

__all__ = ["Entry", "MemorySpool", "Spool"]
