"""Limits learned from the upstream: the scoped cache with expiry, and the pipeline gate that enforces them."""

from __future__ import annotations

from relay.envelope import Envelope, Item
from relay.metrics import Metrics
from relay.outcomes import Outcomes
from relay.pipeline import ProcessingContext
from relay.ratelimit import RateLimit, RateLimitCache, parse_rate_limits
from relay.ratelimit.gate import UpstreamLimitGate
from relay.routing import Target

from ..support import FakeClock

URL = "https://o1.ingest.sentry.io"
OTHER_URL = "https://o2.ingest.sentry.io"
KEY_A = "a" * 32
KEY_B = "b" * 32


def limited(cache: RateLimitCache, project: str, key: str, category: str, url: str = URL) -> bool:
    """Whether the cache limits this category for this target."""
    return cache.check(url, project, key, category) is not None


# -- RateLimitCache scopes --------------------------------------------------------------


def test_key_scope_affects_only_that_key() -> None:
    """A key-scoped limit limits that key of that project, not its other keys or other projects."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:key"))
    assert limited(cache, "1", KEY_A, "error")
    assert not limited(cache, "1", KEY_B, "error")
    assert not limited(cache, "2", KEY_A, "error")
    assert not limited(cache, "1", KEY_A, "transaction")


def test_project_scope_affects_all_keys_of_the_project() -> None:
    """A project-scoped limit limits every key of that project and no other project."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:project"))
    assert limited(cache, "1", KEY_A, "error")
    assert limited(cache, "1", KEY_B, "error")
    assert not limited(cache, "2", KEY_A, "error")
    assert not limited(cache, "1", KEY_B, "attachment")


def test_organization_scope_affects_all_projects_of_the_upstream() -> None:
    """An organization-scoped limit limits every project behind that base URL, not other upstreams."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60::organization"))
    assert limited(cache, "1", KEY_A, "error")
    assert limited(cache, "2", KEY_B, "transaction")
    assert limited(cache, "99", KEY_B, "attachment")
    assert not limited(cache, "1", KEY_A, "error", url=OTHER_URL)


def test_unknown_scope_is_read_as_organization() -> None:
    """A scope the relay does not know is treated as the widest one."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:galaxy"))
    assert limited(cache, "2", KEY_B, "error")


def test_missing_scope_defaults_to_organization() -> None:
    """`60:error` has no scope field and limits the whole organization."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error"))
    assert limited(cache, "7", KEY_B, "error")


def test_limits_expire() -> None:
    """A limit holds until retry_after has passed on the clock, and reports the time left."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY_A, parse_rate_limits("10:error:project"))
    hit = cache.check(URL, "1", KEY_A, "error")
    assert hit is not None
    assert hit[0].scope == "project"
    assert hit[1] == 10.0
    clock.advance(9.5)
    hit = cache.check(URL, "1", KEY_A, "error")
    assert hit is not None and abs(hit[1] - 0.5) < 1e-9
    clock.advance(0.5)
    assert cache.check(URL, "1", KEY_A, "error") is None


def test_zero_retry_after_is_not_remembered() -> None:
    """A limit of zero seconds limits nothing."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("0:error:project"))
    assert not limited(cache, "1", KEY_A, "error")


def test_longest_active_limit_wins_across_scopes() -> None:
    """When several scopes limit a category, check() returns the one with the most time left."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY_A, parse_rate_limits("10:error:key, 30:error:project, 20::organization"))
    hit = cache.check(URL, "1", KEY_A, "error")
    assert hit is not None and hit[0].scope == "project" and hit[1] == 30.0
    hit = cache.check(URL, "1", KEY_A, "transaction")
    assert hit is not None and hit[0].scope == "organization" and hit[1] == 20.0
    clock.advance(25)
    hit = cache.check(URL, "1", KEY_A, "error")
    assert hit is not None and hit[0].scope == "project" and hit[1] == 5.0
    assert cache.check(URL, "1", KEY_A, "transaction") is None


def test_limits_on_different_categories_coexist() -> None:
    """Limits on different categories in one scope are all kept."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:project"))
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:transaction:project"))
    assert limited(cache, "1", KEY_A, "error")
    assert limited(cache, "1", KEY_A, "transaction")


def test_newer_limit_extends_the_same_categories() -> None:
    """A later, longer limit for the same scope and categories extends it."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY_A, parse_rate_limits("10:error:project"))
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:project"))
    clock.advance(30)
    assert limited(cache, "1", KEY_A, "error")


