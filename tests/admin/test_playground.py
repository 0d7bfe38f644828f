"""The rule playground's API on the admin app, and `relay run` serving it on its own port only."""

from __future__ import annotations

import base64
import hashlib
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient

from relay.admin import create_admin_app
from relay.cli import main
from relay.config import Config, load_config
from relay.scrub.registry import ScrubberRegistry

from ..e2e.test_process import free_port, start_relay

__all__ = ["start_relay"]  # a fixture

KEY = "0123456789abcdef0123456789abcdef"
EMAIL = "alice.smith@example.com"
PASSWORD = "hunter2-Secret!"
CARD = "4111 1111 1111 1111"
ORDER = "ORD-123456"
FRAME = "exception.values.0.stacktrace.frames.1"

ORDERS_PACK = """\
pack: orders
rules:
  - id: orders.number
    pattern: 'ORD-\\d{6}'
    with: '[order]'
"""

CONFIG = f"""\
upstream: {{url: "http://127.0.0.1:9"}}
rules: [secrets, pii]
projects:
  - id: 42
    keys: ["{KEY}"]
    rules: [secrets, pii, ./orders.yml]
  - id: 43
    keys: ["abcdefabcdefabcdefabcdefabcdefab"]
    disabled: true
"""

EVENT: dict[str, Any] = {
    "message": f"payment failed for card {CARD} on order {ORDER}",
    "exception": {
        "values": [
            {
                "type": "SMTPError",
                "stacktrace": {
                    "frames": [
                        {"function": "checkout", "filename": "shop/views.py"},
                        {"function": "send", "vars": {"to": f"'{EMAIL}'", "password": PASSWORD}},
                    ]
                },
            }
        ]
    },
    "extra": {"ticket": "TICKET-777 opened by support"},
}

PROJECT_42 = {
    ("message", "pii.credit_card", "replaced"),
    ("message", "orders.number", "replaced"),
    (f"{FRAME}.vars.to", "pii.email", "replaced"),
    (f"{FRAME}.vars.password", "secrets.sensitive_keys", "replaced"),
}

DRAFT = """\
rules:
  - id: draft.ticket
    description: Support ticket numbers.
    pattern: 'TICKET-\\d+'
    action: mask
"""

DEEP: Any = "x"
for _ in range(130):
    DEEP = [DEEP]

BROKEN_DRAFT = """\
rules:
  - id: draft.ticket
    pattern: 'TICKET-(\\d+'
  - id: draft.other
    detector: no_such_detector
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A config with project 42 using an extra rule file, and a disabled project 43."""
    (tmp_path / "orders.yml").write_text(ORDERS_PACK)
    (tmp_path / "relay.yml").write_text(CONFIG)
    return load_config(tmp_path / "relay.yml")


@pytest.fixture
async def client(config: Config, aiohttp_client: Any) -> TestClient[Any, Any]:
    """A test client for the admin app."""
    return await aiohttp_client(create_admin_app(config))  # type: ignore[no-any-return]


async def explain(client: TestClient[Any, Any], body: Any, status: int = 200) -> dict[str, Any]:
    """POST /api/explain; check the status; return the JSON answer."""
    async with client.post("/api/explain", json=body) as resp:
        data: dict[str, Any] = await resp.json()
        assert resp.status == status, data
        assert resp.content_type == "application/json"
    return data


