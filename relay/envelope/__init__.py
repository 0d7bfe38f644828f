"""The Sentry envelope wire format."""

from .categories import EVENT_ITEM_TYPES, JSON_ITEM_TYPES, category_of
from .model import Envelope, Item, parse_envelope
from .summary import JsonSummary, summarize, summarize_json, summarize_payloads

__all__ = [
    "EVENT_ITEM_TYPES",
    "JSON_ITEM_TYPES",
    "Envelope",
    "Item",
    "JsonSummary",
    "category_of",
    "parse_envelope",
    "summarize",
    "summarize_json",
    "summarize_payloads",
]
