"""HTTP check-ins (`/api/<project>/cron/<slug>/[<key>/]`): query or JSON body in, one `check_in` item out."""

from __future__ import annotations

import base64
import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.errors import HttpError
from relay.ingest.checkins import STATUSES, check_in_from_json, check_in_from_query

from ..conftest import RelayFactory
from ..support import KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, FakeUpstream, auth_header

CHECK_IN_ID = "a460c25ff2554577b920fcfacae4e5eb"
NIL = "0" * 32


async def _check_in(upstream: FakeUpstream) -> tuple[dict[str, str], dict[str, object]]:
    """The item header and payload of the one check-in the upstream got."""
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert [item.type for item in envelope.items] == ["check_in"]
    assert re.fullmatch(r"[0-9a-f]{32}", envelope.event_id or "")
    return envelope.items[0].headers, envelope.items[0].json()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_query_check_in_with_key_in_path(make_relay: RelayFactory, upstream: FakeUpstream, method: str) -> None:
    """`?status=ok` with the key in the path (as Sentry's curl example) is 202 with no body; a check_in goes up."""
    client = await make_relay()
    url = f"/api/{PROJECT}/cron/nightly-backup/{KEY}/?status=ok"
    resp = await client.request(method, url)
    assert resp.status == 202
    assert await resp.read() == b""
    headers, payload = await _check_in(upstream)
    assert headers["content_type"] == "application/json"
    assert payload == {"check_in_id": NIL, "monitor_slug": "nightly-backup", "status": "ok"}
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert "sentry_client=relay-http" in rec.headers["X-Sentry-Auth"]


async def test_query_fields(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """check_in_id (dashed or not), environment and duration come from the query; an unknown status is unknown."""
    client = await make_relay()
    dashed = "A460C25F-F255-4577-B920-FCFACAE4E5EB"
    url = f"/api/{PROJECT}/cron/job/{KEY}?status=finished&check_in_id={dashed}&environment=prod&duration=21"
    resp = await client.post(url)
    assert resp.status == 202
    _, payload = await _check_in(upstream)
    assert payload == {
        "check_in_id": CHECK_IN_ID,
        "monitor_slug": "job",
        "status": "unknown",
        "environment": "prod",
        "duration": 21.0,
    }


async def test_json_body_with_monitor_config(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A JSON body is the check-in: the upsert config is kept, the slug is the path's, unknown fields dropped."""
    client = await make_relay()
    body = {
        "monitor_slug": "ignored",
        "status": "in_progress",
        "duration": 21,
        "monitor_config": {
            "schedule": {"type": "crontab", "value": "0 * * * *"},
            "checkin_margin": 5,
            "max_runtime": 10,
            "timezone": "Europe/Vienna",
            "failure_issue_threshold": 2,
            "shiny": True,
        },
        "contexts": {"trace": {"trace_id": "8f431b7aa08441bbbd5a0100fd91f9fe"}},
        "extra": "dropped",
    }
    resp = await client.post(f"/api/{PROJECT}/cron/my-monitor/{KEY}/", json=body)
    assert resp.status == 202
    _, payload = await _check_in(upstream)
    assert payload == {
        "check_in_id": NIL,
        "monitor_slug": "my-monitor",
        "status": "in_progress",
        "duration": 21.0,
        "monitor_config": {
            "schedule": {"type": "crontab", "value": "0 * * * *"},
            "checkin_margin": 5,
            "max_runtime": 10,
            "failure_issue_threshold": 2,
            "timezone": "Europe/Vienna",
        },
        "contexts": {"trace": {"trace_id": "8f431b7aa08441bbbd5a0100fd91f9fe"}},
    }


@pytest.mark.parametrize(
    "headers",
    [
        auth_header(),
        {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()},
    ],
    ids=["x-sentry-auth", "basic"],
)
async def test_key_in_header_without_key_in_path(
    make_relay: RelayFactory, upstream: FakeUpstream, headers: dict[str, str]
) -> None:
    """Without the key in the path, X-Sentry-Auth or Basic auth carry it; a named SDK client is kept."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/cron/job/?status=error", headers=headers)
    assert resp.status == 202
    _, payload = await _check_in(upstream)
    assert payload["status"] == "error"
    expected_client = "test/1.0" if "X-Sentry-Auth" in headers else "relay-http"
    assert f"sentry_client={expected_client}" in upstream.received[0].headers["X-Sentry-Auth"]


async def test_interval_schedule(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An interval schedule keeps its value and unit."""
    client = await make_relay()
    body = {"status": "ok", "monitor_config": {"schedule": {"type": "interval", "value": 5, "unit": "minute"}}}
    resp = await client.post(f"/api/{PROJECT}/cron/job/{KEY}/", json=body)
    assert resp.status == 202
    _, payload = await _check_in(upstream)
    assert payload["monitor_config"] == {"schedule": {"type": "interval", "value": 5, "unit": "minute"}}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("", "status"),
        ("?status=ok&check_in_id=nope", "check_in_id"),
        ("?status=ok&duration=soon", "duration"),
        ("?status=ok&duration=nan", "duration"),
    ],
    ids=["no-status", "bad-id", "bad-duration", "nan-duration"],
)
async def test_bad_query_is_400(make_relay: RelayFactory, upstream: FakeUpstream, query: str, detail: str) -> None:
    """A query without status, or with a check_in_id or duration that doesn't parse, is 400 naming it."""
    client = await make_relay()
    resp = await client.get(f"/api/{PROJECT}/cron/job/{KEY}/{query}")
    assert resp.status == 400
    assert detail in (await resp.json())["detail"]
    assert not upstream.received


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{nope", 400, "not valid JSON"),
        (b"[]", 422, "JSON object"),
        (b'{"duration": 3}', 422, "status"),
        (b'{"status": "ok", "duration": "long"}', 422, "duration"),
        (b'{"status": "ok", "monitor_config": {"schedule": {"type": "weekly"}}}', 422, "schedule.type"),
        (b'{"status": "ok", "monitor_config": {"schedule": {"type": "interval", "value": 1}}}', 422, "unit"),
        (b'{"status": "ok", "monitor_config": {"checkin_margin": 1}}', 422, "schedule"),
        (b'{"status": "ok", "contexts": {"trace": {"trace_id": "x"}}}', 422, "trace_id"),
    ],
    ids=["syntax", "not-object", "no-status", "duration", "schedule-type", "no-unit", "no-schedule", "trace-id"],
)
async def test_bad_json_body(
    make_relay: RelayFactory, upstream: FakeUpstream, body: bytes, status: int, detail: str
) -> None:
    """Invalid JSON is 400; JSON that is not a check-in is 422, as Relay's JSON extractor answers."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/cron/job/{KEY}/", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status
    assert detail in (await resp.json())["detail"]
    assert not upstream.received


async def test_key_in_path_and_header_is_401(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A key in the path and credentials in the request as well is 401, as in Relay."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/cron/job/{KEY}/?status=ok", headers=auth_header())
    assert resp.status == 401
    assert "multiple authorization" in (await resp.json())["detail"]


async def test_unknown_key_and_missing_key(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A key the project doesn't list is 401, no key at all is 401, an unknown project 403."""
    client = await make_relay()
    resp = await client.get(f"/api/{PROJECT}/cron/job/{'f' * 32}/?status=ok")
    assert resp.status == 401
    resp = await client.get(f"/api/{PROJECT}/cron/job/?status=ok")
    assert resp.status == 401
    assert "authorization" in (await resp.json())["detail"]
    resp = await client.get(f"/api/77/cron/job/{KEY}/?status=ok")
    assert resp.status == 403
    assert not upstream.received


