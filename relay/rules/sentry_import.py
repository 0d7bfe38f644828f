"""`relay rules import-sentry`: a Sentry project's data scrubbing settings, as one of our rule files.

Both of Sentry's formats convert: Advanced Data Scrubbing (a PII config of `rules` and `applications`) and the
legacy settings (`scrubData`, `sensitiveFields`, ...), which Sentry turns into a PII config first, as this module
does too. Sentry's built-in rules become patterns with Sentry's own regexes and key rules match keys without
case or separators, so the file hides at least what Sentry hides. Where our rules can only select more than
Sentry, they do and a warning says so; what can't be expressed is an error naming the rule or selector.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import regex

from .loader import inspect_pack
from .model import RulePack, RuleTest
from .selectors import expand
from .sentry_selectors import DEEP, INDEX, ONE, SentrySelectorError, Where, abbreviate, key_patterns, translate_selector
from .verify import pack_scrubber, run_case

# Sentry's regexes (relay-pii regexes.rs), verbatim but for x-mode whitespace and POSIX classes spelled out.
_PUNCT = r"[!-/:-@\[-`{-~]"
_V4 = r"(25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_V6 = r"[0-9a-fA-F]{1,4}"
_IPV4 = rf"{_V4}\.{_V4}\.{_V4}\.{_V4}"
_IPV6 = (
    rf"(?i)(?:[\s]|{_PUNCT}|^)(({_V6}:){{7}}{_V6}|({_V6}:){{1,7}}:|({_V6}:){{1,6}}::{_V6}|({_V6}:){{1,5}}:(:{_V6}){{1,2}}|"
    rf"({_V6}:){{1,4}}:(:{_V6}){{1,3}}|({_V6}:){{1,3}}:(:{_V6}){{1,4}}|({_V6}:){{1,2}}:(:{_V6}){{1,5}}|"
    rf"{_V6}:((:{_V6}){{1,6}})|:((:{_V6}){{1,7}}|:)|fe80:(:{_V6}){{0,4}}%[0-9a-zA-Z]{{1,}}"
    rf"::(ffff(:0{{1,4}}){{0,1}}:){{0,1}}{_IPV4}|({_V6}:){{1,4}}:{_IPV4})([\s]|{_PUNCT}|$)"
)
_IBAN = (
    r"\b(AT|AD|AE|AL|AZ|BA|BE|BG|BH|BR|BY|CH|CR|CY|CZ|DE|DK|DO|EE|EG|ES|FI|FO|FR|GB|GE|GI|GL|GR|GT|HR|HU|IE|IL|IQ|IS|"
    r"IT|JO|KW|KZ|LB|LC|LI|LT|LU|LV|LY|MC|MD|ME|MK|MR|MT|MU|NL|NO|PK|PL|PS|PT|QA|RO|RU|RS|SA|SC|SE|SI|SK|SM|ST|SV|TL|"
    r"TN|TR|UA|VA|VG|XK|DZ|AO|BJ|BF|BI|CV|CM|CF|TD|KM|CG|CI|DJ|GQ|GA|GW|HN|IR|MG|ML|MA|MZ|NI|NE|SN|TG)\d{2}"
    r"[a-zA-Z0-9]{11,29}\b"
)
_BEARER = r"(?i)\b(Bearer\s+)([^\s]+)"
_USERPATH = (  # (Sentry's `documents and settings` is in x mode, where spaces don't count)
    r"(?i)(?:(?:\b(?:[a-zA-Z]:[\\/])?(?:users|home|documentsandsettings|[^/\\]+[/\\]profiles)[\\/])"
    r"|(?:/(?:home|users)/))([^/\\\r\n\x00]+)"
)
_PEMKEY = (
    r"(?s)(?:-----BEGIN[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----[\t ]*\r?\n?)(.+?)"
    r"(?:\r?\n?-----END[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----)"
)
_PASSWORD_KEY = (
    r"(?i)(password|secret|passwd|api[-_]key|apikey|auth|credentials|mysql_pwd|privatekey|private[-_]key|"
    r"token[^\s]*[:=]|^otp$|^two[-_]factor$)"
)
_COOKIE_NAMES = ("sentrysid", "sudo", "su", "session", "__session", "sessionid", "user_session", "symfony",
    "phpsessid", "fasthttpsessionid", "mysession", "irissessionid", "_vercel_jwt", "csrf", "xsrf", "_xsrf",
    "_csrf", "csrf-token", "csrf_token", "xsrf-token", "xsrf_token", "fastcsrf", "_iris_csrf")  # fmt: skip
# Value rule types: (id suffix, regex, the group Sentry replaces), and what they find.
_TYPE_PATTERNS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "ip": (("v4", rf"\b{_IPV4}\b", 0), ("v6", _IPV6, 1)),
    "imei": (("", r"\b(\d{2}-?\d{6}-?\d{6}-?\d{1,2})\b", 0),),
    "mac": (("", r"\b([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}\b", 0),),
    "uuid": (("", r"(?i)\b[a-z0-9]{8}-?[a-z0-9]{4}-?[a-z0-9]{4}-?[a-z0-9]{4}-?[a-z0-9]{12}\b", 0),),
    "email": (("", r"\b[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,}\b", 0),),
    "iban": (("", _IBAN, 0),),
    "creditcard": (("", r"\b((?:3[47]\d|4\d{3}|5[1-5]\d\d|65\d\d|6011)([-\s]?\d){12})\b", 0),),
    "userpath": (("", _USERPATH, 1),),
    "pemkey": (("", _PEMKEY, 1),),
    "url_auth": (("", r"\b(?:(?:[a-z0-9+-]+:)?//([a-zA-Z0-9%_.-]+(?::[a-zA-Z0-9%_.-]+)?))@", 1),),
    "us_ssn": (("", r"\b([0-9]{3}-[0-9]{2}-[0-9]{4})\b", 0),),
    "bearer": (("", _BEARER, 0),),
    "cookies": (("", rf"(?i)\b(?:{'|'.join(_COOKIE_NAMES)})\s*=\s*([^;]+)", 1),),  # as Sentry's, and with spaces
}
_FINDS = {
    "ip": "IP addresses", "imei": "IMEI numbers", "mac": "MAC addresses", "uuid": "UUIDs", "email": "email addresses",
    "iban": "IBANs", "creditcard": "card numbers", "pemkey": "PEM key bodies", "us_ssn": "US social security numbers",
    "userpath": "user names in home directory paths", "url_auth": "credentials in URLs", "bearer": "bearer tokens",
    "cookies": "session and CSRF cookies", "pattern": "matches of its pattern",
}  # fmt: skip
# Built-in rules: kind -> (the variant the bare name aliases, its replacement text, the variants there are).
_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "anything": ("replace", "[Filtered]", ("remove", "replace", "hash", "mask", "filter")),
    "ip": ("replace", "[ip]", ("replace", "hash", "mask", "remove")),
    "imei": ("replace", "[imei]", ("replace", "hash", "mask", "remove")),
    "mac": ("mask", "[mac]", ("replace", "hash", "mask", "remove")),
    "uuid": ("mask", "[uuid]", ("replace", "hash", "mask", "remove")),
    "email": ("replace", "[email]", ("replace", "hash", "mask", "remove")),
    "iban": ("replace", "[iban]", ("replace", "hash", "mask", "remove", "filter")),
    "creditcard": ("replace", "[creditcard]", ("replace", "hash", "mask", "remove", "filter")),
    "pemkey": ("replace", "[pemkey]", ("replace", "hash", "mask", "remove", "filter")),
    "urlauth": ("replace", "[auth]", ("replace", "hash", "mask", "remove")),
    "usssn": ("mask", "[us-ssn]", ("replace", "hash", "mask", "remove", "filter")),
    "userpath": ("replace", "[user]", ("replace", "hash", "mask", "remove")),
    "password": ("remove", "[password]", ("replace", "hash", "mask", "remove", "filter")),
    "bearer": ("replace", "Bearer [token]", ("replace", "hash", "mask", "remove", "filter")),
}
_COMMON = ("@iban", "@ip", "@email", "@creditcard", "@pemkey", "@urlauth", "@userpath", "@password", "@usssn",
    "@bearer")  # fmt: skip
# Sentry's list names @userpath:filter, which doesn't exist (and so does nothing); kept for fidelity.
_COMMON_FILTER = ("@creditcard:filter", "@iban:filter", "@pemkey:filter", "@urlauth:legacy", "@userpath:filter",
    "@password:filter", "@usssn:filter", "@bearer:filter")  # fmt: skip


def _builtin_rules() -> dict[str, dict[str, Any]]:
    """Sentry's built-in rules, written as the PII config rules they are."""
    rules: dict[str, dict[str, Any]] = {}
    for kind, (default, text, variants) in _KINDS.items():
        rule_type = {"urlauth": "url_auth", "usssn": "us_ssn"}.get(kind, kind)
        for variant in variants:
            method = "hash" if (kind, variant) == ("imei", "mask") else {"filter": "replace"}.get(variant, variant)
            redaction = {"method": method}
            if variant in ("replace", "filter"):
                redaction["text"] = text if variant == "replace" else "[Filtered]"
            rules[f"@{kind}:{variant}"] = {"type": rule_type, "redaction": redaction}
        rules[f"@{kind}"] = {"type": "alias", "rule": f"@{kind}:{default}", "hideInner": True}
    rules["@urlauth:legacy"] = {
        "type": "pattern",
        "pattern": r"\b((?:[a-z0-9]+:)?//[a-zA-Z0-9%_.-]+:)([a-zA-Z0-9%_.-]+)@",
        "replaceGroups": [2],
        "redaction": {"method": "replace", "text": "[Filtered]"},
    }
    rules["@cookies:filter"] = {"type": "cookies", "redaction": {"method": "replace", "text": "[Filtered]"}}
    rules["@common"] = {"type": "multiple", "rules": list(_COMMON)}
    rules["@common:filter"] = {"type": "multiple", "rules": list(_COMMON_FILTER)}
    return rules