def test_shorter_limit_does_not_cut_a_longer_one_short() -> None:
    """A shorter limit for the same scope and categories keeps the longer one active (as Relay's RateLimits::add)."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:project"))
    cache.remember(URL, "1", KEY_A, parse_rate_limits("5:error:project"))  # e.g. a response that overtook another
    clock.advance(30)
    hit = cache.check(URL, "1", KEY_A, "error")
    assert hit is not None and hit[1] == 30.0


def test_pruning_drops_expired_scopes_only() -> None:
    """Past max_entries, expired scopes are pruned and live ones kept."""
    clock = FakeClock()
    cache = RateLimitCache(clock, max_entries=3)
    for project in ("1", "2", "3"):
        cache.remember(URL, project, KEY_A, parse_rate_limits("5:error:project"))
    cache.remember(URL, "4", KEY_A, parse_rate_limits("100:error:project"))
    clock.advance(10)
    cache.remember(URL, "5", KEY_A, parse_rate_limits("100:error:project"))
    assert limited(cache, "4", KEY_A, "error")
    assert limited(cache, "5", KEY_A, "error")
    assert not limited(cache, "1", KEY_A, "error")
    assert len(cache._limits) == 2


# -- UpstreamLimitGate ------------------------------------------------------------------


def context(*types: str, key: str = KEY_A, project: str = "1") -> tuple[ProcessingContext, Metrics]:
    """A processing context for an envelope holding items of these types."""
    metrics = Metrics()
    envelope = Envelope({"event_id": "e" * 32}, [Item({"type": t}, b"{}") for t in types])
    target = Target(URL, project, key)
    return ProcessingContext(envelope, 42, None, "local", target, Outcomes(metrics)), metrics


def outcomes_of(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    """relay_outcomes_total samples."""
    return {
        (s.labels["outcome"], s.labels["reason"], s.labels["category"]): s.value
        for m in metrics.outcomes.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


async def test_gate_passes_everything_without_limits() -> None:
    """With nothing learned, the gate changes nothing."""
    ctx, metrics = context("event", "attachment")
    await UpstreamLimitGate(RateLimitCache(FakeClock())).process(ctx)
    assert [i.type for i in ctx.envelope.items] == ["event", "attachment"]
    assert ctx.rate_limits == []
    assert outcomes_of(metrics) == {}


async def test_gate_drops_limited_categories_and_what_depends_on_them() -> None:
    """Limited events are dropped as rate_limited/upstream_rate_limited with their attachments; others stay."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:project"))
    clock.advance(1)
    ctx, metrics = context("event", "attachment", "event", "session")
    await UpstreamLimitGate(cache).process(ctx)
    assert [i.type for i in ctx.envelope.items] == ["session"]
    assert ctx.rate_limited_items == 3
    assert len(ctx.rate_limits) == 1  # one limit, announced once
    limit, left = ctx.rate_limits[0]
    assert limit == RateLimit(60, frozenset({"error"}), "project")
    assert left == 59.0
    assert outcomes_of(metrics) == {
        ("rate_limited", "upstream_rate_limited", "error"): 2,
        ("rate_limited", "upstream_rate_limited", "attachment"): 1,
    }


async def test_gate_never_limits_client_reports() -> None:
    """Client reports pass even an all-categories organization limit."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60::organization"))
    ctx, metrics = context("client_report", "event")
    await UpstreamLimitGate(cache).process(ctx)
    assert [i.type for i in ctx.envelope.items] == ["client_report"]
    assert outcomes_of(metrics) == {("rate_limited", "upstream_rate_limited", "error"): 1}


async def test_gate_respects_scope_of_the_target() -> None:
    """A key-scoped limit on key A does not affect an envelope routed with key B."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:key"))
    ctx, _ = context("event", key=KEY_B)
    await UpstreamLimitGate(cache).process(ctx)
    assert [i.type for i in ctx.envelope.items] == ["event"]
    ctx, _ = context("event", key=KEY_A)
    await UpstreamLimitGate(cache).process(ctx)
    assert ctx.envelope.items == []


async def test_gate_stops_limiting_after_expiry() -> None:
    """Once the limit has expired the same envelope passes."""
    clock = FakeClock()
    cache = RateLimitCache(clock)
    cache.remember(URL, "1", KEY_A, parse_rate_limits("2:transaction:project"))
    ctx, _ = context("transaction")
    await UpstreamLimitGate(cache).process(ctx)
    assert ctx.envelope.items == []
    await clock.sleep(2)
    ctx, _ = context("transaction")
    await UpstreamLimitGate(cache).process(ctx)
    assert [i.type for i in ctx.envelope.items] == ["transaction"]


async def test_gate_reports_each_distinct_limit() -> None:
    """Different limits hitting different items are each announced for the response header."""
    cache = RateLimitCache(FakeClock())
    cache.remember(URL, "1", KEY_A, parse_rate_limits("60:error:project, 30:attachment:key"))
    ctx, _ = context("event", "attachment", "session")
    await UpstreamLimitGate(cache).process(ctx)
    assert [i.type for i in ctx.envelope.items] == ["session"]
    assert sorted(limit.render(left) for limit, left in ctx.rate_limits) == ["30:attachment:key", "60:error:project"]
