"""Who may send: keys from headers, query or envelope dsn, checked against configured projects."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiohttp import ClientResponse

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    OTHER_KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    FakeUpstream,
    auth_header,
    envelope_bytes,
    received_total,
)

EVENT_ID = "5f1e0d2c3b4a59687766554433221100"
URL = f"/api/{PROJECT}/envelope/"
UNKNOWN_KEY = "99999999999999999999999999999999"


def _event(**headers: object) -> bytes:
    return envelope_bytes({"event_id": EVENT_ID, **headers}, ({"type": "event"}, b'{"message":"auth"}'))


def _dsn(key: str = KEY, project: int = PROJECT) -> str:
    return f"https://{key}@relay.example.com/{project}"


async def _accepted(resp: ClientResponse, upstream: FakeUpstream) -> None:
    """Assert a 200 {"id"} answer and that the upstream got the envelope with its own key."""
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert rec.envelope.event_id == EVENT_ID


async def test_x_sentry_auth_header(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """X-Sentry-Auth with sentry_key is accepted."""
    client = await make_relay()
    await _accepted(await client.post(URL, data=_event(), headers=auth_header()), upstream)


async def test_second_key_of_project(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Any of a project's configured keys is accepted."""
    client = await make_relay()
    await _accepted(await client.post(URL, data=_event(), headers=auth_header(OTHER_KEY)), upstream)