BUILTIN_RULES = _builtin_rules()
_RULE_TYPES = frozenset(_TYPE_PATTERNS) | {"anything", "password", "redact_pair", "redactPair", "pattern"}
_METHODS = ("default", "remove", "replace", "mask", "hash")
# Fields Sentry never scrubs (pii=false in its event schema) that processing needs intact, and source context: sparing
# them is never weaker than Sentry, and rules like `@uuid:mask` on `$string` would otherwise break the event.
STRUCTURE = ("event_id", "timestamp", "start_timestamp", "received", "level", "platform", "release", "dist",
    "environment", "type", "logger", "fingerprint", "modules", "contexts.trace.trace_id", "contexts.trace.span_id",
    "contexts.trace.parent_span_id", "$exception.type", "exception.values.*.module",
    "exception.values.*.mechanism.type", "$frame.function", "$frame.context", "sdk.name", "sdk.version",
    "sdk.integrations", "sdk.packages", "spans.*.span_id", "spans.*.parent_span_id", "spans.*.trace_id")  # fmt: skip
_SAMPLES = {  # for generated tests: a value Sentry's rule finds, and the part of it that must not survive
    "email": ("alice.smith@example.com", "alice.smith@example.com"),
    "creditcard": ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    "iban": ("DE89370400440532013000", "DE89370400440532013000"),
    "ip": ("203.0.113.9", "203.0.113.9"),
    "imei": ("356938035643809", "356938035643809"),
    "mac": ("00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e"),
    "uuid": ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
    "us_ssn": ("123-45-6789", "123-45-6789"),
    "url_auth": ("postgres://app:hunter2@db.internal/prod", "hunter2"),
    "userpath": ("/home/alice/report.pdf", "alice"),
    "bearer": ("Bearer eyJhbGciOi.J9eyJzdW.IiOiIx", "eyJhbGciOi.J9eyJzdW.IiOiIx"),
    "cookies": ("sessionid=s3cr3t-cookie; theme=dark", "s3cr3t-cookie"),
    "pemkey": ("-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkq\n-----END PRIVATE KEY-----", "MIIBVgIBADANBgkq"),
    "key": ("hunter2-secret", "hunter2-secret"),
    "anything": ("top-secret-value", "top-secret-value"),
}  # fmt: skip
_CONTAINERS = frozenset({"vars", "extra", "data", "env", "cookies", "headers", "contexts", "tags", "attributes"})
_LISTS = frozenset({"values", "frames", "spans", "threads", "exception", "pre_context", "post_context"})
_MAX_TESTS = 10
_MAX_SELECTORS = 8  # an `@anything` rule naming more keys is written as key rules, one per parent
_WHOLE_FIRST = (
    "Rules that redact a whole text come first. Sentry redacts such a text whole whatever else matched in it; here "
    "the first rule wins where matches overlap, so no other rule's match may come before them."
)
_KEYS_NOTE = "key rules match key names without case or separators (api_key = apiKey = API-KEY), more than Sentry"


