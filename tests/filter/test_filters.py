"""Inbound filters, fingerprint rules and Sentry's fingerprinting syntax, unit by unit."""

from __future__ import annotations

from typing import Any

import pytest

from relay.config import FiltersConfig, parse_config
from relay.config.model import FingerprintRule
from relay.envelope.event import EventView
from relay.errors import ConfigError
from relay.filter import fingerprint_for, matching_filter
from relay.filter.sentry_syntax import FingerprintSyntaxError, parse_fingerprinting


def decide(filters: FiltersConfig, event: dict[str, Any], category: str = "error") -> str | None:
    """The filter that drops `event`, if any."""
    return matching_filter(filters, category, EventView(event))


def exception(kind: str, value: str = "", frames: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An event with one exception."""
    return {"exception": {"values": [{"type": kind, "value": value, "stacktrace": {"frames": frames or []}}]}}


def test_exception_types_and_messages() -> None:
    """Types match by glob; messages match the message and exception values, case-insensitively."""
    filters = FiltersConfig(exception_types=("KeyboardInterrupt", "Broken*"), messages=("*connection reset by peer*",))
    assert decide(filters, exception("KeyboardInterrupt")) == "exception_types"
    assert decide(filters, exception("BrokenPipeError")) == "exception_types"
    assert decide(filters, exception("OSError", "Connection Reset by peer (104)")) == "messages"
    assert decide(filters, {"logentry": {"formatted": "upstream: connection reset by peer"}}) == "messages"
    assert decide(filters, {"message": "connection reset by peer"}) == "messages"
    assert decide(filters, exception("ValueError", "bad input")) is None


def test_transactions_releases_and_environments() -> None:
    """Transaction names filter only transactions; releases and environments filter everything."""
    filters = FiltersConfig(transactions=("/healthz", "*/ping"), releases=("*-dev",), environments=("local",))
    assert decide(filters, {"transaction": "/healthz"}, "transaction") == "transactions"
    assert decide(filters, {"transaction": "/api/ping"}, "transaction") == "transactions"
    assert decide(filters, {"transaction": "/healthz"}, "error") is None
    assert decide(filters, {"release": "1.2-dev"}) == "releases"
    assert decide(filters, {"environment": "local"}, "transaction") == "environments"
    assert decide(filters, {"environment": "production", "release": "1.2"}) is None


@pytest.mark.parametrize(
    "event",
    [
        {"request": {"url": "http://localhost:8000/checkout"}},
        {"request": {"url": "http://127.0.0.1/x"}},
        {"request": {"url": "http://[::1]:3000/"}},
        {"request": {"headers": {"Host": "localhost:5000"}}},
        {"request": {"headers": [["Origin", "http://app.localhost:3000"]]}},
        {"user": {"ip_address": "127.0.0.1"}},
        {"user": {"ip_address": "::1"}},
    ],
)
def test_localhost_events(event: dict[str, Any]) -> None:
    """Events from localhost URLs, hosts, origins or loopback user IPs are filtered."""
    assert decide(FiltersConfig(localhost=True), event) == "localhost"


def test_non_local_events_pass_the_localhost_filter() -> None:
    """A public URL and IP are not localhost."""
    event = {"request": {"url": "https://shop.example.com/"}, "user": {"ip_address": "203.0.113.9"}}
    assert decide(FiltersConfig(localhost=True), event) is None


def test_browser_extensions_and_crawlers() -> None:
    """Extension frames and known extension noise; crawler user agents."""
    filters = FiltersConfig(browser_extensions=True, web_crawlers=True)
    frames = [{"abs_path": "chrome-extension://abcdef/content.js", "function": "inject"}]
    assert decide(filters, exception("TypeError", "x is undefined", frames)) == "browser_extensions"
    assert decide(filters, exception("ReferenceError", "Can't find variable: ZiteReader")) == "browser_extensions"
    bot = {"request": {"headers": {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}}}
    assert decide(filters, bot) == "web_crawlers"
    human = {"request": {"headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"}}}
    assert decide(filters, human) is None


def rules(yaml_text: str) -> tuple[FingerprintRule, ...]:
    """Top-level fingerprint rules parsed by the real loader."""
    return parse_config(f"fingerprints:\n{yaml_text}", "relay.yml", {}).fingerprints


RULES = rules(
    """  - match: {error.type: DatabaseError}
    fingerprint: [database-error]
  - match: {error.value: "Connection timeout*"}
    fingerprint: [connection-timeout]
  - match: {stack.function: process_payment}
    fingerprint: [payment-processing-error, "{{ default }}"]
  - match: {error.type: "Http*", "!error.value": "*404*"}
    fingerprint: [http-error, "{{ error.type }}"]
"""
)


def test_first_matching_rule_wins_and_default_stays_a_component() -> None:
    """Rules apply in order; `{{ default }}` is kept for Sentry to expand."""
    assert fingerprint_for(RULES, exception("DatabaseError", "Connection timeout after 5s")) == ["database-error"]
    assert fingerprint_for(RULES, exception("OSError", "connection timeout after 5s")) == ["connection-timeout"]
    frames = [{"function": "main"}, {"function": "process_payment", "in_app": True}]
    assert fingerprint_for(RULES, exception("ValueError", "x", frames)) == ["payment-processing-error", "{{ default }}"]
    assert fingerprint_for(RULES, exception("ValueError", "x")) is None


def test_negation_and_variables() -> None:
    """`!` negates a matcher; `{{ error.type }}` is filled in."""
    assert fingerprint_for(RULES, exception("HttpError", "500 upstream")) == ["http-error", "HttpError"]
    assert fingerprint_for(RULES, exception("HttpError", "404 not found")) is None


def test_exception_matchers_hold_for_one_exception() -> None:
    """Type and value must match the same exception of a chain, as in Sentry."""
    chain = {"exception": {"values": [{"type": "HttpError", "value": "404"}, {"type": "KeyError", "value": "500"}]}}
    assert fingerprint_for(RULES, chain) is None


def test_an_sdk_fingerprint_is_kept_unless_override() -> None:
    """A fingerprint set by the SDK wins, unless the rule says override: true."""
    event = {**exception("DatabaseError"), "fingerprint": ["my-own"]}
    assert fingerprint_for(RULES, event) is None
    forced = rules("  - {match: {error.type: DatabaseError}, fingerprint: [db], override: true}\n")
    assert fingerprint_for(forced, event) == ["db"]
    assert fingerprint_for(RULES, {**exception("DatabaseError"), "fingerprint": ["{{ default }}"]}) == [
        "database-error"
    ]


def test_rules_match_before_scrubbing() -> None:
    """A message rule keeps working on values that scrubbing will replace (the stage runs first)."""
    by_message = rules('  - {match: {message: "*failed for alice@example.com*"}, fingerprint: [alice]}\n')
    assert fingerprint_for(by_message, {"message": "login failed for alice@example.com"}) == ["alice"]


def test_config_errors_name_the_key() -> None:
    """Unknown matchers, unsafe variables and bad filters are reported with their path."""
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "filters: {localhost: yes-please, exception_type: [X]}\n"
            "fingerprints:\n  - {match: {error.typ: X}, fingerprint: ['{{ error.value }}']}\n",
            "relay.yml",
            {},
        )
    text = "\n".join(caught.value.problems)
    assert "relay.yml: filters.localhost: expected true or false" in text
    assert "relay.yml: filters.exception_type: unknown key" in text
    assert "fingerprints[0].match.error.typ: unknown matcher 'error.typ'; did you mean 'error.type'?" in text
    assert "fingerprints[0].fingerprint[0]: fingerprint variable {{ error.value }} is not supported" in text


def test_sentry_text_syntax() -> None:
    """Sentry's `matcher:value -> fingerprint` lines, quotes, negation, commas and comments."""
    parsed = parse_fingerprinting(
        "# comment\n"
        "error.type:DatabaseError -> database-error\n"
        'error.value:"Connection timeout*" -> connection-timeout\n'
        "stack.function:process_payment -> payment-processing-error, {{ default }}\n"
        '!type:Foo logger:"app.*" -> app {{ level }}\n'
    )
    assert [(r.matchers, r.fingerprint) for r in parsed][:2] == [
        (((m := parsed[0].matchers[0]),), ("database-error",)),
        ((parsed[1].matchers[0],), ("connection-timeout",)),
    ]
    assert (m.key, m.pattern, m.negated) == ("error.type", "DatabaseError", False)
    assert parsed[1].matchers[0].pattern == "Connection timeout*"
    assert parsed[2].fingerprint == ("payment-processing-error", "{{ default }}")
    last = parsed[3]
    assert [(x.key, x.pattern, x.negated) for x in last.matchers] == [
        ("error.type", "Foo", True),
        ("logger", "app.*", False),
    ]
    assert last.fingerprint == ("app", "{{ level }}")


def test_sentry_text_syntax_errors_list_every_line() -> None:
    """Unreadable or inexpressible lines are errors with their line numbers, never dropped."""
    with pytest.raises(FingerprintSyntaxError) as caught:
        parse_fingerprinting('error.type:X -> y title="T"\nno arrow here\nfoo:bar -> z\n', "rules.txt")
    problems = caught.value.problems
    assert problems[0].startswith("rules.txt:1: the `title=` attribute")
    assert problems[1].startswith("rules.txt:2: expected")
    assert problems[2].startswith("rules.txt:3: unknown matcher 'foo'")
