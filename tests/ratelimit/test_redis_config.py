"""The `ratelimit` section for Redis Cluster, Sentinel, TLS and ACL users: parsed at load, every problem named
by file and key, all of them at once; credentials never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.cli import main
from relay.config import parse_config
from relay.config.ratelimit import parse_redis_url
from relay.errors import ConfigError


def ratelimit(body: str) -> str:
    """A config whose `ratelimit` section is this flow-mapping body."""
    return f"ratelimit: {{backend: redis, {body}}}\n"


def problems(text: str) -> list[str]:
    """The problems the loader reports for this config."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "relay.yml", {})
    return caught.value.problems


def test_a_plain_url_works_as_before() -> None:
    """`url` alone, as before: one server, no cluster, no credentials beyond the URL's."""
    config = parse_config(ratelimit("url: 'redis://:secret@10.0.0.5:6380/2'"), "relay.yml", {}).ratelimit
    assert (config.url, config.cluster, config.username, config.password) == (
        "redis://:secret@10.0.0.5:6380/2",
        False,
        "",
        "",
    )
    assert parse_redis_url(config.url).hosts == (("10.0.0.5", 6380),)


def test_sentinel_url_is_taken_apart() -> None:
    """redis+sentinel://user:pw@host[:port],.../service/db: sentinels (default port 26379), service, db."""
    url = parse_redis_url("redis+sentinel://relay:p%40ss@s1:26380,s2,[::1]:26381/mymaster/3")
    assert url.sentinel and not url.tls
    assert url.hosts == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (url.service_name, url.db, url.username, url.password) == ("mymaster", 3, "relay", "p@ss")
    assert parse_redis_url("rediss+sentinel://s1/mymaster").tls
    assert "p@ss" not in repr(url)


def test_cluster_tls_and_acl_keys_are_read() -> None:
    """cluster, username, password and the TLS files, with ${VAR} substitution for the password."""
    ca = Path(__file__)  # any readable file stands in for a CA bundle
    text = ratelimit(
        f"url: 'rediss://cfg.example:6379', cluster: true, username: relay, password: '${{PW}}', tls_ca_file: '{ca}'"
    )
    config = parse_config(text, "relay.yml", {"PW": "s3cr@t:/"}).ratelimit
    assert (config.cluster, config.username, config.password, config.tls_ca_file) == (
        True,
        "relay",
        "s3cr@t:/",
        str(ca),
    )
    assert "s3cr@t" not in repr(config)


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ("url: 'redis+sentinel://s1:26379'", "ratelimit.url", "names the master after the hosts"),
        ("url: 'redis+sentinel://s1:99999/m'", "ratelimit.url", "port from 1 to 65535"),
        ("url: 'redis://a:1,b:2/0'", "ratelimit.url", "expected one host"),
        ("url: 'redis://h/zero'", "ratelimit.url", "database number"),
        ("url: 'http://h'", "ratelimit.url", "expected a redis://"),
        ("url: 'redis://h/1', cluster: true", "ratelimit.url", "only database 0"),
        ("url: 'redis+sentinel://s/m', cluster: true", "ratelimit.cluster", "not redis+sentinel://"),
        ("url: 'redis://h', cluster: true, key_prefix: 're{lay}'", "ratelimit.key_prefix", "must not contain {"),
        ("url: 'redis://u:p@h', password: q", "ratelimit.password", "give the password in one place"),
        ("url: 'redis://u@h', username: v", "ratelimit.username", "give the user in one place"),
        ("url: 'redis://h', sentinel_password: x", "ratelimit.sentinel_password", "needs a redis+sentinel://"),
        ("url: 'redis://h', tls_ca_file: '{file}'", "ratelimit.tls_ca_file", "needs a rediss://"),
        ("url: 'rediss://h', tls_ca_file: /nonexistent/ca.pem", "ratelimit.tls_ca_file", "no such file"),
        ("url: 'rediss://h', tls_cert_file: '{file}'", "ratelimit.tls_key_file", "is required with tls_cert_file"),
        ("url: 'redis://h', cluster: maybe", "ratelimit.cluster", "expected true or false"),
        ("url: 'redis://h', sentinels: [a]", "ratelimit.sentinels", "unknown key; valid keys are: backend, url"),
    ],
)
def test_problems_name_the_file_and_key(body: str, where: str, message: str) -> None:
    """Each mistake is reported as `relay.yml: ratelimit.<key>: <what is wrong>`."""
    found = problems(ratelimit(body.replace("{file}", __file__)))
    assert any(p.startswith(f"relay.yml: {where}: ") and message in p for p in found), found


def test_all_problems_are_reported_at_once() -> None:
    """Three mistakes, three problems."""
    body = "url: 'redis://u:p@h/2', cluster: true, password: q, tls_ca_file: /nonexistent"
    found = problems(ratelimit(body))
    assert {p.split(": ")[1] for p in found} == {"ratelimit.url", "ratelimit.password", "ratelimit.tls_ca_file"}


def test_check_config_masks_sentinel_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`relay check-config` shows the sentinel hosts, never the password in the URL or in its own key."""
    path = tmp_path / "relay.yml"
    url = "redis+sentinel://relay:hunter2pw@s1:26379,s2:26379/mymaster/0"
    path.write_text(ratelimit(f"url: '{url}', sentinel_password: other9secret"), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s1:26379,s2:26379/mymaster" in out
    assert "hunter2pw" not in out and "other9secret" not in out
