"""Inbound filters on streamed spans: a span is filtered as the transaction it belongs to would be.

SDKs that stream spans (JS v11 by default, sentry-python's span streaming) send no transaction: the segment's
name, environment and release ride on each span as attributes (`sentry.segment.name`, `sentry.environment`,
`sentry.release`), beside the user agent and client address. Each span is read as the transaction it stands
for, and the transaction filters (`transactions`, `environments`, `releases`, `localhost`, `web_crawlers`)
decide for it, so a health check's spans are dropped like its transaction would be. Spans come one per item
(v1) or many in a container (`{"items": [...]}`); from a container only the filtered spans are taken out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..config import FiltersConfig
from ..envelope import Item
from ..envelope.event import EventView
from ..outcomes import Outcome
from ..pipeline import ProcessingContext
from .fields import scalar_text
from .inbound import matching_filter

SPAN_TYPES = frozenset({"span", "otel_span"})


def filter_spans(ctx: ProcessingContext, filters: FiltersConfig) -> None:
    """Take the spans a filter matches out of the envelope, each counted as `filtered`/`filter:<name>`."""
    for item in [item for item in ctx.envelope.items if item.type in SPAN_TYPES]:
        payload = item.json_object()
        if payload is None:
            continue
        inner = payload.get("items")
        if isinstance(inner, list):
            _filter_container(ctx, filters, item, payload, inner)
        else:
            name = _matching(filters, payload)
            if name is not None:
                ctx.drop([item], Outcome.FILTERED, f"filter:{name}")


def _filter_container(
    ctx: ProcessingContext, filters: FiltersConfig, item: Item, payload: dict[str, Any], spans: list[Any]
) -> None:
    kept: list[Any] = []
    dropped: Counter[str] = Counter()
    for span in spans:
        name = _matching(filters, span) if isinstance(span, dict) else None
        if name is None:
            kept.append(span)
        else:
            dropped[name] += 1
    if not dropped:
        return
    if not kept:
        ctx.envelope.items = [other for other in ctx.envelope.items if other is not item]
    else:
        payload["items"] = kept
        item.set_json(payload)
        item.headers["item_count"] = len(kept)
    for name, count in dropped.items():
        ctx.outcomes.record(Outcome.FILTERED, f"filter:{name}", [item.category] * count, ctx.target)


def _matching(filters: FiltersConfig, span: dict[str, Any]) -> str | None:
    return matching_filter(filters, "transaction", EventView(span_event(span)))


def span_event(span: dict[str, Any]) -> dict[str, Any]:
    """The fields of the transaction a span stands for, as the filters read them from an event."""
    attributes = span.get("attributes")
    data = span.get("data")
    values = attributes if isinstance(attributes, dict) else data if isinstance(data, dict) else {}

    def value(*keys: str) -> str | None:
        for key in keys:
            raw = values.get(key)
            if isinstance(raw, dict):  # v2 attributes: {"type": "string", "value": ...}
                raw = raw.get("value")
            text = scalar_text(raw)
            if text is not None:
                return text
        return None

    name = value("sentry.segment.name", "sentry.transaction")
    if name is None and span.get("is_segment") is True:
        name = scalar_text(span.get("name"))
    event: dict[str, Any] = {"type": "transaction"}
    for key, found in (
        ("transaction", name),
        ("environment", value("sentry.environment", "environment")),
        ("release", value("sentry.release", "release")),
    ):
        if found is not None:
            event[key] = found
    headers = {}
    agent = value("user_agent.original", "http.user_agent")
    if agent is not None:
        headers["User-Agent"] = agent
    url = value("url.full", "http.url")
    event["request"] = {"headers": headers, **({"url": url} if url is not None else {})}
    address = value("client.address", "user.ip_address", "sentry.user.ip")
    if address is not None:
        event["user"] = {"ip_address": address}
    return event


__all__ = ["SPAN_TYPES", "filter_spans", "span_event"]
