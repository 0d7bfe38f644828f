"""The volume-control config: quotas, sampling, the quota backend and client reports, with clear errors."""

from __future__ import annotations

import pytest

from relay.config import QuotaConfig, parse_config
from relay.errors import ConfigError

PROJECT = "projects:\n  - id: 42\n    keys: [abc]\n"


def problems(text: str) -> list[str]:
    """Every problem the loader reports for this YAML."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "relay.yml", {})
    return caught.value.problems


def test_quotas_parse_in_sentrys_shape() -> None:
    """Every key of a quota is read; `log` means Sentry's log_item category."""
    config = parse_config(
        PROJECT + "    quotas:\n      - {id: q, categories: [error, log], scope: key, limit: 5, window: 1d,"
        " burst: 2, reason_code: budget}\n",
        "relay.yml",
        {},
    )
    assert config.projects[0].quotas == (
        QuotaConfig("q", frozenset({"error", "log_item"}), "key", 5, 86400, 2, "budget"),
    )


@pytest.mark.parametrize(
    ("quota", "path", "message"),
    [
        ("{id: q, limit: 1, window: 1m, categories: [erors]}", "quotas[0].categories", "did you mean 'error'"),
        ("{id: q, limit: 1, window: 1m, scope: org}", "quotas[0].scope", "expected project or key"),
        ("{id: q, limit: -1, window: 1m}", "quotas[0].limit", "at least 0"),
        ("{id: q, limit: 1, window: 1.5s}", "quotas[0].window", "whole number of seconds"),
        ("{id: q, limit: 1, window: 1m, burst: 0}", "quotas[0].burst", "at least 1"),
        ("{id: q, limit: 1}", "quotas[0].window", "is required"),
        ("{id: q, limit: 1, window: 1m, windw: 2}", "quotas[0].windw", "unknown key"),
    ],
)
def test_quota_errors_name_the_key(quota: str, path: str, message: str) -> None:
    """A bad quota is reported with the file and the dotted path of the key."""
    found = problems(PROJECT + f"    quotas: [{quota}]\n")
    assert any(p.startswith(f"relay.yml: projects[0].{path}:") and message in p for p in found), found


def test_duplicate_quota_ids_are_an_error() -> None:
    """Two quotas of a project can't share an id (metrics and outcomes name them)."""
    found = problems(PROJECT + "    quotas: [{id: q, limit: 1, window: 1m}, {id: q, limit: 2, window: 1h}]\n")
    assert any("projects[0].quotas[1].id: duplicate quota id 'q'" in p for p in found)


def test_sampling_rates_and_rules() -> None:
    """Category rates and ordered rules with every match field."""
    config = parse_config(
        PROJECT
        + """    sampling:
      error: 1
      transaction: 0.25
      rules:
        - id: r
          match: {level: fatal, environment: [prod, staging], release: "1.*", exception_type: E,
                  transaction: /x, tags: {region: eu-*}}
          rate: 0
          categories: [error]
""",
        "relay.yml",
        {},
    )
    sampling = config.projects[0].sampling
    assert sampling is not None
    assert sampling.rates == (("error", 1.0), ("transaction", 0.25))
    [rule] = sampling.rules
    assert (rule.id, rule.rate, rule.level, rule.environment, rule.tags) == (
        "r",
        0.0,
        ("fatal",),
        ("prod", "staging"),
        (("region", ("eu-*",)),),
    )


@pytest.mark.parametrize(
    ("sampling", "path", "message"),
    [
        ("{error: 1.5}", "sampling.error", "from 0.0 to 1.0"),
        ("{attachment: 0.5}", "sampling.attachment", "can be sampled"),
        ("{rules: [{id: a, rate: 1, match: {levl: fatal}}]}", "sampling.rules[0].match.levl", "unknown key"),
        ("{rules: [{rate: 1}]}", "sampling.rules[0].id", "is required"),
        ("{rules: [{id: a, rate: 1}, {id: a, rate: 0}]}", "sampling.rules[1].id", "duplicate rule id"),
    ],
)
def test_sampling_errors_name_the_key(sampling: str, path: str, message: str) -> None:
    """A bad sampling setting is reported with the dotted path."""
    found = problems(PROJECT + f"    sampling: {sampling}\n")
    assert any(p.startswith(f"relay.yml: projects[0].{path}:") and message in p for p in found), found


def test_ratelimit_and_outcomes_sections() -> None:
    """The backend, its URL and timeouts, and the client report interval."""
    config = parse_config(
        "ratelimit: {backend: redis, url: 'redis://10.0.0.5:6379/2', timeout: 20ms, reconnect: 1s}\n"
        "outcomes: {client_reports: false, interval: 5s}\n",
        "relay.yml",
        {},
    )
    assert (config.ratelimit.backend, config.ratelimit.url, config.ratelimit.timeout) == (
        "redis",
        "redis://10.0.0.5:6379/2",
        0.02,
    )
    assert (config.outcomes.client_reports, config.outcomes.interval) == (False, 5.0)
    found = problems("ratelimit: {backend: redis, url: 'http://x'}\n")
    assert any("ratelimit.url: expected a redis://" in p for p in found)
