"""Store variants: `/api/store/` (project from the key), the GET image beacon, and repeated slashes."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import quote

import orjson
import pytest

from ..conftest import RelayFactory
from ..support import KEY, OTHER_KEY, PROJECT, UPSTREAM_PROJECT, FakeUpstream, auth_header

EVENT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
EVENT = {"event_id": EVENT_ID, "message": "legacy", "level": "error"}


async def test_store_without_project_uses_the_keys_project(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`POST /api/store/` goes to the project the key belongs to, answered like the store endpoint."""
    client = await make_relay()
    resp = await client.post("/api/store/", data=orjson.dumps(EVENT), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert [(i.type, i.json()) for i in rec.envelope.items] == [("event", EVENT)]


async def test_store_without_project_routes_by_key(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With two projects, each key's events go to its own project's upstream."""
    dsn = upstream.url.replace("://", f"://{'c' * 32}@")
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    upstream_dsn: "{dsn}/{UPSTREAM_PROJECT}"
  - id: 43
    keys: ["{OTHER_KEY}"]
    upstream_dsn: "{dsn}/4502"
"""
    client = await make_relay(projects=projects)
    resp = await client.post("/api/store/", data=orjson.dumps(EVENT), headers=auth_header(OTHER_KEY))
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].path == "/api/4502/envelope/"


async def test_store_without_project_unknown_key_is_401(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A key no project lists is 401; no key at all is 401."""
    client = await make_relay()
    resp = await client.post("/api/store/", data=orjson.dumps(EVENT), headers=auth_header("f" * 32))
    assert resp.status == 401
    assert "unknown public key" in (await resp.json())["detail"]
    resp = await client.post("/api/store/", data=orjson.dumps(EVENT))
    assert resp.status == 401
    assert not upstream.received


async def test_store_without_project_shared_key_is_401(make_relay: RelayFactory) -> None:
    """A key two projects list can't say which one is meant: 401 pointing at /api/<project>/store/."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
  - id: 43
    keys: ["{KEY}"]
"""
    client = await make_relay(projects=projects)
    resp = await client.post("/api/store/", data=orjson.dumps(EVENT), headers=auth_header())
    assert resp.status == 401
    assert "several projects" in (await resp.json())["detail"]


@pytest.mark.parametrize("path", [f"/api/{PROJECT}/store/", "/api/store/"])
async def test_image_beacon_answers_a_gif(make_relay: RelayFactory, upstream: FakeUpstream, path: str) -> None:
    """`GET .../store/?sentry_data=<json>&sentry_key=...` forwards the event and answers a 1x1 GIF."""
    client = await make_relay()
    resp = await client.get(f"{path}?sentry_data={quote(orjson.dumps(EVENT).decode())}&sentry_key={KEY}")
    assert resp.status == 200
    assert resp.content_type == "image/gif"
    gif = await resp.read()
    assert gif.startswith(b"GIF89a\x01\x00\x01\x00") and gif.endswith(b";")
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == EVENT


async def test_image_beacon_base64_zlib(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The beacon's sentry_data may be base64 of zlib'd JSON, as in a store body."""
    client = await make_relay()
    data = base64.b64encode(zlib.compress(orjson.dumps(EVENT))).decode()
    resp = await client.get(f"/api/{PROJECT}/store/", params={"sentry_data": data, "sentry_key": KEY})
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == EVENT


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"sentry_key": KEY}, 400, "sentry_data"),
        ({"sentry_key": KEY, "sentry_data": "{broken"}, 400, "JSON"),
        ({"sentry_data": "{}"}, 401, "authorization"),
    ],
    ids=["no-data", "bad-json", "no-key"],
)
async def test_bad_beacon(
    make_relay: RelayFactory, upstream: FakeUpstream, params: dict[str, str], status: int, detail: str
) -> None:
    """A beacon without sentry_data, with data that is no event, or without a key gets a JSON detail."""
    client = await make_relay()
    resp = await client.get(f"/api/{PROJECT}/store/", params=params)
    assert resp.status == status
    assert detail in (await resp.json())["detail"]
    assert not upstream.received


@pytest.mark.parametrize("path", [f"/api/{PROJECT}/store//", f"/api//{PROJECT}/store/", f"/api/{PROJECT}//store"])
async def test_repeated_slashes_are_folded(make_relay: RelayFactory, upstream: FakeUpstream, path: str) -> None:
    """Runs of slashes are read as one (`/api/42/store//` is the store endpoint), as Relay's NormalizePath does."""
    client = await make_relay()
    resp = await client.post(path, data=orjson.dumps(EVENT), headers=auth_header())
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_folded_path_keeps_405_and_404(make_relay: RelayFactory) -> None:
    """A folded path with the wrong method is 405 with Allow; a folded unknown path is 404."""
    client = await make_relay()
    resp = await client.get(f"/api/{PROJECT}//envelope/")
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]
    resp = await client.post(f"/api/{PROJECT}//nothing//", data=b"{}")
    assert resp.status == 404
    assert "detail" in await resp.json()


async def test_folded_path_counted_under_its_route(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A request to `/store//` is counted under the store route in relay_requests_total."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/store//", data=orjson.dumps(EVENT), headers=auth_header())
    assert resp.status == 200
    text = await (await client.get("/metrics")).text()
    assert 'relay_requests_total{endpoint="store",status="200"} 1.0' in text
    await upstream.wait_for(1)
