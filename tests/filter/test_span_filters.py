"""span_event: what the transaction filters read from a streamed span (v2 attributes, v1 data)."""

from __future__ import annotations

from relay.config import FiltersConfig
from relay.envelope.event import EventView
from relay.filter.inbound import matching_filter
from relay.filter.spans import span_event

_KEYS = {"agent": "user_agent.original", "address": "client.address"}


def _v2(**attributes: str) -> dict[str, object]:
    """A v2 span (as JS v11 and sentry-python stream them) with these attributes (`sentry_x_y` is `sentry.x.y`)."""
    return {
        "name": "GET /cart",
        "is_segment": False,
        "attributes": {
            _KEYS.get(key, key.replace("_", ".")): {"type": "string", "value": v} for key, v in attributes.items()
        },
    }


def test_v2_span_reads_segment_environment_release_agent_and_address() -> None:
    """The segment's name, environment, release, user agent and client address come from the attributes."""
    event = span_event(
        _v2(
            sentry_segment_name="/healthz",
            sentry_environment="staging",
            sentry_release="shop@1.2",
            agent="Googlebot/2.1",
            address="127.0.0.1",
        )
    )
    assert event["transaction"] == "/healthz"
    assert event["environment"] == "staging" and event["release"] == "shop@1.2"
    assert event["request"]["headers"] == {"User-Agent": "Googlebot/2.1"}
    assert event["user"] == {"ip_address": "127.0.0.1"}


def test_each_transaction_filter_applies_to_a_span() -> None:
    """environments, releases, transactions, web_crawlers and localhost decide for a span as for a transaction."""
    cases = [
        (FiltersConfig(environments=("staging",)), _v2(sentry_environment="staging"), "environments"),
        (FiltersConfig(releases=("shop@1.*",)), _v2(sentry_release="shop@1.2"), "releases"),
        (FiltersConfig(transactions=("/healthz",)), _v2(sentry_segment_name="/healthz"), "transactions"),
        (FiltersConfig(web_crawlers=True), _v2(agent="Googlebot/2.1"), "web_crawlers"),
        (FiltersConfig(localhost=True), _v2(address="127.0.0.1"), "localhost"),
        (FiltersConfig(environments=("staging",)), _v2(sentry_environment="production"), None),
    ]
    for filters, span, expected in cases:
        assert matching_filter(filters, "transaction", EventView(span_event(span))) == expected


def test_segment_span_names_itself_and_v1_data_is_read() -> None:
    """A segment span without the attribute is its own segment; a v1 span's `data` holds the same keys."""
    assert span_event({"name": "/healthz", "is_segment": True})["transaction"] == "/healthz"
    assert span_event({"data": {"sentry.environment": "dev"}})["environment"] == "dev"
    assert span_event({"attributes": "not a mapping"}) == {"type": "transaction", "request": {"headers": {}}}
