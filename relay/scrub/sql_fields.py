"""Where SQL appears in events and span items: scrub.sql masks it there, before the rules run.

- Spans: the description of a `db` span (op `db` or `db.*`; the name of a v2 span), and any span's `db.statement`
  and `db.query.text`: in a transaction's `spans` and trace context, `span` items (v1 JSON, and v2
  `{"items": [...]}` with typed attributes) and `otel_span` items (OTLP attribute lists). The dialect is the
  span's `db.system` (or `db.system.name`); spans of stores that don't speak SQL (Redis, MongoDB...) are left.
- Breadcrumbs of category `query`, `sql` or `db.*`: the message, and `query` / `statement` in their data. They
  rarely name a `db.system`: they are read in the dialect of the event's SQL spans if those agree on one.
- Exception values and log messages: database drivers' errors quote the values of the row that failed
  (`Key (email)=(anna@x.de) already exists`, `Duplicate entry 'anna@x.de' for key`, SQLAlchemy's `[SQL: ...]`
  and `[parameters: ...]`). `mask_driver_errors` masks those values (statements as SQL), keeps the message.

When: wherever the pii pack is in force (an enforced rule `pii.*`), for literals in SQL are personal data like
the values the pack finds. With only other packs, or `rules: []`, SQL is forwarded as it came.

What changed is recorded as Sentry `_meta` remarks `[pii.sql_literals, "s", start, end]`, one per placeholder
(one covering them all past _MAX_REMARKS), with the original `len`. For events they go into the event's
`_meta`, first, with the rules' remarks after them; for span items (which carry no `_meta`) only into the report.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .audit import ScrubReport, redactions_in
from .engine import Scrubber
from .meta import merge_meta, record
from .sql import PLACEHOLDER, RULE_ID, Budget, Masked, mask_sql, sql_dialect

_SPAN_ROOT = "@span"
_STATEMENT_KEYS = ("db.statement", "db.query.text")
_BREADCRUMB_KEYS = ("query", "statement", "db.statement", "db.query.text")
_SYSTEM_KEYS = ("db.system", "db.system.name")
_MAX_REMARKS = 32  # a statement with a long IN list gets one remark, not hundreds


_ENABLED: weakref.WeakKeyDictionary[Scrubber, bool] = weakref.WeakKeyDictionary()


def sql_enabled(scrubber: Scrubber) -> bool:
    """Whether the scrubber's rules include the pii pack (any of its rules in force, not only audited); asked once
    per scrubber."""
    enabled = _ENABLED.get(scrubber)
    if enabled is None:
        enabled = _ENABLED[scrubber] = any(rule.id.startswith("pii.") and not rule.audit for rule in scrubber.rules)
    return enabled


def mask_sql_literals(payload: Any, root: str, scrubber: Scrubber) -> dict[str, Any]:
    """Mask SQL literals in place in an event (root "") or a span item (root "@span") if the pii pack is in force;
    return the remarks made as a `_meta` tree ({} if nothing changed)."""
    walk = _Walk()
    if not isinstance(payload, dict) or root not in ("", _SPAN_ROOT) or not sql_enabled(scrubber):
        return walk.meta
    if root == "":
        walk.event(payload)
    elif root == _SPAN_ROOT:
        items = payload.get("items")
        if isinstance(items, list):  # v2: a list of spans
            for index, span in enumerate(items):
                if isinstance(span, dict):
                    walk.span(span, ["items", str(index)])
        else:
            walk.span(payload, [])
    return walk.meta


def record_sql(
    meta: dict[str, Any], report: ScrubReport | None, kind: str, event: dict[str, Any] | None = None, root: str = ""
) -> None:
    """Report the remarks of `mask_sql_literals`; for an event, put them into its `_meta` ahead of the rules'."""
    if not meta:
        return
    if report is not None:
        report.enforced.extend(redactions_in(meta, kind, root.lstrip("@")))
    if event is not None:
        existing = event.get("_meta")
        event["_meta"] = merge_meta(meta, existing) if isinstance(existing, dict) else meta


