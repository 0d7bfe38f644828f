"""Port of getsentry/relay `tests/integration/test_security_report.py` as black-box tests of this relay.

Relay source read at commit 9fdd1bb0cb77075ae69f23f525d16a0fc1bc0ef4.
"""

from __future__ import annotations

import orjson
import pytest

from ..support import KEY, PROJECT, FakeUpstream
from .conftest import RelayFactory
from .support import CHROME, Client, projects_yaml, settle

CSP_REPORT = {
    "csp-report": {
        "document-uri": "https://example.com/foo/bar",
        "referrer": "https://www.google.com/",
        "violated-directive": "default-src self",
        "original-policy": "default-src self; report-uri /csp-hotline.php",
        "blocked-uri": "http://evilhackerscripts.com",
    }
}
RELEASE = "01d5c3165d9fbc5c8bdcf9550a1d6793a80fc02b"


async def send_security_report(client: Client, content_type: str, origin: str | None = None) -> int:
    """Relay's `send_security_report`: the CSP report, key, release and environment in the query string."""
    headers = {"Content-Type": content_type, "User-Agent": CHROME}
    if origin is not None:
        headers["Origin"] = origin
    url = f"/api/{PROJECT}/security/?sentry_key={KEY}&sentry_release={RELEASE}&sentry_environment=production"
    resp = await client.post(url, data=orjson.dumps(CSP_REPORT), headers=headers)
    return int(resp.status)


@pytest.mark.parametrize(("allowed", "should_be_allowed"), [("valid.com", True), ("invalid.com", False)])
async def test_uses_origins(
    relay_factory: RelayFactory, upstream: FakeUpstream, allowed: str, should_be_allowed: bool
) -> None:
    """A report from Origin http://valid.com is forwarded only when the project's allowed origins match it."""
    client = await relay_factory(projects=projects_yaml(upstream.url, f'allowed_origins: ["{allowed}"]'))
    await send_security_report(client, "application/json; charset=utf-8", origin="http://valid.com")
    await settle(upstream, 1 if should_be_allowed else 0)


@pytest.mark.skip(reason="processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes")
def test_security_report_with_processing() -> None:
    """Skipped: processing relay: asserts Kafka topics, which a proxy in front of Sentry never writes."""


@pytest.mark.skip(reason="building the csp/hpkp/expect-ct event is the upstream's normalization; README: raw_security")
def test_security_report() -> None:
    """Skipped: building the csp/hpkp/expect-ct event is the upstream's normalization; README: raw_security."""


async def test_security_report_cors(relay_factory: RelayFactory) -> None:
    """A CORS preflight to the security endpoint allows POST, the SDK headers, and exposes the rate-limit headers."""
    client = await relay_factory()
    headers = {
        "Host": "raduw-relay.eu.ngrok.io",
        "Pragma": "no-cache",
        "Cache-Control": "no-cache",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "User-Agent": "Some Browser",
        "Accept-Encoding": "gzip, deflate, br",
        "Accept-Language": "en-GB,en;q=0.9,en-US;q=0.8",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "2a02:8388:8b86:a700:541e:f608:70f6:bcf2",
    }
    resp = await client.options(f"/api/{PROJECT}/security/?sentry_key={KEY}", headers=headers)
    assert resp.status == 200

    def values(name: str) -> set[str]:
        return {v.strip().lower() for v in resp.headers.get(name, "").split(",")}

    assert {
        "x-forwarded-for",
        "content-type",
        "transfer-encoding",
        "referer",
        "authorization",
        "origin",
        "authentication",
        "content-encoding",
        "x-sentry-auth",
        "accept",
        "x-requested-with",
    } <= values("Access-Control-Allow-Headers")
    assert "post" in values("Access-Control-Allow-Methods")
    assert {"x-sentry-error", "x-sentry-rate-limits", "retry-after"} <= values("Access-Control-Expose-Headers")
