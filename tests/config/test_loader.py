"""The config loader: ${VAR} substitution, units, and problems that name the file and the key path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from relay.config import Config, UnknownProjects, load_config, parse_config
from relay.errors import ConfigError
from relay.units import parse_duration, parse_size

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "0123456789abcdef0123456789abcdef"


def problems_of(text: str, env: dict[str, str] | None = None, source: str = "relay.yml") -> list[str]:
    """The problems parse_config reports for `text` (fails if it parses cleanly)."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source, env or {})
    assert info.value.problems, "ConfigError without problems"
    return info.value.problems


def parse(text: str, env: dict[str, str] | None = None) -> Config:
    """Parse config text that must be valid."""
    return parse_config(text, "relay.yml", env or {})


def only_problem(problems: list[str], needle: str) -> str:
    """The single problem mentioning `needle`."""
    found = [p for p in problems if needle in p]
    assert len(found) == 1, f"expected one problem about {needle!r}, got {problems}"
    return found[0]


# -- ${VAR} substitution ---------------------------------------------------------------------------


def test_env_var_is_substituted() -> None:
    """${VAR} is replaced by the environment value and then validated as the key's type."""
    config = parse(
        "listen: {host: '${HOST}', port: '${PORT}'}\nshutdown_timeout: '${GRACE}'",
        {"HOST": "0.0.0.0", "PORT": "8080", "GRACE": "250ms"},
    )
    assert config.listen.host == "0.0.0.0"
    assert config.listen.port == 8080
    assert config.shutdown_timeout == pytest.approx(0.25)


def test_env_var_default_used_when_unset_or_empty() -> None:
    """${VAR:-default} falls back to the default when VAR is unset or empty."""
    text = "listen: {port: '${PORT:-3100}'}\nupstream: {url: '${UP:-https://sentry.example.com}'}"
    assert parse(text).listen.port == 3100
    assert parse(text, {"PORT": ""}).listen.port == 3100
    config = parse(text, {"PORT": "3200", "UP": "http://up.internal:9000/"})
    assert config.listen.port == 3200
    assert config.upstream.url == "http://up.internal:9000"


def test_env_var_empty_default_gives_empty_string() -> None:
    """${VAR:-} substitutes an empty string instead of reporting a problem."""
    config = parse("listen: {host: 'a${SUFFIX:-}'}")
    assert config.listen.host == "a"


def test_set_but_empty_env_var_without_default_is_empty() -> None:
    """${VAR} set to the empty string substitutes as empty, not as missing."""
    config = parse("listen: {host: 'x${EMPTY}y'}", {"EMPTY": ""})
    assert config.listen.host == "xy"


def test_several_references_in_one_value() -> None:
    """Several references and literal text combine in one string."""
    config = parse(
        "upstream: {url: 'http://${HOST}:${PORT:-9000}/${PREFIX}'}",
        {"HOST": "sentry.internal", "PREFIX": "relay"},
    )
    assert config.upstream.url == "http://sentry.internal:9000/relay"


def test_env_vars_inside_lists() -> None:
    """References inside list values (keys, allowed_origins) are substituted item by item."""
    text = f"""
projects:
  - id: '${{PID}}'
    keys: ["${{KEY_A}}", "{KEY}", "${{KEY_B:-fallbackkey}}"]
    allowed_origins: ["https://${{DOMAIN}}", "https://*.${{DOMAIN}}"]
"""
    config = parse(text, {"PID": "7", "KEY_A": "aaaa", "DOMAIN": "example.com"})
    project = config.projects[0]
    assert project.id == 7
    assert project.keys == ("aaaa", KEY, "fallbackkey")
    assert project.allowed_origins == ("https://example.com", "https://*.example.com")