class _Walk:
    """One payload's walk: the remarks made, and its tokenizer budget."""

    __slots__ = ("budget", "meta")

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.budget = Budget()

    def event(self, event: dict[str, Any]) -> None:
        spans = event.get("spans")
        systems: set[str | None] = set()
        if isinstance(spans, list):
            for index, span in enumerate(spans):
                if isinstance(span, dict):
                    systems.add(self.span(span, ["spans", str(index)]))
        contexts = event.get("contexts")
        trace = contexts.get("trace") if isinstance(contexts, dict) else None
        if isinstance(trace, dict):
            systems.add(self.span(trace, ["contexts", "trace"]))
        systems.discard(None)
        dialect = (systems.pop() if len(systems) == 1 else "") or ""
        for crumb, path in _entries(event, "breadcrumbs", _sql_crumb):
            self.breadcrumb(crumb, path, dialect)
        for exception, path in _entries(event, "exception"):
            self.mask(exception, "value", path, None)
        for key in ("logentry", "message"):
            value = event.get(key)
            if isinstance(value, dict):
                self.mask(value, "message", [key], None)
                self.mask(value, "formatted", [key], None)
        self.mask(event, "message", [], None)

    def span(self, span: dict[str, Any], path: list[str]) -> str | None:
        """Mask one span's SQL; return the dialect it was read in (None if it has no `db.system`, or no SQL)."""
        data = span.get("data")
        attributes = span.get("attributes")  # v2: {key: {"type", "value"}}; OTLP: [{"key", "value": {...}}]
        op = span.get("op") or _attribute(attributes, "sentry.op")
        system = _first(data, attributes, _SYSTEM_KEYS)
        is_db = isinstance(op, str) and (op == "db" or op.startswith("db."))
        if system is None and is_db and isinstance(op, str) and op.startswith("db."):
            dialect = sql_dialect(op.split(".")[1])  # `db.redis`: not SQL; `db.sql.query`: generic SQL
        else:
            dialect = sql_dialect(system)
        if dialect is None:
            return None
        if is_db:
            self.mask(span, "description", path, dialect)
            if isinstance(attributes, dict):
                self.mask(span, "name", path, dialect)
        for key in _STATEMENT_KEYS:
            if isinstance(data, dict):
                self.mask(data, key, [*path, "data"], dialect)
            if isinstance(attributes, dict):
                typed = attributes.get(key)
                if isinstance(typed, dict):
                    self.mask(typed, "value", [*path, "attributes", key], dialect)
                else:
                    self.mask(attributes, key, [*path, "attributes"], dialect)
            elif isinstance(attributes, list):
                for index, attribute in enumerate(attributes):
                    if isinstance(attribute, dict) and attribute.get("key") == key:
                        value = attribute.get("value")
                        if isinstance(value, dict):
                            self.mask(value, "stringValue", [*path, "attributes", str(index), "value"], dialect)
        return dialect if system is not None else None

    def breadcrumb(self, crumb: dict[str, Any], path: list[str], default: str) -> None:
        category = crumb.get("category")
        if not isinstance(category, str) or not (category in ("query", "sql") or category.startswith("db.")):
            return
        data = crumb.get("data")
        system = _first(data, None, _SYSTEM_KEYS)
        if system is not None:
            dialect = sql_dialect(system)
        elif category.startswith("db."):  # `db.redis`: not SQL; `db.sql.query`: generic SQL
            named = sql_dialect(category.split(".")[1])
            dialect = None if named is None else named or default
        else:
            dialect = default
        if dialect is None:
            return
        self.mask(crumb, "message", path, dialect)
        if isinstance(data, dict):
            for key in _BREADCRUMB_KEYS:
                self.mask(data, key, [*path, "data"], dialect)

    def mask(self, holder: dict[str, Any], key: str, path: list[str], dialect: str | None) -> None:
        """Mask holder[key] if it is a string: as SQL in `dialect`, or (None) as a database error message."""
        value = holder.get(key)
        if not isinstance(value, str) or not value:
            return
        if dialect is None:
            masked, ranges = mask_driver_errors(value, self.budget)
        else:
            masked, ranges = mask_sql(value, dialect, self.budget)
        if not ranges:
            return
        holder[key] = masked
        if len(ranges) > _MAX_REMARKS:
            ranges = ((ranges[0][0], ranges[-1][1]),)
        record(self.meta, [*path, key], None, [[RULE_ID, "s", start, end] for start, end in ranges], len(value))