class _InputError(Exception):
    """An input file can't be read or isn't JSON (bad input: exit 2)."""


@dataclass(frozen=True, slots=True)
class _Redaction:
    method: str  # default | remove | replace | mask | hash
    text: str = "[Filtered]"


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A rule Sentry applies once aliases and `multiple` are resolved."""

    name: str  # its own id (`@email:replace`, `0`)
    origin: str  # the id Sentry reports: an alias or `multiple` with hideInner, else the rule itself
    spec: dict[str, Any]
    redaction: _Redaction


class _Part(NamedTuple):
    """One of our rules for a Sentry rule: what it looks for, and how it redacts."""

    suffix: str  # of the rule id
    body: dict[str, Any]  # `pattern` (and `group`) or `keys`
    target: str  # part (a match), content (a text, whole), key (a value by its key) or anything (a value, whole)
    finds: str  # for the description
    selectors: list[str] | None = None  # instead of the selector's (`keys` grouped under parents)
    sample: tuple[str, str | None] | None = None  # (sample kind, key) for a generated test


@dataclass(slots=True)
class _Rule:
    """One rule of the output file, before it is written out."""

    id: str
    description: str
    body: dict[str, Any]
    action: dict[str, Any]
    selectors: list[str]
    exclude: list[str] | None = None  # None: the defaults (STRUCTURE)
    group: str = ""  # the Sentry selector and rules it comes from (a comment above each group)
    whole: bool = False  # it replaces a whole text: goes first, where no other rule's match can shadow it
    origin: str = ""  # `Sentry rule X on Y`, for problems the loader finds
    sample: tuple[dict[str, Any], str] | None = None  # a test input and what must be absent from its output


@dataclass(slots=True)
class Conversion:
    """The rule file text (empty if there are problems), what went wrong, and what is approximate."""

    text: str = ""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rules: int = 0


class _Converter:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.rules: list[_Rule] = []
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.ids: set[str] = set()

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def config(self, config: Any, label: str, namespace: str, notes: dict[str, str] | None = None) -> None:
        """Convert one PII config; `label` names its source in messages, `notes` where its applications come from."""
        if not isinstance(config, dict):
            self.problems.append(f"{label}: must be a JSON object with `rules` and `applications`")
            return
        for key in sorted(set(config) - {"rules", "applications", "vars"}):
            self.warn(f"{label}: unknown key {key!r} ignored (as Sentry ignores it)")
        if isinstance(config.get("vars"), dict) and config["vars"].get("hashKey"):
            self.warn(f"{label}: vars.hashKey isn't carried over: relay hashes with scrub.hash_key from relay.yml")
        rules, applications = config.get("rules") or {}, config.get("applications") or {}
        if not isinstance(rules, dict) or not isinstance(applications, dict):
            self.problems.append(f"{label}: `rules` and `applications` must be JSON objects")
            return
        for selector, ids in applications.items():
            where = f"{label}: selector {selector!r}"
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                self.problems.append(f"{where}: must map to a list of rule ids")
                continue
            try:
                translated = translate_selector(selector)
            except SentrySelectorError as exc:
                self.problems.append(f"{where}: {exc}")
                continue
            leaves: dict[str, _Leaf] = {}
            for rule_id in ids:
                for leaf in self.resolve(rule_id, rules, where, None, None, ()):
                    leaves.setdefault(leaf.name, leaf)  # Sentry applies a rule once per selector
            group = f"{(notes or {}).get(selector, f'Sentry {label}')}: {json.dumps(selector)}: {json.dumps(ids)}"
            for alternative in translated:
                for note in alternative.notes:
                    self.warn(f"{where}: {note}")
                for leaf in leaves.values():
                    self.emit(leaf, alternative, selector, namespace, group)

    def resolve(
        self,
        rule_id: str,
        rules: dict[str, Any],
        where: str,
        origin: str | None,
        over: _Redaction | None,
        chain: tuple[str, ...],
    ) -> list[_Leaf]:
        """The rules Sentry applies for `rule_id`; with hideInner, the outer id and redaction are passed down."""
        if rule_id in chain:
            self.problems.append(f"{where}: rule {rule_id!r} refers to itself ({' -> '.join((*chain, rule_id))})")
            return []
        spec = rules.get(rule_id, BUILTIN_RULES.get(rule_id))
        if spec is None:
            if not chain or chain[-1] not in BUILTIN_RULES:  # (a built-in naming a missing one does nothing)
                self.warn(f"{where}: no rule {rule_id!r}; Sentry ignores the reference, and so does this file")
            return []
        name = f"{where}: rule {rule_id!r}"
        kind = spec.get("type") if isinstance(spec, dict) else None
        redaction = self.redaction(spec, name) if isinstance(spec, dict) else None
        if redaction is None or kind not in (*_RULE_TYPES, "multiple", "alias"):
            if redaction is not None or not isinstance(spec, dict):
                self.problems.append(f"{name}: unknown type {kind!r}")
            return []
        if over is not None and over.method != "default":
            redaction = over
        origin = origin or rule_id
        if kind not in ("multiple", "alias"):
            return [_Leaf(rule_id, origin, spec, redaction)] if self.valid(spec, name) else []
        children = spec.get("rules") if kind == "multiple" else [spec.get("rule")]
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            self.problems.append(f"{name}: `{'rules' if kind == 'multiple' else 'rule'}` must name rules")
            return []
        if "hide_inner" in spec:
            self.warn(f"{name}: Sentry ignores `hide_inner` (it reads `hideInner`), and so does this file")
        hide = spec.get("hideInner") is True
        leaves: list[_Leaf] = []
        for child in children:
            inner = (origin, redaction) if hide else (None, None)
            leaves += self.resolve(child, rules, where, inner[0], inner[1], (*chain, rule_id))
        return leaves

    def redaction(self, spec: dict[str, Any], where: str) -> _Redaction | None:
        raw = spec.get("redaction", {"method": "default"})
        method = raw.get("method") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or method not in _METHODS:
            self.problems.append(f"{where}: redaction method must be one of {', '.join(_METHODS)}, got {method!r}")
            return None
        text = raw.get("text", "[Filtered]")
        if method == "replace" and not isinstance(text, str):
            self.problems.append(f"{where}: redaction text must be a string")
            return None
        if method == "mask" and set(raw) - {"method"}:
            options = sorted(set(raw) - {"method"})
            self.warn(f"{where}: mask options {options} ignored: current Sentry masks every character with *, as here")
        if method == "hash":
            self.warn(
                f"{where}: hashes differ from Sentry's (HMAC-SHA1{', its own key' if 'key' in raw else ''}): relay "
                "uses HMAC-SHA256 with scrub.hash_key, which relay.yml must then set"
            )
        return _Redaction(str(method), text if method == "replace" else "[Filtered]")

    def valid(self, spec: dict[str, Any], where: str) -> bool:
        required = {"pattern": "pattern", "redact_pair": "keyPattern", "redactPair": "keyPattern"}.get(spec["type"])
        if required and (not isinstance(spec.get(required), str) or not spec[required]):
            self.problems.append(f"{where}: needs `{required}` (a regex)")
            return False
        groups = spec.get("replaceGroups", [0])
        numbers = isinstance(groups, list) and all(isinstance(g, int) and 0 <= g < 256 for g in groups)
        if required == "pattern" and groups is not None and not numbers:
            self.problems.append(f"{where}: replaceGroups must be a list of group numbers")
            return False
        return True

    def emit(self, leaf: _Leaf, where: Where, selector: str, namespace: str, group: str) -> None:
        """Our rules for one Sentry rule under one alternative of its selector."""
        kind = "redact_pair" if leaf.spec["type"] == "redactPair" else leaf.spec["type"]
        named = f"`{leaf.origin}`" + (f" (`{leaf.name}`)" if leaf.name != leaf.origin else "")
        origin = f"Sentry rule {leaf.origin!r}" + (f" ({leaf.name!r})" if leaf.name != leaf.origin else "")
        origin += f" on {selector!r}"
        base = _slug(leaf.name) if leaf.name.startswith(leaf.origin) else f"{_slug(leaf.origin)}.{_slug(leaf.name)}"
        include = abbreviate(list(where.include))
        exclude = [*STRUCTURE, *abbreviate(list(where.exclude))] if where.exclude else None
        for part in self.parts(leaf, kind, where, origin):
            action = _action(leaf.redaction, part.target)
            rule = _Rule(
                id=self.unique(f"{self.prefix}.{namespace}{base}{part.suffix}"),
                description=f"Sentry {named}: {part.finds}.",
                body=part.body,
                action=action,
                selectors=include if part.selectors is None else part.selectors,
                exclude=exclude,
                group=group,
                whole=part.target in ("content", "anything") and "pattern" in part.body,
                origin=origin,
                sample=_sample(include, *part.sample) if part.sample else None,
            )
            self.rules.append(rule)
            if where.beneath:  # what our exclude spares beyond Sentry's: values nested in an excluded one
                beneath = abbreviate(list(where.beneath))
                description = f"Beneath what Sentry's exclusion spares (only that value, not what it holds): {rule.id}."
                self.rules.append(
                    _Rule(
                        self.unique(f"{rule.id}.beneath"),
                        description,
                        part.body,
                        action,
                        beneath,
                        group=group,
                        whole=rule.whole,
                        origin=origin,
                    )
                )

    def parts(self, leaf: _Leaf, kind: str, where: Where, origin: str) -> list[_Part]:
        """Our rules for one Sentry rule: one per regex it runs, or for its keys and for texts mentioning them."""
        if kind in _TYPE_PATTERNS:
            finds = f"{_FINDS[kind]}, by Sentry's regex"
            return [
                _Part(
                    f".{sfx}" if sfx else "",
                    _body(pattern, group),
                    "part",
                    finds + (f" ({sfx})" if sfx else ""),
                    sample=(kind, None) if kind in _SAMPLES and sfx != "v6" else None,
                )
                for sfx, pattern, group in _TYPE_PATTERNS[kind]
            ]
        if kind == "pattern":
            pattern = self.python_pattern(leaf.spec["pattern"], origin)
            groups = leaf.spec.get("replaceGroups", [0])
            groups = [0] if groups is None else sorted(set(groups))
            if pattern is None:
                return []
            missing = [g for g in groups if g > regex.compile(pattern, regex.VERSION1).groups]
            if missing or not groups:
                absent = f" {missing}" if missing else ""
                self.warn(f"{origin}: replaceGroups {groups}: Sentry redacts nothing for groups the pattern doesn't "
                          f"have{absent}; nor does this file")  # fmt: skip
                groups = [g for g in groups if g not in missing]
            return [
                _Part(
                    f".g{g}" if len(groups) > 1 else "",
                    _body(pattern, g),
                    "part",
                    _FINDS[kind] + (f" (group {g})" if g else ""),
                )
                for g in groups
            ]
        if kind in ("password", "redact_pair"):
            key_regex = _PASSWORD_KEY if kind == "password" else leaf.spec["keyPattern"]
            try:
                keys = key_patterns(key_regex) + (key_patterns("token") if kind == "password" else [])
            except SentrySelectorError as exc:
                self.problems.append(f"{origin}: {exc}")
                return []
            value = self.python_pattern(key_regex, origin)
            if value is None:
                return []
            self.warn(_KEYS_NOTE)
            parts = [
                _Part(
                    ".value",
                    {"pattern": rf"(?s)\A.*(?:{value}).*\Z"},
                    "content",
                    "a text that contains what the key pattern finds, whole",
                )
            ]
            if kind == "password":
                parts.append(_Part(".bearer", _body(_BEARER, 0), "part", "bearer tokens", sample=("bearer", None)))
            sample = ("key", _key_sample(key_regex))
            return [
                *parts,
                _Part(".keys", {"keys": _simplest(keys)}, "key", "values under matching keys", None, sample),
            ]
        # anything: a whole value, whatever it is
        if where.strings_only:
            return [_Part("", {"pattern": "(?s).+"}, "anything", "every text, whole", sample=("anything", None))]
        if not where.include:
            self.warn(f"{origin}: relay can't select by value type: this redacts every value, objects too")
        groups = where.keys_by_parent() if len(where.include_paths) > _MAX_SELECTORS else {}
        if groups:  # many keys under a few parents: a rule per parent, listing its keys
            return [
                _Part(f"-{n}" if n > 1 else "", {"keys": keys}, "anything", "the whole value", abbreviate([parent]))
                for n, (parent, keys) in enumerate(groups.items(), 1)
            ]
        parts = [_Part("", {"keys": [".*"]}, "anything", "the whole value", sample=("anything", None))]
        if not where.include_paths or any(p[-1] in (ONE, INDEX, DEEP) for p in where.include_paths):
            parts.append(_Part(".strings", {"pattern": "(?s).+"}, "anything", "texts in lists, whole"))
        return parts

    def python_pattern(self, pattern: str, origin: str) -> str | None:
        """A Sentry (Rust) regex for Python's `regex` module, finding the same; or a problem saying why not."""
        out, pos = [], 0
        while pos < len(pattern):
            piece = pattern[pos : pos + 2] if pattern[pos] == "\\" else pattern[pos]
            why = None
            if piece in ("\\<", "\\>") or pattern.startswith("\\b{", pos):
                why = "word-boundary assertions like \\< aren't supported here"
            elif regex.match(r"\(\?<?[=!]", pattern[pos:]) or regex.fullmatch(r"\\[1-9]", piece):
                why = "look-around and back-references aren't valid in Sentry (its regex engine has neither)"
            elif regex.match(r"\(\?[a-zA-Z-]*U", pattern[pos:]):
                why = "the U flag (swap greediness) isn't supported here"
            if why:
                self.problems.append(f"{origin}: pattern {pattern!r}: {why}")
                return None
            if piece in ("\\x", "\\u", "\\U") and pattern.startswith("{", pos + 2):  # Rust's \x{...}
                end = pattern.find("}", pos)
                out.append(f"\\U{int(pattern[pos + 3 : end] or '0', 16):08x}")
                pos = end + 1
                continue
            out.append(piece)
            pos += len(piece)
        text = "".join(out)
        try:
            regex.compile(text, regex.VERSION1)
        except regex.error as exc:
            self.problems.append(f"{origin}: pattern {pattern!r} doesn't compile here: {exc}")
            return None
        return text

    def unique(self, rule_id: str) -> str:
        candidate, n = rule_id, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{rule_id}-{n}"
        self.ids.add(candidate)
        return candidate