def triples(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(path, rule, action) of every redaction."""
    return {(r["path"], r["rule"], r["action"]) for r in result["redactions"]}


async def test_the_page_is_self_contained(client: TestClient[Any, Any]) -> None:
    """`/` is one HTML page: inline script and style allowed by hash, nothing loaded from elsewhere."""
    async with client.get("/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
        policy = resp.headers["Content-Security-Policy"]
    assert "Rule playground" in page
    assert not re.search(r"(src|href)=\"(?!data:)", page), "the page must not load anything"
    assert "http://" not in page and "https://" not in page
    assert policy.startswith("default-src 'none';")
    script = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(script) == 1
    digest = base64.b64encode(hashlib.sha256(script[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in policy


async def test_projects_list(client: TestClient[Any, Any]) -> None:
    """Every configured project with its rule packs, plus the top-level rules."""
    async with client.get("/api/projects") as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data == {
        "default_rules": ["secrets", "pii"],
        "projects": [
            {"id": 42, "rules": ["secrets", "pii", "./orders.yml"], "disabled": False},
            {"id": 43, "rules": ["secrets", "pii"], "disabled": True},
        ],
        "draft": "appended",
    }


async def test_explain_with_a_projects_rules(
    client: TestClient[Any, Any], config: Config, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """The answer is exactly what `relay rules explain --format json` prints for that project."""
    result = await explain(client, {"project": 42, "event": EVENT})
    assert result["project"] == 42
    assert result["rules"] == ["secrets", "pii", "./orders.yml"]
    assert triples(result) == PROJECT_42
    assert result["after"]["message"] == "payment failed for card [creditcard] on order [order]"
    body = orjson.dumps(result).decode()
    for secret in (EMAIL, PASSWORD, CARD, ORDER):
        assert secret not in body

    event_file = Path(config.source).parent / "event.json"
    event_file.write_bytes(orjson.dumps(EVENT))
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    assert main(["rules", "explain", "-c", config.source, "--project", "42", str(event_file), "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == result


async def test_the_event_box_text_and_the_top_level_rules(client: TestClient[Any, Any]) -> None:
    """`event` may be the text of the event box; `project: null` means the top-level rules."""
    text = orjson.dumps(EVENT, option=orjson.OPT_INDENT_2).decode()
    result = await explain(client, {"project": None, "event": text, "rules_yaml": "  "})
    assert result["project"] is None
    assert result["rules"] == ["secrets", "pii"]
    assert triples(result) == PROJECT_42 - {("message", "orders.number", "replaced")}
    assert ORDER in result["after"]["message"]


async def test_a_draft_rule_file_runs_after_the_projects_rules(client: TestClient[Any, Any]) -> None:
    """A draft's rules are added after the project's, as if appended to its `rules:`; nothing else changes."""
    result = await explain(client, {"project": 42, "event": EVENT, "rules_yaml": DRAFT})
    assert result["rules"] == ["secrets", "pii", "./orders.yml", "draft.yml"]
    assert triples(result) == PROJECT_42 | {("extra.ticket", "draft.ticket", "masked")}
    assert result["after"]["extra"]["ticket"] == "********** opened by support"
    assert result["before"]["extra"]["ticket"] == "«redacted 10 chars by draft.ticket» opened by support"
    again = await explain(client, {"project": 42, "event": EVENT})
    assert triples(again) == PROJECT_42  # the draft was not kept


async def test_the_playground_follows_the_servers_current_rules(config: Config, aiohttp_client: Any) -> None:
    """Given the server's rules as a source, a reload shows at once; the server's scrubbers are never used."""
    current = [ScrubberRegistry(config)]
    server_scrubber = current[0].for_project(config.project(42))
    client = await aiohttp_client(create_admin_app(config, lambda: current[0]))
    before = await explain(client, {"project": 42, "event": EVENT})
    assert ("message", "orders.number", "replaced") in triples(before)

    Path(config.source).with_name("orders.yml").write_text(ORDERS_PACK.replace("ORD-\\d{6}", "TICKET-\\d+"))
    current[0] = ScrubberRegistry(config)  # what a rule reload does
    after = await explain(client, {"project": 42, "event": EVENT})
    assert ("message", "orders.number", "replaced") not in triples(after)
    assert ("extra.ticket", "orders.number", "replaced") in triples(after)
    assert server_scrubber._found is None and not server_scrubber._root.children  # untouched: no caches filled


async def test_a_broken_draft_shows_the_loaders_problems(client: TestClient[Any, Any]) -> None:
    """A draft that doesn't compile: 400 with every problem as file:line: message, and no result."""
    data = await explain(client, {"project": 42, "event": EVENT, "rules_yaml": BROKEN_DRAFT}, status=400)
    assert data["detail"] == "the draft rule file has 2 problems"
    assert set(data) == {"detail", "problems"}
    assert re.match(r"draft\.yml:3:(\d+:)? rule draft\.ticket: invalid pattern", data["problems"][0]), data
    assert re.match(
        r"draft\.yml:[45]:(\d+:)? rule draft\.other: unknown detector 'no_such_detector'", data["problems"][1]
    )
    data = await explain(client, {"project": 42, "event": EVENT, "rules_yaml": "rules: [\n"}, status=400)
    assert re.match(r"draft\.yml:2:(\d+:)? invalid YAML", data["problems"][0]), data


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"project": 42, "event": '{"message": "x",}'}, "event: not valid JSON: trailing comma is not allowed (line 1"),
        (
            {"project": 42, "event": "{\n  'a': 1\n}"},
            "event: not valid JSON: unexpected character, expected a string key (line 2, column 3)",
        ),
        ({"project": 42, "event": ""}, "event: is empty"),
        ({"project": 42, "event": "[1]"}, "event: an event must be a JSON object, got an array"),
        ({"project": 42, "event": [1]}, "event: must be a JSON object"),
        ({"project": 42}, "event: paste an event"),
        ({"project": 7, "event": {}}, "unknown project 7 (configured projects: 42, 43)"),
        ({"project": "42", "event": {}}, "project must be a project id (a number) or null, got '42'"),
        ({"project": True, "event": {}}, "project must be a project id"),
        ({"event": {}, "rules_yaml": 3}, "rules_yaml must be the text of a rule file"),
        ({"event": {}, "rules": "x"}, "unknown key(s) rules; valid keys are: project, event, rules_yaml"),
        ([1, 2], "the request body must be a JSON object"),
        ({"event": {"a": DEEP}}, "the server would drop this event (scrubbing failed): payload nested deeper than"),
    ],
)
async def test_bad_requests_get_400_with_a_detail(client: TestClient[Any, Any], body: Any, detail: str) -> None:
    """Invalid input is a 400 with a JSON `detail` saying what is wrong; never a 500."""
    data = await explain(client, body, status=400)
    assert set(data) == {"detail"}
    assert data["detail"].startswith(detail), data["detail"]


