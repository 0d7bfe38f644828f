"""The `relay` command in-process: check-config summaries, exit codes, problems on stderr, RELAY_CONFIG."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relay import __version__
from relay.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "0123456789abcdef0123456789abcdef"

VALID = f"""
listen: {{host: 0.0.0.0, port: 3111}}
upstream:
  url: https://sentry.example.com
  timeout: 7s
  concurrency: 4
queue: {{max_envelopes: 500, max_bytes: 64MiB}}
unknown_projects: forward
projects:
  - id: 42
    keys: ["{KEY}", other]
    upstream_dsn: https://pubkey@o1.ingest.example.com/4501
  - id: 43
    keys: [k43]
    disabled: true
"""

INVALID = """
listen: {port: 99999}
upstream: {url: 'ftp://nope', timeout: soon, tiemout: 3s}
projects:
  - id: 1
  - id: 1
    keys: [a]
    upstream_dsn: not-a-dsn
"""


@pytest.fixture
def no_relay_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELAY_CONFIG unset, so tests see the documented default."""
    monkeypatch.delenv("RELAY_CONFIG", raising=False)


def write(tmp_path: Path, text: str, name: str = "relay.yml") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_config_valid_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config on a valid file exits 0 and summarizes listen, upstream, queue and projects."""
    path = write(tmp_path, VALID)
    assert main(["check-config", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0] == f"{path}: OK"
    assert "listen: 0.0.0.0:3111" in out
    assert "upstream: https://sentry.example.com (timeout 7s, concurrency 4)" in out
    assert "unknown_projects: forward" in out
    assert "queue: 500 envelopes / 64MiB" in out
    assert "projects: 2" in out
    assert "42: 2 key(s) -> https://o1.ingest.example.com/4501" in out
    assert "43: 1 key(s) -> https://sentry.example.com (disabled)" in out


def test_check_config_summary_hides_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary counts keys but never prints local or upstream public keys."""
    path = write(tmp_path, VALID)
    assert main(["check-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert KEY not in out
    assert "pubkey" not in out


def test_check_config_invalid_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid file exits 2 and prints each problem with file and dotted key path on stderr."""
    path = write(tmp_path, INVALID)
    assert main(["check-config", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}: ")
    assert "problem" in lines[0]
    problems = [line.strip() for line in lines[1:]]
    for key_path in (
        "listen.port",
        "upstream.url",
        "upstream.timeout",
        "upstream.tiemout",
        "projects[0].keys",
        "projects[1].id",
        "projects[1].upstream_dsn",
    ):
        assert any(p.startswith(f"{path}: {key_path}: ") for p in problems), (key_path, problems)
    assert f"{len(problems)} problem(s)" in lines[0]
    unknown = next(p for p in problems if "upstream.tiemout" in p)
    assert "valid keys are" in unknown and "timeout" in unknown


def test_run_with_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`relay run` refuses to start on an invalid config, with the same problem list."""
    path = write(tmp_path, INVALID)
    assert main(["run", "--config", str(path)]) == 2
    assert "projects[0].keys" in capsys.readouterr().err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file is a config problem (exit 2) naming the path."""
    path = tmp_path / "absent.yml"
    assert main(["check-config", "--config", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_check_config_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Broken YAML exits 2 with file and line."""
    path = write(tmp_path, "listen:\n  port: [1, 2\n")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+: invalid YAML", err), err


def test_check_config_crashing_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrongly typed value (numeric upstream_dsn) is a reported problem with exit 2, not a traceback."""
    path = write(tmp_path, "projects: [{id: 1, keys: [a], upstream_dsn: 4501}]\n")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "projects[0].upstream_dsn" in capsys.readouterr().err


def test_relay_config_env_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --config, RELAY_CONFIG names the file."""
    path = write(tmp_path, VALID, "from-env.yml")
    monkeypatch.setenv("RELAY_CONFIG", str(path))
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: OK")


def test_flag_overrides_relay_config_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config wins over RELAY_CONFIG."""
    good = write(tmp_path, VALID, "good.yml")
    monkeypatch.setenv("RELAY_CONFIG", str(tmp_path / "missing.yml"))
    assert main(["check-config", "--config", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{good}: OK")


@pytest.mark.usefixtures("no_relay_config")
def test_default_is_relay_yml_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without flag or env, ./relay.yml is read."""
    write(tmp_path, VALID)
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith("relay.yml: OK")


@pytest.mark.usefixtures("no_relay_config")
def test_default_missing_relay_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without flag, env or ./relay.yml, the error names relay.yml."""
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 2
    assert "relay.yml" in capsys.readouterr().err


def test_env_substitution_in_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config substitutes from the process environment; a missing variable is a problem."""
    path = write(tmp_path, "listen: {port: '${RELAY_TEST_CLI_PORT}'}\n")
    monkeypatch.delenv("RELAY_TEST_CLI_PORT", raising=False)
    assert main(["check-config", "--config", str(path)]) == 2
    assert "listen.port" in capsys.readouterr().err
    monkeypatch.setenv("RELAY_TEST_CLI_PORT", "3999")
    assert main(["check-config", "--config", str(path)]) == 0
    assert "listen: 127.0.0.1:3999" in capsys.readouterr().out


def test_example_config_checks(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """relay.example.yml passes check-config."""
    for name in ("RELAY_HOST", "RELAY_PORT", "RELAY_UPSTREAM"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check-config", "--config", str(REPO_ROOT / "relay.example.yml")]) == 0
    assert "projects: 1" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"relay {__version__}"


def test_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """No subcommand is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err
