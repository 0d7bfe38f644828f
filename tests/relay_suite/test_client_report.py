"""Port of getsentry/relay `tests/integration/test_client_report.py` as black-box tests of this relay.

Relay source read at commit 7cc0c68ccfa81f4615d45005ce973de0cd217ab3.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import client_reports, envelope, report_totals, send_envelope


async def test_client_reports(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """An SDK's client report (legacy list form) reaches the upstream with its discards intact."""
    client = await relay_factory("outcomes: {client_reports: false}")
    report = {
        "timestamp": datetime.now(UTC).isoformat(),
        "discarded_events": [["queue_overflow", "error", 42], ["queue_overflow", "transaction", 1231]],
    }
    assert (await send_envelope(client, envelope(("client_report", report)))).status == 200
    reports = await client_reports(upstream)
    assert report_totals(reports, "discarded_events") == {
        ("queue_overflow", "error"): 42,
        ("queue_overflow", "transaction"): 1231,
    }