@dataclass(frozen=True, slots=True)
class _Quote:
    """Where a database error message quotes a value: the text just before it, and what follows it."""

    before: str  # a regex ending where the value starts
    after: str  # a regex for what follows the value (multiline: `$` is the end of a line)
    greedy: bool = True  # if `after` isn't found, the value runs to the end of its line (else it is left)
    statement: str | None = None  # the value is a statement in this dialect ("": the driver's), masked as SQL
    lines: bool = False  # the value may span lines: up to `after`, else to the end of the text


# Drivers' error messages (and SQLAlchemy's wrapping of them) quote the row that failed: the values are masked,
# the message stays.
_QUOTES = (
    # Postgres: unique, foreign-key and exclusion violations; NOT NULL and CHECK; values of the wrong type.
    _Quote(r"\b[Kk]ey \((?:[^()\n]|\([^()\n]*\)){1,256}\)=\(",
           r"\)(?= already exists| is not present| conflicts with| is still referenced)|\)\.?[ \t]*$"),
    _Quote(r"\bFailing row contains \(", r"\)\.?[ \t]*$"),
    _Quote(r"\binvalid input (?:syntax|value) for [^:\n]{1,64}: \"", r"\"[ \t]*$"),
    _Quote(r"\bvalue \"", r"\"(?= is out of range)", greedy=False),
    _Quote(r"^LINE \d+: ", r"$", statement="postgres"),  # the statement, quoted where it went wrong
    # MySQL and MariaDB.
    _Quote(r"\bDuplicate entry '", r"'(?= for key )"),
    _Quote(r"\b(?:Incorrect|Truncated incorrect) [\w ]{1,40}? value: '", r"'(?= for column |[ \t]*$)"),
    _Quote(r"\bto use near '", r"'(?= at line \d)"),
    # SQL Server.
    _Quote(r"\bThe duplicate key value is \(", r"\)\."),
    _Quote(r"\bConversion failed when converting (?:the )?[\w ]{1,40}? value '", r"'(?= to data type)"),
    _Quote(r"\bTruncated value: '", r"'\.?[ \t]*$"),
    # SQLAlchemy: `[SQL: ...]` then `[parameters: ...]` under the driver's message (SQLite's has no values).
    _Quote(r"^\[SQL: ", r"\](?=\n\[parameters: |\n\(Background on this error|\s*\Z)", statement="", lines=True),
    _Quote(r"^\[parameters: ", r"\][ \t]*$"),
)  # fmt: skip
# A literal part of each `before`: a message with none of them is left without running the regex.
_TRIGGERS = (
    "ey (", "Failing row", "invalid input", 'value "', "LINE ", "Duplicate entry", "ncorrect ", "to use near",
    "duplicate key value", "Conversion failed", "Truncated value", "[SQL: ", "[parameters: ",
)  # fmt: skip
_TRIGGER = re.compile("|".join(re.escape(trigger) for trigger in _TRIGGERS))
_BEFORE = re.compile("|".join(f"(?P<q{i}>{quote.before})" for i, quote in enumerate(_QUOTES)), re.MULTILINE)
# What follows each value, or (for one on a single line) the end of its line.
_AFTER = tuple(
    re.compile(f"(?P<after>{quote.after})" + ("" if quote.lines else r"|\n"), re.MULTILINE) for quote in _QUOTES
)
_WHOLE: Masked = (PLACEHOLDER, ((0, len(PLACEHOLDER)),))
_MAX_VALUE = 1024  # a quoted value's end is looked for this far; past it, the value runs to the end of its line
_MAX_SHORT_VALUE = 64
# SQLAlchemy's message starts with the driver's exception, `(psycopg2.errors.UniqueViolation)`: its dialect.
_DRIVER = re.compile(r"\s*\((\w+)[.)]")
_DRIVERS = {
    "psycopg": "postgres", "psycopg2": "postgres", "asyncpg": "postgres", "pg8000": "postgres",
    "pymysql": "mysql", "MySQLdb": "mysql", "mysql": "mysql", "aiomysql": "mysql", "asyncmy": "mysql",
    "mariadb": "mysql", "sqlite3": "sqlite", "aiosqlite": "sqlite", "pysqlite": "sqlite",
    "pyodbc": "tsql", "pymssql": "tsql", "aioodbc": "tsql", "cx_Oracle": "oracle", "oracledb": "oracle",
}  # fmt: skip