async def test_malformed_requests(client: TestClient[Any, Any]) -> None:
    """A body that isn't JSON is a 400, another content type a 415, a huge body a 413; all JSON."""
    async with client.post("/api/explain", data="{nope", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["detail"].startswith("the request body is not valid JSON")
    async with client.post("/api/explain", data="{}", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415  # a cross-site form can't send JSON without a preflight we never allow
        assert (await resp.json())["detail"] == "send the request as JSON (Content-Type: application/json)"
    big = orjson.dumps({"event": {"message": "x" * (5 * 1024**2)}})
    async with client.post("/api/explain", data=big, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413
        assert "detail" in await resp.json()
    async with client.get("/api/nothing") as resp:
        assert resp.status == 404
        assert (await resp.json()) == {"detail": "Not Found"}


async def test_loopback_listener_refuses_other_host_names(client: TestClient[Any, Any]) -> None:
    """Bound to localhost, the listener answers only localhost names: a DNS-rebinding page gets a 403."""
    for host in ("evil.example", "evil.example:3001", "10.0.0.1"):
        async with client.get("/api/projects", headers={"Host": host}) as resp:
            assert resp.status == 403
    for host in ("localhost:3001", "127.0.0.1", "[::1]:3001"):
        async with client.get("/api/projects", headers={"Host": host}) as resp:
            assert resp.status == 200


def process_config(port: int, admin_port: int, enabled: bool = True) -> str:
    """A config for a `relay run` process with (or without) the admin listener."""
    return f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream: {{url: "http://127.0.0.1:9"}}
spool: {{backend: memory}}
log: {{level: info, format: json}}
shutdown_timeout: 2s
admin: {{enabled: {str(enabled).lower()}, host: 127.0.0.1, port: {admin_port}}}
projects:
  - id: 42
    keys: ["{KEY}"]
"""


async def test_relay_run_serves_the_playground_on_the_admin_port_only(start_relay: Any) -> None:
    """`relay run` with `admin.enabled` serves the playground on its own port; the ingest port doesn't."""
    port, admin_port = free_port(), free_port()
    relay = await start_relay(process_config(port, admin_port), port)
    admin = f"http://127.0.0.1:{admin_port}"
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        listening = await relay.wait_log("admin listening")
        assert listening["addresses"] == [f"127.0.0.1:{admin_port}"]
        assert listening["playground"] == f"{admin}/"
        async with session.get(f"{admin}/") as resp:
            assert resp.status == 200
            assert "Rule playground" in await resp.text()
        async with session.post(f"{admin}/api/explain", json={"project": 42, "event": EVENT}) as resp:
            assert resp.status == 200
            assert ("message", "pii.credit_card", "replaced") in triples(await resp.json())
        for path in ("/", "/api/projects"):
            async with session.get(f"{relay.url}{path}") as resp:
                assert resp.status == 404
        async with session.post(f"{relay.url}/api/explain", json={"event": EVENT}) as resp:
            assert resp.status in (404, 405)
        for path in ("/readyz", "/metrics"):  # and the admin port serves none of the ingest routes
            async with session.get(f"{admin}{path}") as resp:
                assert resp.status == 404
    code, _ = await relay.stop(signal.SIGTERM, timeout=10)
    assert code == 0, "\n".join(relay.raw)


async def test_the_admin_listener_is_off_by_default(start_relay: Any) -> None:
    """Without `admin.enabled` nothing listens on the admin port."""
    port, admin_port = free_port(), free_port()
    relay = await start_relay(process_config(port, admin_port, enabled=False), port)
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{admin_port}/"):
                pass
    assert relay.log("admin listening") is None
    code, _ = await relay.stop(signal.SIGTERM, timeout=10)
    assert code == 0