def test_double_dollar_is_a_literal_dollar() -> None:
    """`$$` is a literal `$`, so `$${VAR}` stays the text `${VAR}`; a lone `$` is left alone."""
    config = parse(
        "listen: {host: 'a$$b'}\nupstream: {url: 'http://h/p$$q'}\n"
        "projects: [{id: 1, keys: [k], allowed_origins: ['$${NOT_A_VAR}', 'x$y']}]",
        {"NOT_A_VAR": "substituted"},
    )
    assert config.listen.host == "a$b"
    assert config.upstream.url == "http://h/p$q"
    assert config.projects[0].allowed_origins == ("${NOT_A_VAR}", "x$y")


def test_env_value_is_not_substituted_again() -> None:
    """A value that itself contains `${...}` is used verbatim (no recursive expansion)."""
    config = parse("listen: {host: '${A}'}", {"A": "${B}", "B": "nested"})
    assert config.listen.host == "${B}"


def test_missing_env_var_names_the_key() -> None:
    """A reference to an unset variable without default is a problem naming the file, key path and variable."""
    problems = problems_of("upstream: {url: '${RELAY_UPSTREAM_URL}'}", source="/etc/relay/relay.yml")
    problem = only_problem(problems, "RELAY_UPSTREAM_URL")
    assert problem.startswith("/etc/relay/relay.yml: upstream.url: ")
    assert "not set" in problem


def test_missing_env_var_in_list_names_the_index() -> None:
    """An unset variable inside a list names the list index in the key path."""
    problems = problems_of("projects: [{id: 3, keys: ['goodkey', '${MISSING_KEY}']}]")
    problem = only_problem(problems, "MISSING_KEY")
    assert "projects[0].keys[1]" in problem


