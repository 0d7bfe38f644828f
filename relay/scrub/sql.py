"""SQL literals replaced with a placeholder: string and number literals, and comments, go; the statement's shape stays.

A statement is read with sqlglot's tokenizer in the dialect its `db.system` names (see `sql_dialect`), so quoting
and comments are understood as the database would: `'O''Brien'`, `$tag$...$tag$`, MySQL's `"strings"`, nested
`/* */`. String and number literals become `%s`, the placeholder Sentry's own SQL scrubbing writes; the rules
engine reads `%s` as a format placeholder (`password=%s` is a template, not a password) and no detector matches
it, so what is masked here is not redacted again. Comment text becomes `%s` too: it can carry anything.

Kept: identifiers (quoted ones too, and digits in them: `table1`, `t2.col`), keywords, operators, NULL,
TRUE/FALSE, and the placeholders already there (`%s`, `%(name)s`, `?`, `$1`, `:name`, `:1`, `@p1`). Without a
dialect, a double-quoted identifier is kept only if it looks like one: a MySQL string like "anna@x.de" is masked.

A statement the tokenizer can't read, longer than MAX_TOKENIZED, or past its item's Budget, is masked by one
linear regex instead: every quoted run, comment and free-standing digit run. Both leave the layout as it was.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import Token, TokenType
from sqlglot.dialects.dialect import Dialect

RULE_ID = "pii.sql_literals"
PLACEHOLDER = "%s"
# The tokenizer costs 1 to 7 microseconds a character (the regex about 1), and small items are scrubbed on the
# event loop: a longer statement, or one past an item's Budget, gets the regex.
MAX_TOKENIZED = 64 * 1024
TOKENIZED_PER_ITEM = 128 * 1024
_MAX_CACHED = 2048  # statements repeat (ORMs bind their values): short ones are remembered, at no cost to a Budget
_CACHE_SIZE = 1024  # statements remembered (4 MB at most in ASCII); then the memo starts again

# `db.system` / `db.system.name` (OpenTelemetry's values, old and new) to sqlglot's dialect names (a name sqlglot
# lacked would raise, and the statement get the regex).
_DIALECTS = {
    "postgresql": "postgres", "postgres": "postgres", "cockroachdb": "postgres", "edb": "postgres",
    "mysql": "mysql", "mariadb": "mysql", "tidb": "mysql", "singlestore": "mysql", "memsql": "mysql",
    "sqlite": "sqlite", "mssql": "tsql", "microsoft.sql_server": "tsql", "sqlserver": "tsql", "tsql": "tsql",
    "oracle": "oracle", "oracle.db": "oracle", "clickhouse": "clickhouse", "bigquery": "bigquery",
    "gcp.bigquery": "bigquery", "spanner": "bigquery", "gcp.spanner": "bigquery", "snowflake": "snowflake",
    "redshift": "redshift", "aws.redshift": "redshift", "duckdb": "duckdb", "trino": "trino", "presto": "presto",
    "athena": "athena", "hive": "hive", "spark": "spark", "databricks": "databricks", "teradata": "teradata",
    "materialize": "materialize", "risingwave": "risingwave", "doris": "doris", "starrocks": "starrocks",
}  # fmt: skip
# Stores whose statements are not SQL (commands, JSON): the tokenizer would misread them, so they are left to the
# rules. Any other system is read as SQL, in the generic dialect if it has none above.
_NOT_SQL = frozenset({
    "redis", "valkey", "memcached", "mongodb", "mongo", "elasticsearch", "opensearch", "dynamodb", "aws.dynamodb",
    "couchdb", "hbase", "geode", "influxdb", "neo4j", "etcd", "firestore",
})  # fmt: skip

_LITERALS = frozenset({
    TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.NATIONAL_RAW_STRING,
    TokenType.HEREDOC_STRING, TokenType.BYTE_STRING, TokenType.BIT_STRING, TokenType.HEX_STRING,
    TokenType.UNICODE_STRING,
})  # fmt: skip
# A number right after one of these is part of a placeholder: `$1`, `?1`, `:1`, `@1`.
_PLACEHOLDER_PREFIXES = frozenset({TokenType.PARAMETER, TokenType.PLACEHOLDER, TokenType.COLON})
# So is a number right after an operator ending in one of these (`??1`, `@?1` in Postgres), as the fallback reads it.
_PLACEHOLDER_ENDS = ("$", "@", ":", "?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")
_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_]\w{0,62})?\$")
# Anything to mask needs one of these: without them the statement is returned untouched, untokenized.
_MAY_MASK = re.compile(r"['\"$#\d]|--|/\*|//")
_COMMENT_MARKS = re.compile(r"/\*|\*/")

# The fallback, one pass leftmost-first. Each alternative either can't fail once started (a string or comment
# runs to its end, or to the end of the text) or is bounded, so the scan is linear. Backslash is read as an
# escape: where a dialect doesn't, a string runs on further, which masks more, never less.
_FALLBACK = r"""
    (?P<comment>(?:--{hash}|//)(?P<line>[^\n]*) | /\*(?P<block>.*?)(?:\*/|\Z))
  | '(?:[^'\\]|\\.|'')*'?
  | "(?:[^"\\]|\\.|"")*"?
  | \$(?P<tag>(?:[A-Za-z_]\w{{0,62}})?)\$.*?(?:\$(?P=tag)\$|\Z)
  | (?<![\w$@:?])\d[\w.]*
