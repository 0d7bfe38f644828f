"""Parsing `filters` and `fingerprints` (top level and per project)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from .model import FiltersConfig, FingerprintMatcher, FingerprintRule
from .values import boolean, globs

if TYPE_CHECKING:
    from .loader import _Reader

FILTER_LISTS = ("exception_types", "messages", "transactions", "releases", "environments")
FILTER_SWITCHES = ("localhost", "browser_extensions", "web_crawlers")
# Sentry's fingerprinting matchers (and their short aliases).
MATCHER_KEYS = {
    "error.type": "error.type",
    "type": "error.type",
    "error.value": "error.value",
    "value": "error.value",
    "message": "message",
    "logger": "logger",
    "level": "level",
    "stack.function": "stack.function",
    "function": "stack.function",
    "stack.module": "stack.module",
    "module": "stack.module",
    "stack.abs_path": "stack.abs_path",
    "stack.path": "stack.abs_path",
    "path": "stack.abs_path",
    "stack.package": "stack.package",
    "package": "stack.package",
    "app": "app",
    "release": "release",
    "environment": "environment",
    "transaction": "transaction",
    "sdk": "sdk",
    "family": "family",
}
# Fingerprint variables we fill in. Values that can hold personal data (messages, exception values,
# transaction names) are left out: fingerprints are not scrubbed.
VARIABLES = {
    "default": "{{ default }}",
    "error.type": "error.type",
    "type": "error.type",
    "function": "stack.function",
    "stack.function": "stack.function",
    "module": "stack.module",
    "stack.module": "stack.module",
    "level": "level",
    "logger": "logger",
}


def matcher_key(key: str) -> str:
    """The canonical matcher key, or ValueError naming the valid ones."""
    if key.startswith("tags.") and len(key) > 5:
        return key
    found = MATCHER_KEYS.get(key)
    if found is None:
        near = difflib.get_close_matches(key, list(MATCHER_KEYS), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(
            f"unknown matcher {key!r}{hint} (valid: {', '.join(sorted(set(MATCHER_KEYS.values())))}, tags.<name>)"
        )
    return found


def fingerprint_value(value: str) -> str:
    """A fingerprint component; `{{ var }}` must be a variable we can fill without personal data."""
    stripped = value.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        name = stripped[2:-2].strip()
        if name not in VARIABLES:
            raise ValueError(
                f"fingerprint variable {{{{ {name} }}}} is not supported (values that can hold personal data, such as "
                f"messages, exception values and transaction names, are refused); use one of: "
                + ", ".join(f"{{{{ {v} }}}}" for v in sorted(VARIABLES))
            )
        return "{{ default }}" if name == "default" else f"{{{{ {name} }}}}"
    if not stripped:
        raise ValueError("empty fingerprint value")
    return value


def read_filters(reader: _Reader, raw: Any, path: str) -> FiltersConfig | None:
    """`filters:` with the fixed key names."""
    if raw is None:
        return None
    data = reader.mapping(raw, path, FILTER_LISTS + FILTER_SWITCHES)
    values: dict[str, Any] = {}
    none: tuple[str, ...] = ()
    for name in FILTER_LISTS:
        if name in data:
            values[name] = reader.field(data, path, name, globs, none)
    for name in FILTER_SWITCHES:
        if name in data:
            values[name] = reader.field(data, path, name, boolean, False)
    return FiltersConfig(**values)


def read_fingerprints(reader: _Reader, raw: Any, path: str) -> tuple[FingerprintRule, ...] | None:
    """`fingerprints:` a list of `{match: {<matcher>: glob, ...}, fingerprint: [...], override: bool}`."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        reader.problem(path, f"expected a list of fingerprint rules, got {type(raw).__name__}")
        return ()
    rules: list[FingerprintRule] = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        data = reader.mapping(item, where, ("match", "fingerprint", "override"))
        match = data.get("match")
        if not isinstance(match, dict) or not match:
            reader.problem(f"{where}.match", "expected a mapping of matcher to glob, like {error.type: DatabaseError}")
            continue
        matchers: list[FingerprintMatcher] = []
        for key, pattern in match.items():
            name = str(key)
            negated = name.startswith("!")
            try:
                canonical = matcher_key(name.lstrip("!"))
            except ValueError as exc:
                reader.problem(f"{where}.match.{name}", str(exc))
                continue
            if not isinstance(pattern, str | int | float) or isinstance(pattern, bool):
                reader.problem(f"{where}.match.{name}", f"expected a glob string, got {pattern!r}")
                continue
            matchers.append(FingerprintMatcher(canonical, str(pattern), negated))
        fingerprint = data.get("fingerprint")
        if isinstance(fingerprint, str):
            fingerprint = [fingerprint]
        if not isinstance(fingerprint, list) or not fingerprint:
            reader.problem(f"{where}.fingerprint", "expected a list of fingerprint values, like [database-error]")
            continue
        values: list[str] = []
        for position, value in enumerate(fingerprint):
            try:
                values.append(fingerprint_value(str(value)))
            except ValueError as exc:
                reader.problem(f"{where}.fingerprint[{position}]", str(exc))
        override = reader.field(data, where, "override", boolean, False)
        rules.append(FingerprintRule(tuple(matchers), tuple(values), override, f"{reader.source}: {where}"))
    return tuple(rules)
