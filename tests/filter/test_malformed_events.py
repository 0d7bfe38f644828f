"""Filters and fingerprint rules on malformed events: nothing a client sends makes them raise, over HTTP a 200."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from relay.config import FiltersConfig, parse_config
from relay.envelope.event import EventView
from relay.filter import fields, fingerprint_for, inbound, matching_filter

from ..conftest import RelayFactory, state_of
from ..support import FakeUpstream, auth_header, envelope_bytes, outcome_totals, received_total
from .hostile_events import DEEP, HUGE_INT, events, nested, rule_failures

ALL_FILTERS = FiltersConfig(
    exception_types=("*Error",),
    messages=("*boom*",),
    transactions=("/health*",),
    releases=("*-dev",),
    environments=("local",),
    localhost=True,
    browser_extensions=True,
    web_crawlers=True,
)
FILTER_NAMES = (
    "releases", "environments", "transactions", "exception_types", "messages", "browser_extensions", "localhost",
    "web_crawlers",
)  # fmt: skip
# One rule per matcher key, and one filling every variable.
RULES = parse_config(
    """fingerprints:
  - {match: {error.type: "*Error", error.value: "*x*"}, fingerprint: [a]}
  - {match: {stack.function: "f*", stack.module: "m*", stack.abs_path: "/*", stack.package: "p*", app: "yes"},
     fingerprint: [b]}
  - {match: {message: "*m*", logger: "l*", level: error, release: "r*", environment: e, transaction: "/t*"},
     fingerprint: [c]}
  - {match: {sdk: "sentry.*", family: other, tags.region: "eu-*"}, fingerprint: [d]}
  - {match: {"!error.type": Nothing}, fingerprint: ["{{ error.type }}", "{{ function }}", "{{ module }}",
     "{{ level }}", "{{ logger }}", "{{ default }}"], override: true}
""",
    "relay.yml",
    {},
).fingerprints


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_field_extraction_never_raises(event: dict[str, Any]) -> None:
    """Every field a filter or fingerprint rule reads is extracted from any event without an exception."""
    view = EventView(event)
    for host in fields.hosts(view):
        assert isinstance(host, str)
    for name in ("host", "origin", "referer", "user-agent"):
        assert fields.header(view, name) is None or isinstance(fields.header(view, name), str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.tags(view).items())
    for key in ("release", "environment", "transaction", "platform"):
        view.text(key)
    view.exception_types()
    view.messages()
    list(view.frames())
    view.user_ip()
    view.sdk_name()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_filters_and_rules_never_raise_on_malformed_events(event: dict[str, Any]) -> None:
    """Every filter and fingerprint rule decides on any event without raising, and without needing the guard."""
    with rule_failures("relay.filter") as failures:
        for category in ("error", "transaction"):
            assert matching_filter(ALL_FILTERS, category, EventView(event)) in (None, *FILTER_NAMES)
        fingerprint = fingerprint_for(RULES, event)
        assert fingerprint is None or all(isinstance(part, str) for part in fingerprint)
    assert failures == []


@pytest.mark.parametrize("url", ["http://[::1/x", "http://[zz]/", "http://\uff03@x/", "http://user:pw@[/"])
def test_a_malformed_url_has_no_host(url: str) -> None:
    """A URL urlsplit refuses (such as `http://[::1/x`) gives no host, so the localhost filter doesn't match it."""
    event = {"request": {"url": url, "headers": {"Referer": url, "Origin": url}}}
    assert fields.url_host(url) is None
    assert fields.hosts(EventView(event)) == []
    assert matching_filter(FiltersConfig(localhost=True), "error", EventView(event)) is None


def test_other_hosts_still_count_next_to_a_malformed_url() -> None:
    """A malformed URL doesn't hide a Host header that is localhost."""
    event = {"request": {"url": "http://[::1/x", "headers": [["Host", "localhost:8000"]]}}
    assert matching_filter(FiltersConfig(localhost=True), "error", EventView(event)) == "localhost"


def test_unprintable_header_and_tag_values_are_left_out() -> None:
    """Names and values too deep or too long to print are skipped, not raised on; printable ones are kept."""
    event = {
        "request": {"headers": [[nested(DEEP), "x"], ["User-Agent", nested(DEEP)], ["Host", HUGE_INT], ["Referer", 1]]},
        "tags": [["deep", nested(DEEP)], ["huge", HUGE_INT], ["n", 5], ["b", True], [nested(DEEP), "v"]],
    }
    view = EventView(event)
    assert fields.header(view, "user-agent") is None
    assert fields.header(view, "host") is None
    assert fields.header(view, "referer") == "1"
    assert fields.tags(view) == {"n": "5", "b": "True"}