"""
_FALLBACKS = {
    hashed: re.compile(_FALLBACK.format(hash="|\\#" if hashed else ""), re.VERBOSE | re.DOTALL)
    for hashed in (False, True)
}

Masked = tuple[str, tuple[tuple[int, int], ...]]  # the new text, and where placeholders were written into it


def sql_dialect(system: Any) -> str | None:
    """The sqlglot dialect for a `db.system` value: "" for generic SQL, None for a store that doesn't speak SQL."""
    if not isinstance(system, str) or not system:
        return ""
    name = system.strip().lower()
    if name in _NOT_SQL:
        return None
    return _DIALECTS.get(name, "")


class Budget:
    """How many more characters one item may have tokenized; statements past it get the regex."""

    __slots__ = ("left",)

    def __init__(self, chars: int = TOKENIZED_PER_ITEM) -> None:
        self.left = chars


_MEMO: dict[tuple[str, str], Masked] = {}


def mask_sql(text: str, dialect: str = "", budget: Budget | None = None) -> Masked:
    """`text` with its literals and comment text replaced by `%s`, and the ranges of those placeholders in it."""
    if not _MAY_MASK.search(text):
        return text, ()
    short = len(text) <= _MAX_CACHED
    if short and (known := _MEMO.get((text, dialect))) is not None:
        return known
    if len(text) > MAX_TOKENIZED or (budget is not None and budget.left < len(text)):
        return _fallback(text, dialect)
    if budget is not None:
        budget.left -= len(text)
    masked = _tokenized(text, dialect)
    if short:
        if len(_MEMO) >= _CACHE_SIZE:
            _MEMO.clear()
        _MEMO[(text, dialect)] = masked
    return masked