def mask_driver_errors(text: str, budget: Budget | None = None) -> Masked:
    """A database error message with the values it quotes replaced by `%s` (statements masked as SQL)."""
    if _TRIGGER.search(text) is None:  # fast: most messages quote no database
        return text, ()
    driver = _DRIVER.match(text)
    dialect = _DRIVERS.get(driver.group(1), "") if driver else ""
    out: list[str] = []
    ranges: list[tuple[int, int]] = []
    cursor = length = at = 0
    while (found := _BEFORE.search(text, at)) is not None:
        index = int(str(found.lastgroup)[1:])
        quote, start = _QUOTES[index], found.end()
        window = _MAX_VALUE if quote.greedy else _MAX_SHORT_VALUE  # a value left alone is looked for not far
        after = _AFTER[index].search(text, start, len(text) if quote.lines else start + window)
        if after is not None and after.group("after") is not None:
            end = after.start()
        elif quote.lines:
            end = len(text)
        elif quote.greedy:
            newline = text.find("\n", start)  # then scanning resumes there: each character is looked at once
            end = len(text) if newline < 0 else newline
        else:
            at = start
            continue
        value = text[start:end]
        masked, inner = _WHOLE if quote.statement is None else mask_sql(value, quote.statement or dialect, budget)
        if masked != value:
            out.append(text[cursor:start])
            length += start - cursor
            ranges.extend((length + s, length + e) for s, e in inner)
            out.append(masked)
            length += len(masked)
            cursor = end
        at = max(end, start + 1)
    if not ranges:
        return text, ()
    out.append(text[cursor:])
    return "".join(out), tuple(ranges)


def _entries(
    event: dict[str, Any], key: str, wanted: Callable[[dict[str, Any]], bool] | None = None
) -> list[tuple[dict[str, Any], list[str]]]:
    """The entries of a list interface (`{"values": [...]}`, or the bare list older SDKs send), with their paths
    (only those `wanted` says may hold SQL: a path is made for few of them)."""
    value = event.get(key)
    path = [key]
    if isinstance(value, dict):
        value, path = value.get("values"), [key, "values"]
    if not isinstance(value, list):
        return []
    return [
        (entry, [*path, str(index)])
        for index, entry in enumerate(value)
        if type(entry) is dict and (wanted is None or wanted(entry))
    ]


def _sql_crumb(crumb: dict[str, Any]) -> bool:
    """A breadcrumb of category `query`, `sql` or `db.*`."""
    category = crumb.get("category")
    return type(category) is str and (category in ("query", "sql") or category.startswith("db."))


def _first(data: Any, attributes: Any, keys: tuple[str, ...]) -> str | None:
    """The first of `keys` that is a string in span data or attributes (of either shape)."""
    for key in keys:
        value = data.get(key) if isinstance(data, dict) else None
        if value is None:
            value = _attribute(attributes, key)
        if isinstance(value, str):
            return value
    return None


def _attribute(attributes: Any, key: str) -> Any:
    """A v2 (`{key: {"value": ...}}` or `{key: value}`) or OTLP (`[{"key", "value": {"stringValue"}}]`) attribute."""
    if isinstance(attributes, dict):
        value = attributes.get(key)
        return value.get("value") if isinstance(value, dict) else value
    if isinstance(attributes, list):
        for attribute in attributes:
            if isinstance(attribute, dict) and attribute.get("key") == key:
                value = attribute.get("value")
                return value.get("stringValue") if isinstance(value, dict) else value
    return None


__all__ = ["mask_driver_errors", "mask_sql_literals", "record_sql", "sql_enabled"]
