"""Container items count as the items inside them, bounded so a lying `item_count` can't inflate the counts."""

from __future__ import annotations

import pytest

from relay.envelope import Envelope, Item

LOGS = "application/vnd.sentry.items.log+json"


@pytest.mark.parametrize(
    ("headers", "payload", "quantity"),
    [
        ({"type": "log", "item_count": 3, "content_type": LOGS}, b'{"items":[{},{},{}]}', 3),
        ({"type": "log", "item_count": 3}, b'{"items":[{},{},{}]}', 1),  # no container content type
        ({"type": "event", "item_count": 3, "content_type": LOGS}, b"{}", 1),  # not a container type
        ({"type": "log", "item_count": 10**12, "content_type": LOGS}, b'{"items":[{},{}]}', 5),  # 17 bytes // 3
        ({"type": "log", "item_count": "3", "content_type": LOGS}, b'{"items":[{},{},{}]}', 1),
        ({"type": "log", "item_count": -5, "content_type": LOGS}, b'{"items":[]}', 1),
        ({"type": "span", "item_count": 2, "content_type": "application/vnd.sentry.items.span.v2+json"}, b"x" * 50, 2),
    ],
)
def test_quantity(headers: dict[str, object], payload: bytes, quantity: int) -> None:
    """`item_count` counts only for container types with a container content type, within the payload's size."""
    assert Item(headers, payload).quantity == quantity


def test_categories_repeat_a_container_per_inner_item() -> None:
    """An envelope's categories list a container once per item inside it, beside its other items."""
    envelope = Envelope(
        {},
        [
            Item({"type": "log", "item_count": 2, "content_type": LOGS}, b'{"items":[{},{}]}'),
            Item({"type": "event"}, b"{}"),
        ],
    )
    assert envelope.categories() == ["log_item", "log_item", "error"]