def _tokenized(text: str, dialect: str) -> Masked:
    generic = not dialect
    if generic and _DOLLAR_QUOTE.search(text):
        dialect = "postgres"  # only Postgres and its kin quote with `$$`: read as generic SQL, its content would pass
    try:
        tokens = Dialect.get_or_raise(dialect or None).tokenizer().tokenize(text)
    except Exception:  # TokenError, or anything else a hostile statement provokes: masked the blunt way
        return _fallback(text, dialect)
    spans: list[tuple[int, int]] = []
    cursor = 0
    previous: Token | None = None
    previous_masked = False
    for token in tokens:
        start, end = token.start, token.end + 1
        if not cursor <= start < end <= len(text):
            return _fallback(text, dialect)  # positions we can't trust
        if start > cursor:
            _comments(text, cursor, start, spans)
        adjacent = previous is not None and previous.end + 1 == start
        kind = token.token_type
        if kind is TokenType.NUMBER:
            placeholder = (
                adjacent
                and previous is not None
                and (previous.token_type in _PLACEHOLDER_PREFIXES or previous.text.endswith(_PLACEHOLDER_ENDS))
            )
            # `$1` (and `:0.`, as the fallback reads it), but T-SQL's money `$1.50` is a literal
            mask = not (placeholder and token.text.rstrip(".").isdigit())
        elif kind is TokenType.VAR:  # `1_000`, `0b101`: a number's tail; digits only: a number in another script
            mask = (adjacent and previous_masked) or token.text.isnumeric()
        elif kind is TokenType.IDENTIFIER:
            mask = generic and not _IDENTIFIER.fullmatch(token.text)
        else:
            mask = kind in _LITERALS
        if mask:
            if adjacent and previous_masked and spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        cursor = end
        previous, previous_masked = token, mask
    if cursor < len(text):
        _comments(text, cursor, len(text), spans)
    return _splice(text, spans)


def _comments(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    """Mask the comment text between two tokens (the tokenizer skipped it: it is whitespace and comments)."""
    at = start
    while at < end:
        if text[at].isspace():
            at += 1
            continue
        if text.startswith("/*", at):
            depth, scan, last = 1, at + 2, end
            while depth:  # Postgres nests block comments
                mark = _COMMENT_MARKS.search(text, scan, end)
                if mark is None:
                    break
                depth += 1 if mark.group() == "/*" else -1
                scan, last = mark.end(), mark.start()
            body_start = at + 2
            body_end, stop = (last, scan) if depth == 0 else (end, end)
        elif text.startswith(("--", "//"), at) or text[at] == "#":
            newline = text.find("\n", at, end)
            stop = end if newline < 0 else newline
            body_start, body_end = at + (1 if text[at] == "#" else 2), stop
        else:  # a comment form we don't know: mask up to the next whitespace
            stop = at
            while stop < end and not text[stop].isspace():
                stop += 1
            body_start, body_end = at, stop
        _add_trimmed(text, body_start, body_end, spans)
        at = max(stop, at + 1)


def _fallback(text: str, dialect: str) -> Masked:
    """Every quoted run, comment and free-standing digit run masked, in one linear pass."""
    spans: list[tuple[int, int]] = []
    hashed = dialect in ("mysql", "doris", "starrocks") or not dialect
    for match in _FALLBACKS[hashed].finditer(text):
        if match.group("comment") is None:
            spans.append(match.span())
        elif match.group("line") is not None:
            _add_trimmed(text, *match.span("line"), spans)
        else:
            _add_trimmed(text, *match.span("block"), spans)
    return _splice(text, spans)


def _add_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    """Mask text[start:end] without its leading and trailing whitespace, if anything is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _splice(text: str, spans: list[tuple[int, int]]) -> Masked:
    """Write the placeholder over each span (in order, not overlapping); a span that is one already is no change."""
    out: list[str] = []
    ranges: list[tuple[int, int]] = []
    cursor = length = 0
    for start, end in spans:
        if text[start:end] == PLACEHOLDER:
            continue
        out.append(text[cursor:start])
        length += start - cursor
        out.append(PLACEHOLDER)
        ranges.append((length, length + len(PLACEHOLDER)))
        length += len(PLACEHOLDER)
        cursor = end
    if not ranges:
        return text, ()
    out.append(text[cursor:])
    return "".join(out), tuple(ranges)


__all__ = [
    "MAX_TOKENIZED",
    "PLACEHOLDER",
    "RULE_ID",
    "TOKENIZED_PER_ITEM",
    "Budget",
    "Masked",
    "mask_sql",
    "sql_dialect",
]
