"""`relay scrub`: offline scrubbing of JSON lines with exactly the server's engine and a project's rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from relay.config import Config, load_config
from relay.scrub.registry import ScrubberRegistry

ROOT = Path(__file__).resolve().parents[2]
KEY = "0123456789abcdef0123456789abcdef"

ORDERS_PACK = """\
pack: orders
rules:
  - id: orders.number
    description: Order numbers like ORD-123456.
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
"""

EVENTS: list[dict[str, Any]] = [
    {"message": "order ORD-123456 for alice@example.com", "level": "error"},
    {"extra": {"password": "hunter2", "card": "4111 1111 1111 1111"}, "user": {"ip_address": "203.0.113.9"}},
    {
        "logentry": {
            "message": "login password=%s",
            "params": ["Hunter2-pw"],
            "formatted": "login password=Hunter2-pw",
        },
        "exception": {
            "values": [{"type": "E", "stacktrace": {"frames": [{"filename": "/home/alice/x.py", "lineno": 3}]}}]
        },
    },
]


def write_config(tmp_path: Path) -> Path:
    """A config with project 42 using an extra rule file next to it."""
    (tmp_path / "orders.yml").write_text(ORDERS_PACK)
    path = tmp_path / "relay.yml"
    path.write_text(CONFIG)
    return path


def run(args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m relay ...` in a subprocess, without RELAY_CONFIG from the environment."""
    env = {k: v for k, v in os.environ.items() if k != "RELAY_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "relay", *args], cwd=cwd, input=stdin, capture_output=True, env=env, timeout=60
    )


def server_output(config: Config, project_id: int | None, events: list[dict[str, Any]]) -> bytes:
    """What the server's engine makes of these events for that project, one JSON per line."""
    project = config.project(project_id) if project_id is not None else None
    scrubber = ScrubberRegistry(config).for_project(project)
    return b"".join(orjson.dumps(scrubber.scrub_event(orjson.loads(orjson.dumps(e)))) + b"\n" for e in events)


def jsonl(events: list[Any]) -> bytes:
    """Events as JSON lines."""
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def test_scrubs_each_line_like_the_server(tmp_path: Path) -> None:
    """Each input line becomes one scrubbed JSON line, identical to the server's engine for that project."""
    config_path = write_config(tmp_path)
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(EVENTS))
    result = run(["scrub", "--config", str(config_path), "--project", "42", str(source)], tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert result.stdout == server_output(load_config(config_path), 42, EVENTS)
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["message"] == "order [order] for [email]"
    assert lines[1]["extra"] == {"password": "[Filtered]", "card": "[creditcard]"}
    assert lines[1]["user"] == {"ip_address": None}
    assert lines[2]["logentry"] == {
        "message": "login password=%s",
        "params": ["[Filtered]"],
        "formatted": "login password=[Filtered]",
    }
    assert b"Hunter2-pw" not in result.stdout


def test_project_rules_chosen_by_project(tmp_path: Path) -> None:
    """Another project (and no --project) gets the top-level rules: the order number stays."""
    config_path = write_config(tmp_path)
    source = tmp_path / "events.jsonl"
    source.write_bytes(jsonl(EVENTS[:1]))
    for args in (["--project", "43"], []):
        result = run(["scrub", "--config", str(config_path), *args, str(source)], tmp_path)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == server_output(load_config(config_path), None, EVENTS[:1])
        assert orjson.loads(result.stdout)["message"] == "order ORD-123456 for [email]"


def test_invalid_lines_reported_not_echoed(tmp_path: Path) -> None:
    """Bad lines are reported on stderr by line number, never written anywhere; the exit code is 1."""
    config_path = write_config(tmp_path)
    source = tmp_path / "events.jsonl"
    source.write_bytes(
        orjson.dumps(EVENTS[0])
        + b"\n\n"  # a blank line: skipped silently, still counted
        + b'{"broken": "mallory@example.com", "password": "Sw0rdfish!"\n'
        + b'["an array", "eve@example.com"]\n'
        + orjson.dumps(EVENTS[1])
        + b"\n"
    )
    result = run(["scrub", "--config", str(config_path), "--project", "42", str(source)], tmp_path)
    assert result.returncode == 1
    assert result.stdout == server_output(load_config(config_path), 42, [EVENTS[0], EVENTS[1]])
    stderr = result.stderr.decode()
    lines = stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("line 3: skipped (not written): ")
    assert lines[1] == "line 4: skipped (not written): not a JSON object"
    for secret in (b"mallory@example.com", b"Sw0rdfish!", b"eve@example.com"):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_reads_stdin_with_dash(tmp_path: Path) -> None:
    """`-` reads the events from standard input."""
    config_path = write_config(tmp_path)
    result = run(["scrub", "--config", str(config_path), "--project", "42", "-"], tmp_path, stdin=jsonl(EVENTS))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == server_output(load_config(config_path), 42, EVENTS)


def test_stdin_is_the_default_input(tmp_path: Path) -> None:
    """Without a file argument, standard input is read."""
    config_path = write_config(tmp_path)
    result = run(["scrub", "--config", str(config_path)], tmp_path, stdin=jsonl(EVENTS))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == server_output(load_config(config_path), None, EVENTS)


def test_no_config_uses_default_packs(tmp_path: Path) -> None:
    """With no config file in the working directory, the default packs (secrets, pii) are used."""
    assert not (tmp_path / "relay.yml").exists()
    result = run(["scrub", "-"], tmp_path, stdin=jsonl(EVENTS))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == server_output(Config(), None, EVENTS)
    first = orjson.loads(result.stdout.splitlines()[0])
    assert first["message"] == "order ORD-123456 for [email]"


def test_config_in_working_directory_is_used(tmp_path: Path) -> None:
    """Without --config, `relay.yml` in the working directory is the config."""
    write_config(tmp_path)
    result = run(["scrub", "--project", "42", "-"], tmp_path, stdin=jsonl(EVENTS[:1]))
    assert result.returncode == 0, result.stderr.decode()
    assert orjson.loads(result.stdout)["message"] == "order [order] for [email]"


def test_missing_input_file(tmp_path: Path) -> None:
    """A missing input file is an error (exit 2), with nothing on stdout."""
    config_path = write_config(tmp_path)
    result = run(["scrub", "--config", str(config_path), str(tmp_path / "nope.jsonl")], tmp_path)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().startswith("relay scrub: ")
    assert "nope.jsonl" in result.stderr.decode()


def test_broken_config_refused(tmp_path: Path) -> None:
    """A named config that does not load is refused with exit 2 before anything is read."""
    config_path = tmp_path / "relay.yml"
    config_path.write_text("rules: [no_such_pack]\n")
    result = run(["scrub", "--config", str(config_path), "-"], tmp_path, stdin=jsonl(EVENTS))
    assert result.returncode == 2
    assert result.stdout == b""
    assert "rules[0]: no_such_pack: no shipped rule pack by that name" in result.stderr.decode()
