"""`relay check-config` and `relay run` never print a DSN's key or a URL's password, however malformed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relay.cli import main

SECRETS = ("topsecretkey999", "otherkey777", "pw456", "redispass1", "dsnkey4501")


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "relay.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


BROKEN = """
projects:
  - id: 42
    keys: [abc]
    upstream_dsn: "https://topsecretkey999@o1.ingest.sentry.io/x42"
  - id: 43
    keys: [abd]
    upstream_dsn: "topsecretkey999@o1.ingest.sentry.io/43"
  - id: 44
    keys: [abe]
    upstream_dsn: "htps//otherkey777:pw456@host.io/1"
"""

VALID = """
upstream: {url: "https://relayuser:pw456@sentry.example.com"}
ratelimit: {backend: redis, url: "redis://:redispass1@127.0.0.1:6379/0"}
projects:
  - id: 4501
    keys: [abc]
    upstream_dsn: https://dsnkey4501@o1.ingest.example.com/4501
"""


def test_config_problems_mask_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", _write(tmp_path, BROKEN)]) == 2
    err = capsys.readouterr().err
    assert "projects[0].upstream_dsn" in err and "projects[2].upstream_dsn" in err  # the problems are all there
    assert "[Filtered]@o1.ingest.sentry.io" in err
    assert not any(secret in err for secret in SECRETS), err


def test_summary_masks_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", _write(tmp_path, VALID)]) == 0
    out = capsys.readouterr().out
    assert "sentry.example.com" in out and "127.0.0.1:6379" in out
    assert not any(secret in out for secret in SECRETS), out


def test_run_with_a_broken_dsn_masks_it(tmp_path: Path) -> None:
    """`relay run` fails on the same config, as a real process, without printing the key."""
    done = subprocess.run(
        [sys.executable, "-m", "relay", "run", "--config", _write(tmp_path, BROKEN)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "upstream_dsn" in done.stderr
    assert not any(secret in done.stderr + done.stdout for secret in SECRETS), done.stderr


def test_absurd_numbers_are_config_problems_not_crashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 400-digit duration or size is reported with its key, not a traceback (and not its 400 digits)."""
    huge = "9" * 400
    text = f"shutdown_timeout: {huge}\nlimits: {{max_body_size: {huge}MiB}}\nqueue: {{max_bytes: {huge}}}\n"
    assert main(["check-config", "--config", _write(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert "shutdown_timeout" in err and "limits.max_body_size" in err and "queue.max_bytes" in err
    assert "9" * 60 not in err