async def test_x_sentry_auth_case_insensitive_scheme(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The `Sentry` scheme and pair names are matched without regard to case."""
    client = await make_relay()
    headers = {"X-Sentry-Auth": f"sentry Sentry_Version=7,Sentry_Key={KEY}"}
    await _accepted(await client.post(URL, data=_event(), headers=headers), upstream)


async def test_authorization_sentry_header(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`Authorization: Sentry sentry_key=...` is accepted."""
    client = await make_relay()
    headers = {"Authorization": f"Sentry sentry_version=7, sentry_key={KEY}, sentry_client=x/1"}
    await _accepted(await client.post(URL, data=_event(), headers=headers), upstream)
    assert "sentry_client=x/1" in upstream.received[0].headers["X-Sentry-Auth"]


async def test_authorization_basic_header(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`Authorization: Basic base64(key:)` is accepted."""
    client = await make_relay()
    token = base64.b64encode(f"{KEY}:".encode()).decode()
    await _accepted(await client.post(URL, data=_event(), headers={"Authorization": f"Basic {token}"}), upstream)


async def test_authorization_basic_with_secret(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Basic credentials `key:secret` use the part before the colon as the key."""
    client = await make_relay()
    token = base64.b64encode(f"{KEY}:secret".encode()).decode()
    await _accepted(await client.post(URL, data=_event(), headers={"Authorization": f"Basic {token}"}), upstream)


async def test_authorization_basic_invalid_base64(make_relay: RelayFactory) -> None:
    """Basic credentials that are not base64 are 401 with a detail."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers={"Authorization": "Basic !!!notbase64"})
    assert resp.status == 401
    assert "base64" in (await resp.json())["detail"]


async def test_sentry_key_query_parameter(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`?sentry_key=` (browser SDKs) is accepted."""
    client = await make_relay()
    resp = await client.post(f"{URL}?sentry_key={KEY}&sentry_version=7", data=_event())
    await _accepted(resp, upstream)
    assert KEY not in upstream.received[0].path


async def test_envelope_dsn_only(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With no request credentials, the envelope header's dsn authenticates, and is rewritten."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(dsn=_dsn()))
    await _accepted(resp, upstream)
    dsn = upstream.received[0].envelope.headers["dsn"]
    assert dsn == f"{upstream.url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"


async def test_envelope_dsn_matching_header_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A dsn that agrees with the request's key and project is fine."""
    client = await make_relay()
    await _accepted(await client.post(URL, data=_event(dsn=_dsn()), headers=auth_header()), upstream)


async def test_missing_credentials_is_401(make_relay: RelayFactory) -> None:
    """No header, query key or dsn: 401 with a detail."""
    client = await make_relay()
    resp = await client.post(URL, data=_event())
    assert resp.status == 401
    assert "missing authorization" in (await resp.json())["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Sentry-Auth": "Sentry sentry_version=7"},
        {"X-Sentry-Auth": "Sentry sentry_key="},
        {"Authorization": "Sentry sentry_version=7, sentry_client=a"},
    ],
    ids=["no-key", "empty-key", "authorization-no-key"],
)
async def test_auth_header_without_key_is_401(make_relay: RelayFactory, headers: dict[str, str]) -> None:
    """An auth header without a sentry_key is 401 with a detail."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers=headers)
    assert resp.status == 401
    assert "sentry_key" in (await resp.json())["detail"]


async def test_empty_query_key_is_401(make_relay: RelayFactory) -> None:
    """An empty `?sentry_key=` is 401 with a detail."""
    client = await make_relay()
    resp = await client.post(f"{URL}?sentry_key=", data=_event())
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_unknown_key_is_401(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A key the project does not list is 401 with a detail; nothing is forwarded."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers=auth_header(UNKNOWN_KEY))
    assert resp.status == 401
    assert "unknown public key" in (await resp.json())["detail"]
    resp = await client.post(URL, data=_event(), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    assert len(upstream.received) == 1


async def test_unknown_key_in_query_is_401(make_relay: RelayFactory) -> None:
    """An unknown `?sentry_key=` is 401."""
    client = await make_relay()
    resp = await client.post(f"{URL}?sentry_key={UNKNOWN_KEY}", data=_event())
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_unknown_key_in_dsn_is_401(make_relay: RelayFactory) -> None:
    """A dsn-only envelope with an unknown key is 401."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(dsn=_dsn(UNKNOWN_KEY)))
    assert resp.status == 401
    assert "unknown public key" in (await resp.json())["detail"]


async def test_invalid_dsn_only_is_401(make_relay: RelayFactory) -> None:
    """A dsn-only envelope whose dsn cannot be parsed is 401 with a detail."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(dsn="not a dsn"))
    assert resp.status == 401
    assert "dsn" in (await resp.json())["detail"]


async def test_unknown_project_rejected_by_default(make_relay: RelayFactory) -> None:
    """A project id not configured is 403 under the default `unknown_projects: reject`."""
    client = await make_relay()
    resp = await client.post("/api/77/envelope/", data=_event(), headers=auth_header())
    assert resp.status == 403
    assert "project 77 is not configured" in (await resp.json())["detail"]


async def test_unknown_project_with_dsn_only_rejected(make_relay: RelayFactory) -> None:
    """A dsn-only envelope for an unconfigured project is 403."""
    client = await make_relay()
    resp = await client.post("/api/77/envelope/", data=_event(dsn=_dsn(KEY, 77)))
    assert resp.status == 403
    assert "detail" in await resp.json()


async def test_disabled_project_is_403(make_relay: RelayFactory) -> None:
    """A disabled project refuses even its own keys with 403."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    disabled: true
"""
    client = await make_relay(projects=projects)
    resp = await client.post(URL, data=_event(), headers=auth_header())
    assert resp.status == 403
    assert "disabled" in (await resp.json())["detail"]
    resp = await client.post(URL, data=_event(dsn=_dsn()))
    assert resp.status == 403
    assert "disabled" in (await resp.json())["detail"]


async def test_key_of_other_project_is_401(make_relay: RelayFactory) -> None:
    """A key configured for one project is refused by another."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
  - id: 43
    keys: ["{OTHER_KEY}"]
"""
    client = await make_relay(projects=projects)
    resp = await client.post("/api/43/envelope/", data=_event(), headers=auth_header(KEY))
    assert resp.status == 401
    assert "unknown public key for project 43" in (await resp.json())["detail"]


async def test_unknown_project_forwarded_with_same_id_and_key(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With `unknown_projects: forward`, an unknown project goes to upstream.url under its own id and key."""
    client = await make_relay("unknown_projects: forward")
    resp = await client.post(
        "/api/77/envelope/", data=_event(dsn=_dsn(UNKNOWN_KEY, 77)), headers=auth_header(UNKNOWN_KEY)
    )
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == "/api/77/envelope/"
    assert f"sentry_key={UNKNOWN_KEY}" in rec.headers["X-Sentry-Auth"]
    assert rec.envelope.headers["dsn"] == f"{upstream.url.replace('://', f'://{UNKNOWN_KEY}@')}/77"


async def test_unknown_project_forwarded_with_dsn_only(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With `unknown_projects: forward`, a dsn-only envelope for an unknown project is forwarded."""
    client = await make_relay("unknown_projects: forward")
    resp = await client.post("/api/77/envelope/", data=_event(dsn=_dsn(UNKNOWN_KEY, 77)))
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].path == "/api/77/envelope/"
    assert f"sentry_key={UNKNOWN_KEY}" in upstream.received[0].headers["X-Sentry-Auth"]


async def test_forward_mode_still_checks_known_projects(make_relay: RelayFactory) -> None:
    """`unknown_projects: forward` does not loosen key checks on configured projects."""
    client = await make_relay("unknown_projects: forward")
    resp = await client.post(URL, data=_event(), headers=auth_header(UNKNOWN_KEY))
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_dsn_key_mismatching_header_is_400(make_relay: RelayFactory) -> None:
    """An envelope dsn with another key than the request's auth is 400 (even if both keys are valid)."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(dsn=_dsn(OTHER_KEY)), headers=auth_header(KEY))
    assert resp.status == 400
    assert "dsn does not match" in (await resp.json())["detail"]


async def test_dsn_project_mismatching_header_is_400(make_relay: RelayFactory) -> None:
    """An envelope dsn naming another project than the URL is 400 when header auth is present."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(dsn=_dsn(KEY, 43)), headers=auth_header(KEY))
    assert resp.status == 400
    assert "dsn does not match" in (await resp.json())["detail"]


async def test_dsn_only_for_other_project_is_400(make_relay: RelayFactory) -> None:
    """A dsn-only envelope whose dsn names another project than the URL is 400."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(dsn=_dsn(KEY, 43)))
    assert resp.status == 400
    assert "project 43" in (await resp.json())["detail"]


async def test_header_auth_checked_before_body(make_relay: RelayFactory) -> None:
    """An unknown key is refused with 401 even when the body is not a valid envelope."""
    client = await make_relay()
    resp = await client.post(URL, data=b"garbage", headers=auth_header(UNKNOWN_KEY))
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_store_requires_request_auth(make_relay: RelayFactory) -> None:
    """The store endpoint has no envelope dsn to fall back to: no credentials is 401."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/store/", data=orjson.dumps({"message": "x"}))
    assert resp.status == 401
    assert "missing authorization" in (await resp.json())["detail"]


async def test_store_unknown_key_is_401(make_relay: RelayFactory) -> None:
    """The store endpoint refuses unknown keys with 401."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/store/", data=b'{"message":"x"}', headers=auth_header(UNKNOWN_KEY))
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_auth_errors_do_not_count_items(make_relay: RelayFactory) -> None:
    """Refused requests never count as received items."""
    client = await make_relay()
    for headers in ({}, auth_header(UNKNOWN_KEY)):
        resp = await client.post(URL, data=_event(), headers=headers)
        assert resp.status == 401
    resp = await client.post("/api/77/envelope/", data=_event(), headers=auth_header())
    assert resp.status == 403
    assert received_total(state_of(client)) == 0


async def test_sentry_client_that_is_not_an_sdk_name_is_not_passed_on(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """`sentry_client` is forwarded when it is an SDK's name/version; free text (an e-mail) never leaves."""
    client = await make_relay()
    headers = {"Authorization": f"Sentry sentry_version=7, sentry_key={KEY}, sentry_client=alice@example.com"}
    await _accepted(await client.post(URL, data=_event(), headers=headers), upstream)
    forwarded = upstream.received[0].headers["X-Sentry-Auth"]
    assert "alice@example.com" not in forwarded and "sentry_client=relay/" in forwarded
