"""The Sentry envelope wire format."""

from .categories import EVENT_ITEM_TYPES, JSON_ITEM_TYPES, category_of
from .model import Envelope, Item, parse_envelope

__all__ = ["EVENT_ITEM_TYPES", "JSON_ITEM_TYPES", "Envelope", "Item", "category_of", "parse_envelope"]