def test_a_filter_that_raises_does_not_match_and_the_next_one_decides(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in one filter reads as "no match"; it is logged by filter name and exception type, never data."""

    def broken(_event: EventView) -> bool:
        raise ValueError("secret-payload-text")

    monkeypatch.setattr(inbound, "_from_localhost", broken)
    filters = FiltersConfig(localhost=True, web_crawlers=True)
    event = {"request": {"url": "http://localhost/", "headers": {"User-Agent": "Googlebot/2.1"}}}
    with caplog.at_level(logging.DEBUG, logger="relay.filter"):
        assert matching_filter(filters, "error", EventView(event)) == "web_crawlers"
        assert matching_filter(filters, "error", EventView(event)) == "web_crawlers"
    records = [r for r in caplog.records if r.getMessage().startswith("rule failed")]
    assert [(r.levelno, r.__dict__["rule"], r.__dict__["error"]) for r in records][-1] == (
        logging.DEBUG,  # the first of its kind was a WARNING; repeats are not
        "localhost",
        "ValueError",
    )
    assert all("secret-payload-text" not in str(value) for r in records for value in r.__dict__.values())


def test_a_fingerprint_rule_that_raises_is_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule whose matching raises is passed over for the next rule, logged by its place in the config."""
    from relay.filter import fingerprints

    real = fingerprints._matches

    def flaky(rule: Any, view: EventView) -> bool:
        if rule is RULES[0]:
            raise RecursionError("deep")
        return real(rule, view)

    monkeypatch.setattr(fingerprints, "_matches", flaky)
    event = {"exception": {"values": [{"type": "KeyError", "value": "x"}]}, "level": "error"}
    with caplog.at_level(logging.DEBUG, logger="relay.filter"):
        assert fingerprint_for(RULES, event) == ["KeyError", "<no-function>", "<no-module>", "error", "<no-logger>",
                                                 "{{ default }}"]  # fmt: skip
    record = next(r for r in caplog.records if r.getMessage().startswith("rule failed"))
    assert record.__dict__["rule"] == "relay.yml: fingerprints[0]" and record.__dict__["error"] == "RecursionError"


# -- over HTTP ----------------------------------------------------------------------------------------------


def event_envelope(event: bytes) -> bytes:
    """An envelope with one error event, given as JSON text (orjson can't write what we want to send)."""
    return envelope_bytes({"event_id": "a" * 32}, ({"type": "event"}, event))


FILTERS = """filters:
  localhost: true
  web_crawlers: true
fingerprints:
  - {match: {tags.region: "eu-*"}, fingerprint: [eu]}
"""


async def test_malformed_url_is_forwarded_not_500(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`http://[::1/x` as request.url with the localhost filter on: 200 and forwarded, never a 500."""
    client = await make_relay(FILTERS)
    event = orjson.dumps({"message": "hi", "request": {"url": "http://[::1/x"}})
    resp = await client.post("/api/42/envelope/", data=event_envelope(event), headers=auth_header())
    assert resp.status == 200, await resp.text()
    await upstream.wait_for(1)
    forwarded = upstream.received[0].envelope.items[0].json()
    assert forwarded["request"]["url"] == "http://[::1/x"
    state = state_of(client)
    assert outcome_totals(state) == {("forwarded", "none", "error"): 1}
    assert received_total(state) == 1


async def test_malformed_url_with_localhost_host_is_filtered(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The same URL next to a `Host: localhost` header is filtered as the localhost filter says."""
    client = await make_relay(FILTERS)
    event = orjson.dumps({"request": {"url": "http://[::1/x", "headers": {"Host": "localhost:3000"}}})
    resp = await client.post("/api/42/envelope/", data=event_envelope(event), headers=auth_header())
    assert resp.status == 200
    assert outcome_totals(state_of(client)) == {("filtered", "filter:localhost", "error"): 1}
    assert upstream.attempts == []


async def test_unprintably_deep_headers_and_tags_are_forwarded(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """Header pairs and tags nested a thousand deep (which str() can't print) don't fail the filters: 200."""
    deep = b"[" * DEEP + b"]" * DEEP
    event = (
        b'{"message": "hi", "request": {"headers": [[' + deep + b', "x"], ["User-Agent", ' + deep + b"]]},"
        b' "tags": [["region", ' + deep + b"]]}"
    )
    client = await make_relay(FILTERS)
    resp = await client.post("/api/42/envelope/", data=event_envelope(event), headers=auth_header())
    assert resp.status == 200, await resp.text()
    await upstream.wait_for(1)
    assert "fingerprint" not in upstream.received[0].envelope.items[0].json()