# -- durations and sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("250ms", 0.25),
        ("10s", 10.0),
        ("1m", 60.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("7", 7.0),
        (3, 3.0),
        (0.5, 0.5),
        (" 2 s ", 2.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    """Durations take ms/s/m/h/d suffixes or bare seconds."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["1w", "ten seconds", "-1s", -1, True, None, [], "1e3s", ""])
def test_parse_duration_rejects(value: object) -> None:
    """Malformed, negative and non-scalar durations raise ValueError."""
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (512, 512),
        ("512", 512),
        ("64KiB", 65536),
        ("64k", 64000),
        ("20MB", 20_000_000),
        ("20MiB", 20 * 1024**2),
        ("1GiB", 1024**3),
        ("1.5KiB", 1536),
        ("10 mib", 10 * 1024**2),
        ("1Ti", 1024**4),
        ("7b", 7),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    """Sizes take decimal (kB, MB) and binary (KiB, MiB) units, case-insensitive."""
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["ten", "5 parsecs", "-1", -1, 1.5, True, None, "1e3"])
def test_parse_size_rejects(value: object) -> None:
    """Malformed and negative sizes raise ValueError."""
    with pytest.raises(ValueError):
        parse_size(value)


def test_durations_and_sizes_in_config() -> None:
    """Config keys accept durations and sizes in their human forms."""
    config = parse(
        """
upstream: {timeout: 1500ms, connect_timeout: 2s, retry: {initial: 100ms, max: 1m, max_elapsed: 0}, batch: {linger: 5ms}}
shutdown_timeout: 30s
limits: {max_body_size: 1MiB, max_event_size: 256KiB, max_attachment_size: 5MB}
queue: {max_bytes: 1GiB}
"""
    )
    assert config.upstream.timeout == pytest.approx(1.5)
    assert config.upstream.connect_timeout == 2.0
    assert config.upstream.retry.initial == pytest.approx(0.1)
    assert config.upstream.retry.max == 60.0
    assert config.upstream.retry.max_elapsed == 0.0
    assert config.upstream.batch.linger == pytest.approx(0.005)
    assert config.shutdown_timeout == 30.0
    assert config.limits.max_body_size == 1024**2
    assert config.limits.max_event_size == 256 * 1024
    assert config.limits.max_attachment_size == 5_000_000
    assert config.queue.max_bytes == 1024**3


def test_invalid_durations_and_sizes_name_their_keys() -> None:
    """Bad durations and sizes are problems at their dotted key paths."""
    problems = problems_of(
        "upstream: {timeout: 0s, retry: {initial: soon}}\n"
        "limits: {max_body_size: huge, max_event_size: 0}\n"
        "shutdown_timeout: -5s"
    )
    only_problem(problems, "upstream.timeout:")
    only_problem(problems, "upstream.retry.initial:")
    only_problem(problems, "limits.max_body_size:")
    only_problem(problems, "limits.max_event_size:")
    only_problem(problems, "shutdown_timeout:")


@pytest.mark.parametrize("key", ["shutdown_timeout", "upstream.timeout", "upstream.retry.max_elapsed"])
def test_nan_durations_are_problems(key: str) -> None:
    """YAML's .nan is not a duration: a NaN timeout is reported, not accepted."""
    value = ".nan"
    section, _, name = key.rpartition(".")
    if not section:
        text = f"{name}: {value}"
    elif section == "upstream":
        text = f"upstream: {{{name}: {value}}}"
    else:
        text = f"upstream: {{retry: {{{name}: {value}}}}}"
    only_problem(problems_of(text), f"{key}:")


def test_max_rate_limit_defaults_to_an_hour_and_takes_a_duration() -> None:
    """`upstream.max_rate_limit` caps limits the upstream announces: 1h unless set, in any duration form."""
    assert parse("").upstream.max_rate_limit == 3600.0
    assert parse("upstream: {max_rate_limit: 10m}").upstream.max_rate_limit == 600.0
    assert parse("upstream: {max_rate_limit: 90}").upstream.max_rate_limit == 90.0


@pytest.mark.parametrize(
    ("value", "message"),
    [("forever", 'expected a duration like "30s"'), ("0", "expected a duration above zero"), (".inf", "non-negative")],
)
def test_invalid_max_rate_limit_names_file_and_key(value: str, message: str) -> None:
    """A bad ceiling is a problem naming the file and `upstream.max_rate_limit`."""
    problem = only_problem(problems_of(f"upstream: {{max_rate_limit: {value}}}"), "max_rate_limit")
    assert problem.startswith("relay.yml: upstream.max_rate_limit: ") and message in problem


# -- problems: all at once, with file and key path -------------------------------------------------


def test_all_problems_are_reported_at_once() -> None:
    """One parse reports every problem, each prefixed with the file and its key path."""
    text = """
listen: {port: 99999, hots: x}
upstream: {url: 'ftp://nope', timeout: never, concurrency: 0, compression: lzma, retry: {initial: 2s, max: 1s}}
projects:
  - id: 1
    keys: ["bad key!"]
    upstream_dsn: "not a dsn"
  - keys: [abc]
unknown_projects: maybe
log: {level: loud, format: xml}
queue: {max_envelopes: 0}
"""
    problems = problems_of(text, source="conf/relay.yml")
    expected_paths = [
        "listen.port:",
        "listen.hots:",
        "upstream.url:",
        "upstream.timeout:",
        "upstream.concurrency:",
        "upstream.compression:",
        "upstream.retry.max:",
        "projects[0].keys:",
        "projects[0].upstream_dsn:",
        "projects[1].id:",
        "unknown_projects:",
        "log.level:",
        "log.format:",
        "queue.max_envelopes:",
    ]
    for path in expected_paths:
        only_problem(problems, f"conf/relay.yml: {path}")
    assert len(problems) == len(expected_paths), problems
    assert all(p.startswith("conf/relay.yml: ") for p in problems)


def test_project_without_id_still_reports_its_other_problems() -> None:
    """A project missing its id still has its other keys checked, so every problem shows in one run."""
    problems = problems_of("projects:\n  - keys: ['not valid!']\n    upstream_dsn: nonsense\n    disabled: perhaps")
    only_problem(problems, "projects[0].id:")
    only_problem(problems, "projects[0].keys:")
    only_problem(problems, "projects[0].upstream_dsn:")
    only_problem(problems, "projects[0].disabled:")


def test_project_keys_are_required() -> None:
    """A project without `keys` is a problem at projects[i].keys."""
    problem = only_problem(problems_of("projects: [{id: 5}]"), "projects[0].keys:")
    assert "required" in problem


def test_wrong_section_types_are_problems() -> None:
    """A section that is not a mapping (or projects not a list) is named with its expected type."""
    problems = problems_of("listen: 3000\nupstream: [a, b]\nprojects: {id: 1}\nlimits: 5")
    for path in ("listen:", "upstream:", "projects:", "limits:"):
        problem = only_problem(problems, f"relay.yml: {path}")
        assert "expected" in problem


def test_top_level_must_be_a_mapping() -> None:
    """A YAML list at the top level is reported as such."""
    problems = problems_of("- listen\n- upstream\n")
    assert any("expected a mapping" in p for p in problems)


def test_empty_file_gives_defaults() -> None:
    """An empty file is a valid config with every default."""
    config = parse("")
    assert config == Config(source="relay.yml")
    assert config.unknown_projects is UnknownProjects.REJECT


# -- projects ---------------------------------------------------------------------------------------


def test_duplicate_project_ids() -> None:
    """A repeated project id is a problem naming both positions."""
    problems = problems_of(
        f"projects:\n  - {{id: 42, keys: [{KEY}]}}\n  - {{id: 7, keys: [a]}}\n  - {{id: 42, keys: [b]}}"
    )
    problem = only_problem(problems, "duplicate")
    assert "projects[2].id" in problem
    assert "projects[0]" in problem
    assert "42" in problem


def test_duplicate_ids_via_env_substitution() -> None:
    """Ids are compared after substitution and conversion, so '42' and 42 collide."""
    problems = problems_of("projects:\n  - {id: 42, keys: [a]}\n  - {id: '${PID}', keys: [b]}", {"PID": "42"})
    only_problem(problems, "projects[1].id: duplicate")


def test_invalid_ids_are_not_reported_as_duplicates() -> None:
    """Two projects with invalid ids get one problem each, not a spurious 'duplicate' as well."""
    problems = problems_of("projects:\n  - {id: abc, keys: [a]}\n  - {id: -3, keys: [b]}")
    only_problem(problems, "projects[0].id:")
    only_problem(problems, "projects[1].id:")
    assert not [p for p in problems if "duplicate" in p], problems


@pytest.mark.parametrize(
    "dsn",
    [
        "not a dsn",
        "ftp://key@host/1",
        "https://host/1",
        "https://key@/1",
        "https://key@host/",
        "https://key@host/project",
        "",
    ],
)
def test_invalid_upstream_dsn(dsn: str) -> None:
    """An unparseable upstream_dsn is a problem at projects[i].upstream_dsn."""
    problems = problems_of(f"projects: [{{id: 1, keys: [a], upstream_dsn: '{dsn}'}}]")
    only_problem(problems, "projects[0].upstream_dsn:")


@pytest.mark.parametrize("value", ["12345", "[a, b]"])
def test_non_string_upstream_dsn_is_a_problem(value: str) -> None:
    """A non-string upstream_dsn is reported as a problem, not a crash."""
    problems = problems_of(f"projects: [{{id: 1, keys: [a], upstream_dsn: {value}}}]")
    only_problem(problems, "projects[0].upstream_dsn:")


def test_valid_upstream_dsn_is_parsed() -> None:
    """A full DSN with port and path prefix is split into its parts."""
    config = parse("projects: [{id: 1, keys: [a], upstream_dsn: 'https://pub@o1.ingest.example.com:8443/sentry/4501'}]")
    dsn = config.projects[0].upstream_dsn
    assert dsn is not None
    assert dsn.public_key == "pub"
    assert dsn.project_id == "4501"
    assert dsn.base_url == "https://o1.ingest.example.com:8443/sentry"


def test_unknown_keys_name_the_valid_keys() -> None:
    """Unknown keys are problems at their path, listing the valid keys of that section."""
    problems = problems_of(
        "listne: {}\nupstream: {tiemout: 3s, retry: {intial: 1s}}\nprojects: [{id: 1, keys: [a], key: b}]"
    )
    top = only_problem(problems, "relay.yml: listne:")
    assert "listen" in top and "upstream" in top and "projects" in top
    up = only_problem(problems, "upstream.tiemout:")
    assert "timeout" in up and "connect_timeout" in up
    retry = only_problem(problems, "upstream.retry.intial:")
    assert "initial" in retry and "max_elapsed" in retry
    project = only_problem(problems, "projects[0].key:")
    assert "keys" in project and "upstream_dsn" in project


# -- YAML and files ---------------------------------------------------------------------------------


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    """A YAML syntax error names the file and the line it is on."""
    path = tmp_path / "broken.yml"
    path.write_text("listen:\n  port: 3000\nupstream:\n  url: [unclosed\n  timeout: 5s\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:")
    line = int(problem[len(str(path)) + 1 :].split(":")[0])
    assert 4 <= line <= 6
    assert "invalid YAML" in problem


def test_tab_indentation_is_a_yaml_problem(tmp_path: Path) -> None:
    """Tabs in indentation are reported as invalid YAML with a line number."""
    path = tmp_path / "tabs.yml"
    path.write_text("listen:\n\tport: 3000\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems[0].startswith(f"{path}:2:")


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    """A missing config file is a ConfigError naming the path."""
    path = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in info.value.problems[0]


def test_non_utf8_file_is_a_problem(tmp_path: Path) -> None:
    """A file that is not UTF-8 is a ConfigError naming the path, not a UnicodeDecodeError."""
    path = tmp_path / "latin1.yml"
    path.write_bytes("listen: {host: 'caf\u00e9'}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in info.value.problems[0]


def test_load_config_uses_given_env(tmp_path: Path) -> None:
    """load_config substitutes from the env mapping it is given."""
    path = tmp_path / "relay.yml"
    path.write_text("listen: {port: '${P}'}\n")
    config = load_config(path, env={"P": "4321"})
    assert config.listen.port == 4321
    assert config.source == str(path)


def test_load_config_defaults_to_process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an env mapping, load_config reads os.environ."""
    monkeypatch.setenv("RELAY_TEST_PORT", "5123")
    path = tmp_path / "relay.yml"
    path.write_text("listen: {port: '${RELAY_TEST_PORT}'}\n")
    assert load_config(path).listen.port == 5123


def test_example_config_loads_cleanly() -> None:
    """relay.example.yml at the repo root is valid with no environment set."""
    config = load_config(REPO_ROOT / "relay.example.yml", env={})
    assert config.listen.port == 3000
    assert config.upstream.url.startswith("file://")
    assert [p.id for p in config.projects] == [42]
    assert config.shutdown_timeout == 10.0
    assert math.isclose(config.upstream.batch.linger, 0.002)
    assert config.upstream.max_rate_limit == 3600.0


def test_example_config_honours_its_env_vars() -> None:
    """The example's ${RELAY_*} references take the environment when set."""
    config = load_config(
        REPO_ROOT / "relay.example.yml",
        env={"RELAY_HOST": "0.0.0.0", "RELAY_PORT": "8000", "RELAY_UPSTREAM": "https://sentry.example.com"},
    )
    assert (config.listen.host, config.listen.port) == ("0.0.0.0", 8000)
    assert config.upstream.url == "https://sentry.example.com"


def test_scrub_phone_regions_and_identity_keys() -> None:
    """`scrub.phone_regions` takes region codes (any case), `scrub.identity_keys` key names; [] turns identity off."""
    config = parse("scrub:\n  phone_regions: [de, BR]\n  identity_keys: []\n")
    assert config.scrub.phone_regions == ("DE", "BR")
    assert config.scrub.identity_keys == ()
    assert "US" in parse("listen: {port: 3000}\n").scrub.phone_regions


def test_unknown_phone_region_names_the_file_and_key() -> None:
    """A region libphonenumber doesn't know is a config error naming the file, the key and the code."""
    assert problems_of("scrub:\n  phone_regions: [DE, XX]\n") == [
        "relay.yml: scrub.phone_regions: expected region codes like DE, BR or JP, got 'XX'"
    ]
