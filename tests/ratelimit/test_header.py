"""The X-Sentry-Rate-Limits and Retry-After headers: parsing as Relay does, rendering as SDKs read it."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from relay.ratelimit import RateLimit, parse_rate_limits, parse_retry_after, render_rate_limits


def sdk_parse(header: str) -> list[tuple[int, list[str]]]:
    """What sentry-python's transport does with the header: `int()` on the seconds, split categories on ';'."""
    parsed = []
    for limit in header.split(","):
        retry_after, categories = limit.strip().split(":")[:2]
        parsed.append((int(retry_after), categories.split(";") if categories else []))
    return parsed


# -- parse_rate_limits ---------------------------------------------------------------


def test_parse_relay_example() -> None:
    """Relay's own example: an organization limit with a reason, and a project limit on two categories."""
    limits = parse_rate_limits("42::organization:my_limit, 4711:transaction;security:project")
    assert limits == [
        RateLimit(42.0, frozenset(), "organization", "my_limit"),
        RateLimit(4711.0, frozenset({"transaction", "security"}), "project"),
    ]


def test_parse_skips_garbage_entries() -> None:
    """Entries that are not `seconds:categories…` are skipped; the valid ones survive."""
    header = "42::organization:my_limit, invalid, 4711:foobar;transaction;security:project, abc:error, -5:error, ,"
    limits = parse_rate_limits(header)
    assert [(limit.retry_after, limit.scope) for limit in limits] == [(42.0, "organization"), (4711.0, "project")]
    assert limits[1].categories == frozenset({"foobar", "transaction", "security"})


@pytest.mark.parametrize("header", ["", "invalid", ",,,", "nan:error", "inf:error:key", "  :  "])
def test_parse_nothing_valid(header: str) -> None:
    """Headers with no valid entry parse to no limits instead of raising."""
    assert parse_rate_limits(header) == []


def test_parse_namespaces() -> None:
    """The fifth field lists metric namespaces; the reason may be empty."""
    (limit,) = parse_rate_limits("42:metric_bucket:organization::custom;spans")
    assert limit == RateLimit(42.0, frozenset({"metric_bucket"}), "organization", None, ("custom", "spans"))


def test_parse_empty_namespaces_after_trailing_colon() -> None:
    """A trailing colon means no namespaces, and the reason is kept."""
    (limit,) = parse_rate_limits("42:metric_bucket:organization:some_reason:")
    assert limit.reason_code == "some_reason"
    assert limit.namespaces == ()


def test_parse_empty_reason_is_none() -> None:
    """An empty reason field is no reason."""
    (limit,) = parse_rate_limits("60:error:project:")
    assert limit.reason_code is None
    assert limit.scope == "project"


def test_parse_defaults_scope_to_organization() -> None:
    """Without a scope field (or with an empty one) a limit is organization-wide."""
    assert [limit.scope for limit in parse_rate_limits("60:error, 60:error:")] == ["organization", "organization"]


def test_parse_float_retry_after() -> None:
    """Fractional seconds are kept as a float."""
    (limit,) = parse_rate_limits("2.5:error:key")
    assert limit.retry_after == 2.5


def test_parse_tolerates_whitespace() -> None:
    """Spaces around entries and categories are ignored."""
    (limit,) = parse_rate_limits("  60 : error ; transaction : key ")
    assert limit == RateLimit(60.0, frozenset({"error", "transaction"}), "key")


def test_only_unknown_categories_limit_nothing_known() -> None:
    """A limit naming only unknown categories must not turn into an all-categories limit."""
    (limit,) = parse_rate_limits("42:foo;bar:organization")
    assert limit.categories
    assert not limit.applies_to("error")
    assert not limit.applies_to("transaction")


def test_applies_to() -> None:
    """No categories means every category; otherwise only those listed."""
    assert RateLimit(1, frozenset()).applies_to("attachment")
    limit = RateLimit(1, frozenset({"error"}))
    assert limit.applies_to("error")
    assert not limit.applies_to("attachment")


# -- render ---------------------------------------------------------------------------


def test_render_relay_example() -> None:
    """Rendering Relay's examples gives back Relay's format."""
    assert RateLimit(42, frozenset(), "organization", "my_limit").render() == "42::organization:my_limit"
    assert RateLimit(4711, frozenset({"security"}), "project").render() == "4711:security:project"
    limits = [
        RateLimit(42, frozenset({"metric_bucket"}), "organization", "my_limit", ("custom", "spans")),
        RateLimit(42, frozenset({"metric_bucket"}), "organization", None, ("spans",)),
    ]
    assert [limit.render() for limit in limits] == [
        "42:metric_bucket:organization:my_limit:custom;spans",
        "42:metric_bucket:organization::spans",
    ]


def test_render_empty_categories() -> None:
    """A limit on all categories renders an empty category field."""
    assert RateLimit(60, frozenset(), "key").render() == "60::key"


@pytest.mark.parametrize(
    ("seconds", "expected"), [(2.0, "2"), (2.1, "3"), (59.001, "60"), (0.2, "1"), (0.0, "1"), (4711, "4711")]
)
def test_render_rounds_up_to_whole_seconds(seconds: float, expected: str) -> None:
    """Seconds are rendered as integers, rounded up and at least 1, so SDKs never retry early."""
    assert RateLimit(seconds, frozenset({"error"}), "project").render() == f"{expected}:error:project"


def test_render_with_time_left() -> None:
    """render(left) uses the time left instead of the original retry_after."""
    assert RateLimit(60, frozenset({"error"}), "project").render(12.3) == "13:error:project"


def test_render_parse_round_trip() -> None:
    """What render() emits parses back to the same limit."""
    limit = RateLimit(30, frozenset({"transaction", "security"}), "project", "quota", ("custom",))
    assert parse_rate_limits(limit.render()) == [limit]


def test_render_rate_limits_is_sdk_readable() -> None:
    """The joined header parses with sentry-python's int() on every entry."""
    header = render_rate_limits(
        [
            (RateLimit(60, frozenset({"error"}), "project"), 59.4),
            (RateLimit(10, frozenset(), "organization", "r"), 0.5),
            (RateLimit(5, frozenset({"transaction", "span"}), "key"), 4.01),
        ]
    )
    assert header == "60:error:project, 1::organization:r, 5:span;transaction:key"
    assert sdk_parse(header) == [(60, ["error"]), (1, []), (5, ["span", "transaction"])]


def test_render_rate_limits_empty() -> None:
    """No limits renders an empty header value."""
    assert render_rate_limits([]) == ""


# -- parse_retry_after ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), ("0", 0.0), (" 120 ", 120.0), ("1.5", 1.5)])
def test_retry_after_seconds(value: str, expected: float) -> None:
    """Delta-seconds are read as seconds."""
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    """An HTTP date is converted to seconds from `now`."""
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    header = format_datetime(datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert header == "Wed, 01 May 2024 12:00:30 GMT"
    assert parse_retry_after(header, now) == pytest.approx(30.0)


def test_retry_after_date_in_the_past_is_zero() -> None:
    """A date already passed means retry now, not a negative wait."""
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0


def test_retry_after_date_uses_wall_clock_by_default() -> None:
    """Without `now`, a date in the far future gives a large positive wait."""
    wait = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert wait is not None and wait > 10**8


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "nan", "inf", "12abc", "Mon, 99 Foo 2024"])
def test_retry_after_junk_is_none(value: str | None) -> None:
    """Absent, negative, non-finite or unparseable values give None."""
    assert parse_retry_after(value) is None