def _action(redaction: _Redaction, target: str) -> dict[str, Any]:
    if redaction.method in ("default", "remove"):
        # Sentry deletes a whole value, but cuts a match out of a text (and empties a text it redacts whole)
        return {"action": "remove"} if target in ("key", "anything") else {"action": "replace", "with": ""}
    if redaction.method == "replace":
        return {"action": "replace", "with": redaction.text}
    return {"action": redaction.method}


def _body(pattern: str, group: int) -> dict[str, Any]:
    return {"pattern": pattern, "group": group} if group else {"pattern": pattern}


def _slug(text: str) -> str:
    return regex.sub(r"[^A-Za-z0-9_]+", "-", text.lstrip("@")).strip("-") or "rule"


def _simplest(keys: list[str]) -> list[str]:
    """Key entries without those another entry covers (`.*token.*` covers `.*token[^\\s]*[:=].*`)."""
    words = [k[2:-2] for k in keys if regex.fullmatch(r"\.\*\w+\.\*", k)]
    return list(dict.fromkeys(k for k in keys if not any(k != f".*{w}.*" and k.startswith(f".*{w}") for w in words)))


def _key_sample(key_regex: str) -> str | None:
    """A key name the key pattern finds (for a generated test), if one of its words is."""
    return next((w for w in regex.findall(r"[A-Za-z][A-Za-z0-9_-]*", key_regex) if regex.search(key_regex, w)), None)


