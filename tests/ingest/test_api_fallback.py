"""What is left under `/api/`: the relays' liveness check, 404s naming the endpoints, 405s with Allow."""

from __future__ import annotations

import pytest

from ..conftest import RelayFactory
from ..support import PROJECT


async def test_relays_live(make_relay: RelayFactory) -> None:
    """`GET /api/0/relays/live/`, what a Sentry Relay in front of this one checks, is 200 with is_healthy."""
    client = await make_relay()
    resp = await client.get("/api/0/relays/live/")
    assert resp.status == 200
    assert (await resp.json())["is_healthy"] is True


@pytest.mark.parametrize("path", ["/api/42/playstation/key/", "/api/0/projects/org/proj/", "/api/42/events/x/"])
async def test_unknown_api_path_names_the_endpoints(make_relay: RelayFactory, path: str) -> None:
    """Any other /api/ path is a JSON 404 whose detail quotes the path and lists the supported endpoints."""
    client = await make_relay()
    resp = await client.post(path, data=b"{}")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    detail = (await resp.json())["detail"]
    assert path in detail
    for endpoint in ("/api/<project>/envelope/", "/api/<project>/nel/", "/api/<project>/cron/<monitor_slug>/"):
        assert endpoint in detail
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_long_unknown_path_is_cut(make_relay: RelayFactory) -> None:
    """A long unknown path is quoted only in part."""
    client = await make_relay()
    resp = await client.get("/api/" + "x" * 1000)
    assert resp.status == 404
    assert "x" * 300 not in (await resp.json())["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", f"/api/{PROJECT}/envelope/", "POST"),
        ("PUT", f"/api/{PROJECT}/store/", "GET"),
        ("GET", f"/api/{PROJECT}/nel/", "POST"),
        ("DELETE", f"/api/{PROJECT}/cron/job/", "GET"),
        ("POST", "/api/relay/healthcheck/live/", "GET"),
        ("POST", "/api/0/relays/live/", "GET"),
    ],
)
async def test_wrong_method_is_405_with_allow(make_relay: RelayFactory, method: str, path: str, allowed: str) -> None:
    """A known path with another method stays 405 with a JSON detail and the Allow header."""
    client = await make_relay()
    resp = await client.request(method, path)
    assert resp.status == 405
    assert allowed in resp.headers["Allow"].split(",")
    assert "detail" in await resp.json()


async def test_unknown_api_paths_counted_under_one_route(make_relay: RelayFactory) -> None:
    """relay_requests_total counts unknown /api/ paths under api_unknown, not under their path."""
    client = await make_relay()
    assert (await client.post("/api/42/unknown/", data=b"{}")).status == 404
    text = await (await client.get("/metrics")).text()
    assert 'relay_requests_total{endpoint="api_unknown",status="404"} 1.0' in text