async def test_rate_limited_check_in_is_still_202(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A check-in a quota drops is answered 202, never 429 (Relay never rate-limits this endpoint's answer)."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    quotas: [{{id: no-crons, categories: [monitor], limit: 0, window: 60}}]
"""
    client = await make_relay(projects=projects)
    resp = await client.get(f"/api/{PROJECT}/cron/job/{KEY}/?status=ok")
    assert resp.status == 202
    assert not upstream.received


async def test_json_body_over_max_event_size_is_413(make_relay: RelayFactory) -> None:
    """A JSON check-in bigger than limits.max_event_size is 413."""
    client = await make_relay("limits: {max_event_size: 1KiB}")
    body = orjson.dumps({"status": "ok", "environment": "x" * 2000})
    resp = await client.post(f"/api/{PROJECT}/cron/job/{KEY}/", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert "max_event_size" in (await resp.json())["detail"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
check_in_fields = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(sorted(STATUSES)) | st.text(max_size=12) | json_values,
        "check_in_id": st.uuids().map(str) | json_values,
        "environment": st.text(max_size=20) | json_values,
        "duration": st.floats(min_value=0, max_value=1e6) | json_values,
        "monitor_config": st.fixed_dictionaries(
            {"schedule": st.sampled_from([{"type": "crontab", "value": "* * * * *"}, {"type": "interval"}])},
            optional={"max_runtime": st.integers(-2, 100), "owner": json_values},
        )
        | json_values,
        "contexts": st.just({"trace": {"trace_id": "8f431b7aa08441bbbd5a0100fd91f9fe"}}) | json_values,
        "other": json_values,
    },
)


@given(check_in_fields)
def test_json_check_in_parser_is_total_and_idempotent(fields: dict[str, object]) -> None:
    """Any JSON object is a check-in or a 422; a parsed check-in parses back to itself."""
    try:
        check_in = check_in_from_json(orjson.dumps(fields), "slug")
    except HttpError as exc:
        assert exc.status == 422
        return
    assert check_in["status"] in STATUSES
    assert set(check_in) <= {"check_in_id", "monitor_slug", "status", "environment", "duration", "monitor_config",
                             "contexts"}  # fmt: skip
    assert check_in_from_json(orjson.dumps(check_in), "slug") == check_in


@given(st.dictionaries(st.sampled_from(["status", "check_in_id", "environment", "duration", "x"]), st.text()))
def test_query_check_in_parser_is_total(query: dict[str, str]) -> None:
    """Any query string is a check-in or a 400, never another error."""
    try:
        check_in = check_in_from_query(query, "slug")
    except HttpError as exc:
        assert exc.status == 400
        return
    assert check_in["status"] in STATUSES
    assert len(check_in["check_in_id"]) == 32