def _sample(include: list[str], kind: str, key: str | None) -> tuple[dict[str, Any], str] | None:
    """A test input holding a value the rule hides, placed where its first selector points (in an event)."""
    value, absent = _SAMPLES[kind]
    if kind == "key" and key is None:
        return None
    target = next((s for s in include if not s.startswith(("@", "$log", "$span", "$trace", "$session"))), None)
    if include and target is None:
        return None
    path = expand(target or "extra")[0]
    segments = ["#" if s.isdigit() else s for s in path.split(".") if s and s != "**"]
    if "'" in path or not segments:
        return None
    node: Any = {key: value} if key else value
    if key is None and (segments[-1] in _CONTAINERS or (kind == "anything" and segments[-1] in ("*", "#"))):
        node = {"sample": value}
    for index in range(len(segments) - 1, -1, -1):
        seg = segments[index]
        in_list = seg == "#" or (seg == "*" and index > 0 and segments[index - 1] in _LISTS)
        node = [node] if in_list else {("sample" if seg == "*" else seg): node}
    return (node, absent) if isinstance(node, dict) else None


# -- legacy settings: the PII config Sentry derives from them (relay-pii convert.rs) ----------------------------

_LEGACY_KEYS = {  # Relay's names -> the spellings accepted (Relay's project config, Sentry's project API)
    "scrubData": ("scrubData", "dataScrubber"),
    "scrubDefaults": ("scrubDefaults", "dataScrubberDefaults"),
    "scrubIpAddresses": ("scrubIpAddresses", "scrubIPAddresses"),
    "sensitiveFields": ("sensitiveFields",),
    "excludeFields": ("excludeFields", "safeFields"),
}
_IGNORED = (
    "(debug_meta.** || $frame.filename || $frame.abs_path || $logentry.formatted || $error.value || "
    "$http.headers.user-agent)"
)
_IP_FIELDS = (
    "$http.env.REMOTE_ADDR || $user.ip_address || $sdk.client_ip || $span.sentry_tags.'user.ip' || "
    "attributes.'client.address'"
)
_AI_FIELDS = ("gen_ai.input.messages", "gen_ai.prompt", "gen_ai.request.messages", "gen_ai.tool.call.arguments",
    "gen_ai.tool.input", "gen_ai.tool.call.result", "gen_ai.tool.output", "gen_ai.output.messages",
    "gen_ai.response.tool_calls", "gen_ai.response.text", "gen_ai.response.object", "gen_ai.tool.definitions",
    "gen_ai.request.available_tools", "gen_ai.tool.name", "mcp.prompt.result", "mcp.tool.result.content")  # fmt: skip
