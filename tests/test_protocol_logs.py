"""aiohttp's own error logs never quote a request: a malformed header line with the relay key or a cookie."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from relay.logs import configure_logging

from .support import free_port, relay_process

KEY = "abcdef0123456789abcdef0123456789"
MALFORMED = (
    # a bad header name, after the key and a session cookie
    f"POST /api/42/envelope/ HTTP/1.1\r\nHost: relay\r\nX-Sentry-Auth: Sentry sentry_key={KEY}\r\n"
    "Cookie: session=SUPERSECRETCOOKIE\r\nBad Header\x01: v\r\n\r\n".encode(),
    # a NUL in a cookie's value
    b"GET /api/42/envelope/ HTTP/1.1\r\nHost: relay\r\nCookie: sid=SECRETSID2\x00x\r\n\r\n",
)


def test_malformed_requests_log_no_header_values(tmp_path: Path) -> None:
    """Through `relay run` as deployed: malformed requests get 400, and its logs hold no key, cookie or address."""
    port = free_port()
    config = tmp_path / "relay.yml"
    config.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\nupstream: {{url: 'http://127.0.0.1:9'}}\n"
        f"projects:\n  - id: 42\n    keys: ['{KEY}']\n",
        encoding="utf-8",
    )
    with relay_process(config, port) as proc:
        for payload in MALFORMED:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(payload)
                assert b" 400 " in sock.recv(64)
    err = proc.stderr_text
    assert '"relay ready"' in err
    for secret in (KEY, "SUPERSECRETCOOKIE", "SECRETSID2", "Bad Header"):
        assert secret not in err, err
    assert '"level":"error"' not in err, err


def test_other_aiohttp_errors_are_logged_by_type_and_place(capsys: pytest.CaptureFixture[str]) -> None:
    """An unexpected exception in aiohttp's request handling stays an ERROR, without its message or traceback."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("info", "json")
        try:
            raise RuntimeError("Cookie: session=SECRET3")
        except RuntimeError:
            logging.getLogger("aiohttp.server").exception("Error handling request from %s", "203.0.113.7")
    finally:
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    line = json.loads(err.strip().splitlines()[-1])
    assert line["level"] == "error" and line["error"] == "RuntimeError" and "test_protocol_logs.py:" in line["where"]
    assert "exc" not in line and "SECRET3" not in err and "203.0.113.7" not in err
