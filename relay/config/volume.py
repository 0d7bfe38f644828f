"""Parsing the volume-control sections: `projects[].quotas`, `projects[].sampling`, `outcomes` (`ratelimit`: see
`relay.config.ratelimit`)."""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from ..envelope.categories import DATA_CATEGORIES
from ..units import parse_duration, parse_size
from .model import OutcomesConfig, QuotaConfig, SamplingConfig, SamplingRule
from .values import boolean, globs, positive_duration, short_name

if TYPE_CHECKING:
    from .loader import _Reader

# Names people write for categories, mapped to Sentry's data category names.
CATEGORY_ALIASES = {"log": "log_item", "logs": "log_item", "errors": "error", "transactions": "transaction"}
SAMPLED_CATEGORIES = ("error", "default", "security", "transaction")
_MATCH_FIELDS = ("level", "environment", "release", "exception_type", "transaction", "tags")
_MAX_WINDOW = 366 * 86400


def category(value: Any) -> str:
    """A data category name (aliases accepted), or ValueError naming the nearest valid one."""
    if not isinstance(value, str):
        raise ValueError(f"expected a data category name, got {value!r}")
    name = CATEGORY_ALIASES.get(value, value)
    if name not in DATA_CATEGORIES:
        near = difflib.get_close_matches(name, sorted(DATA_CATEGORIES), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; valid categories: {', '.join(sorted(DATA_CATEGORIES))}"
        raise ValueError(f"unknown data category {value!r}{hint}")
    return name


def categories(value: Any) -> frozenset[str]:
    """A list of categories (or one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected a list of data categories, got {value!r}")
    return frozenset(category(v) for v in items)


def _window(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds < 1 or seconds != int(seconds) or seconds > _MAX_WINDOW:
        raise ValueError(f"expected a whole number of seconds from 1s to 366d, like 1m or 1d, got {value!r}")
    return int(seconds)


def _rate(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a rate from 0.0 to 1.0, got {value!r}")
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a rate from 0.0 to 1.0, got {value!r}") from None
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"expected a rate from 0.0 to 1.0, got {value!r}")
    return rate


def read_quotas(reader: _Reader, raw: Any, path: str) -> tuple[QuotaConfig, ...]:
    """`projects[].quotas`: a list of quotas with unique ids."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.problem(path, f"expected a list of quotas, got {type(raw).__name__}")
        return ()
    quotas: list[QuotaConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        data = reader.mapping(item, where, ("id", "categories", "scope", "limit", "window", "burst", "reason_code"))
        for required in ("id", "limit", "window"):
            if required not in data:
                reader.problem(f"{where}.{required}", "is required")
        quota_id = reader.field(data, where, "id", short_name, f"quota{index}")
        if quota_id in seen:
            reader.problem(f"{where}.id", f"duplicate quota id {quota_id!r} (also {path}[{seen[quota_id]}])")
        seen[quota_id] = index
        quotas.append(
            QuotaConfig(
                id=quota_id,
                categories=reader.field(data, where, "categories", categories, frozenset()),
                scope=reader.field(data, where, "scope", _scope, "project"),
                limit=reader.field(data, where, "limit", _non_negative_int, 0),
                window=reader.field(data, where, "window", _window, 60),
                burst=reader.field(data, where, "burst", _positive_int, None),
                reason_code=reader.field(data, where, "reason_code", _reason_code, None),
            )
        )
    return tuple(quotas)


def read_sampling(reader: _Reader, raw: Any, path: str) -> SamplingConfig | None:
    """`projects[].sampling`: `{<category>: rate, ..., rules: [...]}`."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        reader.problem(path, f"expected a mapping like {{error: 1.0, transaction: 0.1}}, got {type(raw).__name__}")
        return None
    rates: list[tuple[str, float]] = []
    rules: tuple[SamplingRule, ...] = ()
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key == "rules":
            rules = _read_rules(reader, value, where)
            continue
        try:
            name = category(key)
        except ValueError as exc:
            reader.problem(
                where, f"{exc}; sampling takes rates per category ({', '.join(SAMPLED_CATEGORIES)}) and rules"
            )
            continue
        if name not in SAMPLED_CATEGORIES:
            reader.problem(where, f"only {', '.join(SAMPLED_CATEGORIES)} can be sampled, got {key!r}")
            continue
        try:
            rates.append((name, _rate(reader.substitute(value, where))))
        except ValueError as exc:
            reader.problem(where, str(exc))
    return SamplingConfig(rates=tuple(rates), rules=rules)


def _read_rules(reader: _Reader, raw: Any, path: str) -> tuple[SamplingRule, ...]:
    if not isinstance(raw, list):
        reader.problem(path, f"expected a list of rules, got {type(raw).__name__}")
        return ()
    rules: list[SamplingRule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        data = reader.mapping(item, where, ("id", "match", "rate", "categories"))
        for required in ("id", "rate"):
            if required not in data:
                reader.problem(f"{where}.{required}", "is required")
        rule_id = reader.field(data, where, "id", short_name, f"rule{index}")
        if rule_id in seen:
            reader.problem(f"{where}.id", f"duplicate rule id {rule_id!r} (also {path}[{seen[rule_id]}])")
        seen[rule_id] = index
        match = reader.mapping(data.get("match"), f"{where}.match", _MATCH_FIELDS)
        none: tuple[str, ...] = ()
        conditions: dict[str, Any] = {}
        for name in _MATCH_FIELDS:
            if name == "tags" or name not in match:
                continue
            conditions[name] = reader.field(match, f"{where}.match", name, globs, none)
        tags: list[tuple[str, tuple[str, ...]]] = []
        raw_tags = match.get("tags")
        if raw_tags is not None:
            if not isinstance(raw_tags, dict):
                reader.problem(f"{where}.match.tags", "expected a mapping of tag name to value (globs allowed)")
            else:
                for tag in raw_tags:
                    tags.append((str(tag), reader.field(raw_tags, f"{where}.match.tags", tag, globs, none)))
        sampled: frozenset[str] = reader.field(data, where, "categories", categories, frozenset())
        for name in sorted(sampled - set(SAMPLED_CATEGORIES)):
            reader.problem(f"{where}.categories", f"only {', '.join(SAMPLED_CATEGORIES)} can be sampled, got {name!r}")
        rules.append(
            SamplingRule(
                id=rule_id,
                rate=reader.field(data, where, "rate", _rate, 1.0),
                categories=sampled,
                tags=tuple(tags),
                **conditions,
            )
        )
    return tuple(rules)


def read_outcomes(reader: _Reader, raw: Any, path: str) -> OutcomesConfig:
    """`outcomes: {client_reports: true, interval: 30s}`."""
    data = reader.mapping(raw, path, ("client_reports", "interval"))
    d = OutcomesConfig()
    return OutcomesConfig(
        client_reports=reader.field(data, path, "client_reports", boolean, d.client_reports),
        interval=reader.field(data, path, "interval", positive_duration, d.interval),
    )


def _scope(value: Any) -> str:
    if value not in ("project", "key"):
        raise ValueError(f"expected project or key, got {value!r}")
    return str(value)


def _non_negative_int(value: Any) -> int:
    if isinstance(value, str) and value.strip() and not value.strip().isdigit():
        return parse_size(value)  # a byte count for attachment quotas: 100MiB
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of at least 0, got {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def _reason_code(value: Any) -> str:
    text = short_name(value)
    if not all(ch.isalnum() or ch in "_-." for ch in text):
        raise ValueError(f"expected letters, digits, '_', '-' or '.', got {value!r}")
    return text