_AI_PLACES = (("$span.data", ""), ("attributes", ".value"))
_MESSAGE_FIELDS = " || ".join(
    ["$logentry.formatted", "$log.body", *(f"{s}.'{f}'{v}" for f in _AI_FIELDS for s, v in _AI_PLACES)]
)
_COOKIES = " || ".join(
    f"*.{place}"
    for name in _COOKIE_NAMES
    for place in (
        f"cookies.{name}",
        f"'http.request.header.cookie.{name}'",
        f"'http.response.header.set-cookie.{name}'",
    )
)
_COOKIE_HEADERS = " || ".join(
    f"*.'http.{d}.header.{h}'{s}" for d, h in (("request", "cookie"), ("response", "set-cookie")) for s in (".*", "")
)


def legacy_settings(raw: Any, warnings: list[str], problems: list[str]) -> dict[str, Any]:
    """Legacy settings under Relay's names; a missing switch counts as on (stricter), with a warning."""
    if not isinstance(raw, dict):
        problems.append("data scrubbing settings: must be a JSON object")
        return {}
    known = {spelling for spellings in _LEGACY_KEYS.values() for spelling in spellings}
    warnings += [f"data scrubbing settings: unknown key {key!r} ignored" for key in raw if key not in known]
    settings: dict[str, Any] = {}
    for name, spellings in _LEGACY_KEYS.items():
        value = next((raw[s] for s in spellings if s in raw), None)
        if name.endswith("Fields"):
            if not isinstance(value, list | None) or not all(isinstance(v, str) for v in value or []):
                problems.append(f"data scrubbing settings: {name} must be a list of field names")
            settings[name] = [v.strip() for v in value or [] if isinstance(v, str) and v.strip()]
        elif value is None:
            warnings.append(f"data scrubbing settings: {name} is missing; taken as true (stricter than false)")
            settings[name] = True
        elif not isinstance(value, bool):
            problems.append(f"data scrubbing settings: {name} must be true or false, got {value!r}")
        else:
            settings[name] = value
    return settings


