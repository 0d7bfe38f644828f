"""The spool: accepted envelopes waiting for the forwarder (durable on SQLite, or in memory)."""

from .base import Entry, Spool
from .memory import MemorySpool
from .sqlite import SqliteSpool

__all__ = ["Entry", "MemorySpool", "Spool", "SqliteSpool"]
