"""Container items (a batch of logs in one item, as sentry-python sends them): counted by what is inside for
quotas, outcomes and client reports, and each inner log scrubbed with its own `_meta`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sentry_sdk.logger

from ..support import BackgroundRelay, outcome_totals
from .test_sentry_sdk import ProjectsYaml, items_of, sdk, wait_until
from .test_volume_sdk import clear_of_window_edge, reported, settled

EMAIL = "log.writer@example.com"


@contextmanager
def log_relay(options: str, extra: str = "", rules: str = "[secrets, pii]") -> Iterator[BackgroundRelay]:
    """A background relay with scrubbing on and project options (indented four spaces)."""
    projects = ProjectsYaml(options)
    relay = BackgroundRelay(extra, projects=projects, rules=rules)
    projects.upstream = relay.upstream
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


def send_logs(relay: BackgroundRelay, count: int) -> None:
    """`count` logs from the real SDK, batched by it into one container item."""
    with sdk(relay, enable_logs=True) as (client, _recorder):
        for n in range(count):
            sentry_sdk.logger.info("order {n} placed by {who}", n=n, who=EMAIL, attributes={"customer": EMAIL})
        client.flush(timeout=10)


def test_logs_are_scrubbed_one_by_one_with_their_own_meta() -> None:
    """Each inner log has its body and attributes scrubbed, and a `_meta` saying what went; `item_count` holds."""
    with log_relay("    quotas: []") as relay:
        send_logs(relay, 3)
        wait_until(lambda: bool(items_of(relay, "log")), what="the log container upstream")
        (item,) = items_of(relay, "log")
        assert item.headers["item_count"] == 3
        logs = item.json()["items"]
        assert len(logs) == 3
        assert EMAIL.encode() not in item.payload
        for log in logs:
            assert "[email]" in log["body"]
            assert log["attributes"]["customer"]["value"] == "[email]"
            assert log["attributes"]["sentry.message.parameter.who"]["value"] == "[email]"
            assert log["_meta"]["attributes"]["customer"]["value"][""]["rem"][0][0] == "pii.email"
            assert log["_meta"]["body"][""]["rem"][0][0] == "pii.email"


def test_a_log_quota_counts_the_logs_inside_the_container() -> None:
    """A log quota of 5 refuses a batch of 30 logs: 30 rate-limited outcomes, and 30 in the client report."""
    clear_of_window_edge(60)
    quota = "    quotas:\n      - {id: logs, categories: [log_item], scope: key, limit: 5, window: 1m}"
    with log_relay(quota, "outcomes: {client_reports: true, interval: 200ms}") as relay:
        assert relay.state is not None
        send_logs(relay, 30)
        wait_until(lambda: outcome_totals(relay.state).get(("rate_limited", "over_quota", "log_item"), 0) > 0)  # type: ignore[arg-type]
        assert outcome_totals(relay.state)[("rate_limited", "over_quota", "log_item")] == 30  # type: ignore[arg-type]
        assert items_of(relay, "log") == []
        expected = {("rate_limited_events", "over_quota", "log_item"): 30}
        assert settled(lambda: reported(relay.upstream, "relay"), expected) == expected


def test_a_log_batch_within_the_quota_is_forwarded_and_counted_by_its_logs() -> None:
    """Four logs under a quota of 5 go through, counted as four forwarded log items."""
    clear_of_window_edge(60)
    quota = "    quotas:\n      - {id: logs, categories: [log_item], scope: key, limit: 5, window: 1m}"
    with log_relay(quota) as relay:
        assert relay.state is not None
        send_logs(relay, 4)
        wait_until(lambda: outcome_totals(relay.state).get(("forwarded", "none", "log_item"), 0) == 4)  # type: ignore[arg-type]
        (item,) = items_of(relay, "log")
        assert item.headers["item_count"] == 4