def legacy_config(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The PII config Sentry derives from legacy settings, and which setting each application comes from.

    The `strip-fields` key pattern is case-insensitive (`(?i)`), as Sentry compiles it (its JSON can't say so).
    """
    rules: dict[str, Any] = {}
    applied: list[str] = []
    applications: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    scrub, defaults = settings.get("scrubData"), settings.get("scrubDefaults")
    if scrub and defaults:
        applied.append("@common:filter")
        message_rules = ["@email:replace", "@creditcard:replace", "@iban:replace", "@usssn:replace", "@bearer:replace"]
        for selector, ids in (
            (_MESSAGE_FIELDS, message_rules),
            (_COOKIES, ["@anything:filter"]),
            (_COOKIE_HEADERS, ["@cookies:filter"]),
        ):
            applications[selector] = ids
            notes[selector] = "Sentry legacy scrubData + scrubDefaults"
    if settings.get("scrubIpAddresses"):
        applications[_IP_FIELDS] = ["@anything:remove"]
        notes[_IP_FIELDS] = "Sentry legacy scrubIpAddresses"
        applied.append("@ip:replace")
    if scrub and settings.get("sensitiveFields"):
        pattern = "|".join(_rust_escape(f) for f in settings["sensitiveFields"])
        rules["strip-fields"] = {
            "type": "redact_pair",
            "keyPattern": f"(?i){pattern}",
            "redaction": {"method": "replace", "text": "[Filtered]"},
        }
        applied.append("strip-fields")
    if applied:
        excluded = "".join(f" && !{_quote_key(f)}" for f in settings.get("excludeFields", []))
        selector = f"($string || $number || $array || $object) && !{_IGNORED}{excluded}"
        applications = {selector: applied, **applications}
        switches = [s for s in ("scrubData", "scrubDefaults", "scrubIpAddresses") if settings.get(s)]
        extras = [name for name in ("sensitiveFields", "excludeFields") if settings.get(name)]
        notes[selector] = f"Sentry legacy {' + '.join(switches)}" + (f" ({', '.join(extras)})" if extras else "")
    return ({"rules": rules} if rules else {}) | {"applications": applications}, notes


def _rust_escape(text: str) -> str:
    """Rust's `regex::escape`: a backslash before each regex meta character."""
    return regex.sub(r"([\\.+*?()|\[\]{}^$#&\-~])", r"\\\1", text)


def _quote_key(key: str) -> str:
    return key if regex.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else "'" + key.replace("'", "''") + "'"


# -- the whole conversion -----------------------------------------------------------------------------------------


def convert(pii_config: Any, datascrubbing: Any, id_prefix: str = "sentry", sources: str = "") -> Conversion:
    """Convert a PII config and/or legacy settings (None: not given) into rule-file text."""
    converter = _Converter(id_prefix)
    if datascrubbing is not None:
        settings = legacy_settings(datascrubbing, converter.warnings, converter.problems)
        legacy, notes = legacy_config(settings)
        converter.config(legacy, "legacy settings", "legacy.", notes)
    if pii_config is not None:
        converter.config(pii_config, "Advanced Data Scrubbing", "")
    result = Conversion(problems=list(dict.fromkeys(converter.problems)), warnings=converter.warnings)
    if result.problems:
        return result
    text = _render(converter.rules, [], sources)
    report = inspect_pack(text, "sentry-import.yml", "sentry-import")
    origins = {rule.id: rule.origin for rule in converter.rules}
    for problem in report.errors:  # a regex our loader refuses (empty matches, catastrophic backtracking, ...)
        rule_id = problem.where.removeprefix("rule ")
        result.problems.append(f"{origins.get(rule_id, rule_id)}: {problem.message}")
    if result.problems or report.pack is None:
        return result
    result.text = _render(converter.rules, _tests(converter.rules, report.pack), sources)
    result.rules = len(converter.rules)
    return result


def _tests(rules: list[_Rule], pack: RulePack) -> list[tuple[str, dict[str, Any], str]]:
    """A few generated tests: a sample value where a rule looks, kept if the converted rules do hide it."""
    scrubber = pack_scrubber(pack)
    tests: list[tuple[str, dict[str, Any], str]] = []
    seen: set[str] = set()
    for rule in rules:
        if rule.sample is None or len(tests) >= _MAX_TESTS or json.dumps(rule.sample, sort_keys=True) in seen:
            continue
        event, absent = rule.sample
        name = f"{rule.id} hides {absent}"
        if not run_case(scrubber, RuleTest(name, event, absent=(absent,)))[1]:
            seen.add(json.dumps(rule.sample, sort_keys=True))
            tests.append((name, event, absent))
    return tests


_HEADER = """\
# Converted from Sentry's data scrubbing settings by `relay rules import-sentry`{sources}.
# Sentry's built-in rules are patterns with Sentry's own regexes; key rules match key names without case or
# separators; and our selectors also cover what lies beneath the value they name. So these rules hide at least
# what Sentry hides. Use them alone for Sentry's behaviour (`rules: [./sentry-imported.yml]`), or after the
# shipped packs for more (`rules: [secrets, pii, ./sentry-imported.yml]`).
pack: sentry-import
description: Sentry project data scrubbing, converted ({count} rules).

defaults:
  # Fields Sentry never scrubs (pii=false in its event schema): ids, timestamps, names, source context.
  exclude: &structure
{structure}

rules:{empty}"""


def _render(rules: list[_Rule], tests: list[tuple[str, dict[str, Any], str]], sources: str) -> str:
    """The rule file: a header, defaults, the rules under comments naming their Sentry origin, and tests."""
    lines = [
        _HEADER.format(
            sources=f" from {sources}" if sources else "",
            count=len(rules),
            structure="\n".join(f"    - {_scalar(s)}" for s in STRUCTURE),
            empty=" []  # Sentry scrubs nothing with these settings" if not rules else "",
        )
    ]
    anchors: dict[tuple[str, ...], str] = {tuple(STRUCTURE): "structure"}
    first = [rule for rule in rules if rule.whole]
    if first:
        lines += ["", *_comment(_WHOLE_FIRST)]
    group = ""
    for rule in first + [rule for rule in rules if not rule.whole]:
        if rule.whole or rule.group != group:
            lines += ["", *_comment(rule.group)]
        group = "" if rule.whole else rule.group
        lines += [f"  - id: {rule.id}", f"    description: {_scalar(rule.description)}"]
        lines += [f"    {key}: {_flow(value)}" for key, value in rule.body.items()]
        for key, values in (("selectors", rule.selectors), ("exclude", rule.exclude)):
            if values:
                lines += _list_field(key, values, anchors, rule.id)
        lines += [f"    {key}: {_scalar(value)}" for key, value in rule.action.items()]
    if tests:
        lines += ["", "tests:"]
        for name, event, absent in tests:
            lines += [f"  - name: {_scalar(name)}", f"    input: {_flow(event)}", f"    absent: [{_scalar(absent)}]"]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return [f"  # {line}" for line in textwrap.wrap(text, 114, break_long_words=False, break_on_hyphens=False)]


def _list_field(key: str, values: list[str], anchors: dict[tuple[str, ...], str], rule_id: str) -> list[str]:
    """A selector list: inline if short, an alias if written before, else a block with an anchor."""
    known = anchors.get(tuple(values))
    if known is not None:
        return [f"    {key}: *{known}"]
    inline = f"    {key}: [{', '.join(_scalar(v) for v in values)}]"
    if len(inline) <= 118:
        return [inline]
    anchors[tuple(values)] = anchor = regex.sub(r"[^A-Za-z0-9_-]", "_", f"{rule_id}_{key}")
    return [f"    {key}: &{anchor}", *(f"      - {_scalar(v)}" for v in values)]


_PLAIN = regex.compile(r"[A-Za-z_$][A-Za-z0-9_$.-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _scalar(value: Any) -> str:
    """A YAML scalar: plain if unambiguous, single-quoted if printable, else JSON's double quotes."""
    if isinstance(value, bool | int):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    if not text.isprintable() or ("'" in text and "\\" not in text):
        return json.dumps(text, ensure_ascii=False)  # double quotes: JSON's are YAML's
    return "'" + text.replace("'", "''") + "'"  # single quotes: a backslash is just a backslash


def _flow(value: Any) -> str:
    """A YAML flow value on one line."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


# -- the command ------------------------------------------------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    """`relay rules import-sentry`: 0 written, 1 something can't be converted, 2 bad usage or unreadable input."""
    try:
        pii, legacy_beside = _unwrap(None if args.pii_config == "-" else _read_json(args.pii_config))
        legacy = _read_json(args.datascrubbing) if args.datascrubbing is not None else legacy_beside
    except _InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not regex.fullmatch(r"[A-Za-z0-9_:@-][A-Za-z0-9_.:@-]*", args.id_prefix):
        print(f"error: --id-prefix {args.id_prefix!r}: use letters, digits and _.:@-", file=sys.stderr)
        return 2
    if pii is None and legacy is None:
        print("error: nothing to convert: give a PII config, --datascrubbing SETTINGS.json, or both", file=sys.stderr)
        return 2
    names = [Path(p).name for p in (args.pii_config, args.datascrubbing) if p not in (None, "-")]
    result = convert(pii, legacy, args.id_prefix, " and ".join(names))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.problems:
        for problem in result.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(result.problems)} problem(s): nothing written", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.write(result.text)
        return 0
    try:
        Path(args.output).write_text(result.text, encoding="utf-8")
    except OSError as exc:
        print(f"error: can't write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.rules} rules to {args.output}", file=sys.stderr)
    return 0


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _InputError(f"can't read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None


def _unwrap(raw: Any) -> tuple[Any, Any]:
    """A PII config as given, or out of Sentry's project details (`relayPiiConfig`, legacy keys beside it)."""
    if not isinstance(raw, dict) or not {"relayPiiConfig", "dataScrubber"} & set(raw):
        return raw, None
    legacy_keys = {s for spellings in _LEGACY_KEYS.values() for s in spellings}
    legacy = {k: v for k, v in raw.items() if k in legacy_keys} or None
    pii = raw.get("relayPiiConfig")
    if isinstance(pii, str):
        try:
            pii = json.loads(pii) if pii.strip() else None
        except json.JSONDecodeError as exc:
            raise _InputError(f"relayPiiConfig: invalid JSON: {exc.msg}") from None
    return pii, legacy


__all__ = ["BUILTIN_RULES", "STRUCTURE", "Conversion", "convert", "legacy_config", "legacy_settings", "run_import"]
