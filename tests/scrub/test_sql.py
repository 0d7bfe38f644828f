"""SQL literals masked wherever SQL appears: statements per dialect, driver errors, events, span items, end to end."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from typing import Any

import orjson
import pytest
import sentry_sdk
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sentry_sdk.scrubber import EventScrubber
from sentry_sdk.traces import StreamedSpan
from sentry_sdk.tracing import Span
from sentry_sdk.tracing_utils import record_sql_queries
from sqlglot.dialects.dialect import Dialects

from relay.envelope import Item
from relay.rules import load_pack
from relay.scrub.audit import ScrubReport
from relay.scrub.engine import Scrubber
from relay.scrub.items import scrub_item
from relay.scrub.sql import (
    _DIALECTS,
    MAX_TOKENIZED,
    PLACEHOLDER,
    RULE_ID,
    Budget,
    mask_sql,
    sql_dialect,
)
from relay.scrub.sql_fields import mask_driver_errors, mask_sql_literals, sql_enabled

from ..support import background_relay

PII = load_pack("pii").rules
PG_DUPLICATE = (
    'duplicate key value violates unique constraint "users_email_key"\nDETAIL:  Key (email)=({}) already exists.'
)
SECRETS = load_pack("secrets").rules


def masked(text: str, dialect: str = "") -> str:
    """The statement with its literals masked."""
    return mask_sql(text, dialect)[0]


def scrubber(*packs: Any) -> Scrubber:
    """A scrubber of the given packs' rules (default: secrets and pii, as shipped)."""
    rules = [rule for pack in packs for rule in pack] if packs else [*SECRETS, *PII]
    return Scrubber(rules, b"test-hash-key", 5.0)


# -- statements -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "statement", "expected"),
    [
        (
            "postgres",
            """SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."email" = 'anna@x.de' AND age > 30""",
            """SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."email" = %s AND age > %s""",
        ),
        (
            "postgres",
            "SELECT * FROM orders WHERE id IN (101, 102, 103.5, -7) AND note = E'line\\n' LIMIT 21",
            "SELECT * FROM orders WHERE id IN (%s, %s, %s, -%s) AND note = %s LIMIT %s",
        ),
        ("postgres", "UPDATE people SET name = 'O''Brien' WHERE id = 1", "UPDATE people SET name = %s WHERE id = %s"),
        (
            "postgres",
            "SELECT $$anna's notes$$, $body$secret 'x' text$body$ FROM notes",
            "SELECT %s, %s FROM notes",
        ),
        (
            "mysql",
            "SELECT `users`.`id` FROM `users` WHERE name = \"Anna\" AND bio = 'it\\'s me' # anna@x.de\nLIMIT 5",
            "SELECT `users`.`id` FROM `users` WHERE name = %s AND bio = %s # %s\nLIMIT %s",
        ),
        (
            "sqlite",
            "INSERT INTO t1 (c2, c3, c4) VALUES (?1, 'anna', X'00ff') -- seed\n",
            "INSERT INTO t1 (c2, c3, c4) VALUES (?1, %s, %s) -- %s\n",
        ),
        (
            "tsql",
            "SELECT [col 1] FROM dbo.t WHERE a = N'Anna' AND b = @p1",
            "SELECT [col 1] FROM dbo.t WHERE a = %s AND b = @p1",
        ),
    ],
)
def test_dialect_statements(dialect: str, statement: str, expected: str) -> None:
    """Strings, numbers and comments become `%s`; identifiers, keywords and operators stay, layout and all."""
    assert masked(statement, dialect) == expected


def test_placeholders_kept() -> None:
    """The placeholders drivers and ORMs write are not literals: `%s`, `%(name)s`, `?`, `$1`, `:name`, `:1`, `@p1`."""
    statement = (
        "SELECT a FROM t WHERE a = %s AND b = %(name)s AND c = ? AND d = $1 AND e = :name AND f = :1 AND g = @p1"
    )
    assert mask_sql(statement) == (statement, ())
    assert mask_sql(statement, "postgres") == (statement, ())


def test_identifiers_with_digits_kept() -> None:
    """Digits inside identifiers are kept; digits standing alone are not."""
    assert masked("SELECT t2.col1, table1.x3 FROM table1 JOIN t2 ON t2.id = table1.id + 42") == (
        "SELECT t2.col1, table1.x3 FROM table1 JOIN t2 ON t2.id = table1.id + %s"
    )


def test_null_and_booleans_kept() -> None:
    """NULL, TRUE and FALSE carry no personal data and tell the query apart."""
    statement = "SELECT 1 FROM t WHERE deleted_at IS NULL AND active = TRUE AND banned = false"
    assert masked(statement) == "SELECT %s FROM t WHERE deleted_at IS NULL AND active = TRUE AND banned = false"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT 1 -- anna@x.de\nFROM t", "SELECT %s -- %s\nFROM t"),
        ("SELECT /* user anna@x.de */ 1", "SELECT /* %s */ %s"),
        ("/* outer /* nested */ anna@x.de */ SELECT a FROM t", "/* %s */ SELECT a FROM t"),
        ("SELECT a FROM t /*controller='users',user_id='42'*/", "SELECT a FROM t /*%s*/"),
    ],
)
def test_comments_masked(statement: str, expected: str) -> None:
    """Comment text is masked too: it can carry anything (sqlcommenter tags, an engineer's note)."""
    assert masked(statement) == expected


def test_generic_dialect_masks_what_cannot_be_an_identifier() -> None:
    """Without a dialect, "users" stays an identifier, but a double-quoted "anna@x.de" is masked."""
    assert masked('SELECT "users"."id" FROM "users" WHERE email = "anna@x.de"') == (
        'SELECT "users"."id" FROM "users" WHERE email = %s'
    )


def test_untokenizable_statement_masked_by_fallback() -> None:
    """A statement the tokenizer rejects still has every quoted run and every free-standing digit run masked."""
    statement = "SELECT * FROM t1 WHERE name = 'Anna' AND n = 42 AND note = 'unterminated anna@x.de"
    assert masked(statement) == "SELECT * FROM t1 WHERE name = %s AND n = %s AND note = %s"
    assert masked('SELECT "x FROM t2 WHERE a = 7', "postgres") == "SELECT %s"


def test_statement_longer_than_bound_takes_the_linear_fallback() -> None:
    """At MAX_TOKENIZED the tokenizer reads the statement (quoted identifiers kept); past it the regex masks them."""
    head = 'SELECT "users"."id" FROM "users" WHERE note = \''
    for size, kept in ((MAX_TOKENIZED, True), (MAX_TOKENIZED + 1, False)):
        statement = head + "x" * (size - len(head) - 1) + "'"
        assert len(statement) == size
        out = masked(statement, "postgres")
        assert out.endswith("= %s")
        assert ('"users"' in out) is kept


def test_budget_spent_means_fallback() -> None:
    """Once an item's tokenizer budget is spent, its further statements are masked by the regex."""
    statement = 'SELECT "users"."id" FROM "users" WHERE id = 5 AND note = \'' + "x" * 3000 + "'"
    budget = Budget(len(statement) + 10)
    assert mask_sql(statement, "postgres", budget)[0] == 'SELECT "users"."id" FROM "users" WHERE id = %s AND note = %s'
    assert mask_sql(statement + " ", "postgres", budget)[0] == "SELECT %s.%s FROM %s WHERE id = %s AND note = %s "


@pytest.mark.parametrize(
    "hostile",
    [
        "'" * 300_000,
        "/*" * 150_000,
        "$a$" * 100_000,
        '"a' * 150_000,
        "x = 'a''b' -- c\n" * 20_000,
        "1a" * 150_000,
        "'\\" * 150_000,
    ],
)
def test_hostile_statements_are_linear(hostile: str) -> None:
    """Whatever the input, masking costs time in proportion to its length (bounded per tokenized statement)."""
    started = time.perf_counter()
    for dialect in ("", "postgres", "mysql"):
        mask_sql(hostile, dialect)
        mask_sql(hostile[:MAX_TOKENIZED], dialect)
    assert time.perf_counter() - started < 15  # about 2s on a shared core; quadratic would be hours


def test_remarks_point_at_placeholders() -> None:
    """Each range returned covers one placeholder written into the output."""
    out, ranges = mask_sql("SELECT a FROM t WHERE b = 'x' AND c IN (1, 2) -- note")
    assert ranges and all(out[start:end] == PLACEHOLDER for start, end in ranges)
    assert len(ranges) == 4


@pytest.mark.parametrize(
    ("system", "dialect"),
    [
        ("postgresql", "postgres"),
        ("mysql", "mysql"),
        ("mariadb", "mysql"),
        ("sqlite", "sqlite"),
        ("mssql", "tsql"),
        ("microsoft.sql_server", "tsql"),
        ("oracle", "oracle"),
        ("clickhouse", "clickhouse"),
        ("snowflake", "snowflake"),
        ("other_sql", ""),
        (None, ""),
        ("redis", None),
        ("mongodb", None),
    ],
)
def test_sql_dialect(system: str | None, dialect: str | None) -> None:
    """`db.system` names the dialect; unknown systems are generic SQL, and stores without SQL are left alone."""
    assert sql_dialect(system) == dialect


def test_every_mapped_dialect_exists() -> None:
    """Each dialect `db.system` maps to is one this sqlglot has (else its statements would only get the regex)."""
    assert set(_DIALECTS.values()) <= {dialect.value for dialect in Dialects}


# -- driver errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            PG_DUPLICATE.format("anna@x.de"),
            PG_DUPLICATE.format("%s"),
        ),
        (
            'DETAIL:  Key (lower(email::text))=(anna@x.de) is not present in table "users".',
            'DETAIL:  Key (lower(email::text))=(%s) is not present in table "users".',
        ),
        (
            'null value in column "name" of relation "users" violates not-null constraint\n'
            "DETAIL:  Failing row contains (7, anna@x.de, null).",
            'null value in column "name" of relation "users" violates not-null constraint\n'
            "DETAIL:  Failing row contains (%s).",
        ),
        (
            "(1062, \"Duplicate entry 'anna@x.de' for key 'users.email'\")",
            "(1062, \"Duplicate entry '%s' for key 'users.email'\")",
        ),
        (
            "Incorrect integer value: 'Anna' for column 'age' at row 1",
            "Incorrect integer value: '%s' for column 'age' at row 1",
        ),
        (
            "Cannot insert duplicate key in object 'dbo.users'. The duplicate key value is (anna@x.de). (2627)",
            "Cannot insert duplicate key in object 'dbo.users'. The duplicate key value is (%s). (2627)",
        ),
        (
            "(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
            "[SQL: INSERT INTO users (email, name) VALUES (?, 'Anna')]\n"
            "[parameters: ('anna@x.de',)]\n"
            "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
            "(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
            "[SQL: INSERT INTO users (email, name) VALUES (?, %s)]\n"
            "[parameters: %s]\n"
            "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
        ),
        ('invalid input syntax for type integer: "Anna"', 'invalid input syntax for type integer: "%s"'),
        ("division by zero", "division by zero"),
    ],
)
def test_driver_errors(message: str, expected: str) -> None:
    """Only the values a driver quotes are masked; the message around them stays."""
    assert mask_driver_errors(message)[0] == expected
    assert mask_driver_errors(expected)[0] == expected


def test_hostile_driver_errors_are_linear() -> None:
    """Repeated openers without their closers cost linear time."""
    started = time.perf_counter()
    for opener in ("Duplicate entry '", "Key (a)=(", 'value "', "[SQL: 'a\n", "[parameters: x\n", "to use near '"):
        mask_driver_errors(opener * (300_000 // len(opener)))
    assert time.perf_counter() - started < 15


# -- properties ---------------------------------------------------------------------------------

KEYWORDS = ("select", "from", "where", "and", "or", "in", "like", "is null", "order by", "limit", "values", "set")
IDENTIFIERS = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
# Literal contents never share a character with what is kept (lowercase words, operators), so any of their
# characters surviving would show.
CONTENTS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ@!~ 'äöü€", min_size=1, max_size=12).filter(
    lambda s: s.strip(" '")
)


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """A statement made of kept parts and literals: (statement, the statement as it must come out, contents)."""
    parts: list[tuple[str, str]] = []
    contents: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["keyword", "identifier", "string", "number", "operator", "placeholder"]))
        if kind == "keyword":
            word = draw(st.sampled_from(KEYWORDS))
            parts.append((word, word))
        elif kind == "identifier":
            name = draw(IDENTIFIERS)
            name = draw(st.sampled_from([name, f'"{name}"']))
            parts.append((name, name))
        elif kind == "string":
            content = draw(CONTENTS)
            contents.append(content)
            parts.append(("'" + content.replace("'", "''") + "'", PLACEHOLDER))
        elif kind == "number":
            number = draw(st.sampled_from(["7", "42", "3.25", "1e6", "900719925474"]))
            parts.append((number, PLACEHOLDER))
        elif kind == "operator":
            operator = draw(st.sampled_from(["=", "<>", "(", ")", ",", "+", "*"]))
            parts.append((operator, operator))
        else:
            placeholder = draw(st.sampled_from(["%s", "?", "$1", ":name", "%(email)s"]))
            parts.append((placeholder, placeholder))
    gaps = [draw(st.sampled_from([" ", "  ", "\n", "\t "])) for _ in parts]
    return (
        "".join(gap + text for gap, (text, _) in zip(gaps, parts, strict=True)),
        "".join(gap + out for gap, (_, out) in zip(gaps, parts, strict=True)),
        contents,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements(), st.sampled_from(["", "postgres", "mysql", "sqlite"]))
def test_literals_replaced_and_nothing_else(case: tuple[str, str, list[str]], dialect: str) -> None:
    """Every literal becomes `%s`, nothing else changes, and none of a string literal's content survives."""
    statement, expected, contents = case
    dialect = "" if dialect == "mysql" and '"' in statement else dialect  # MySQL reads "x" as a string
    out = masked(statement, dialect)
    assert out == expected
    for content in contents:
        for char in content.replace(" ", "").replace("'", ""):
            assert char not in out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=80),
        st.text(alphabet="'\"$`#-/*\\ \n()0123456789abcxEN@:?%.;[]{}", max_size=80),
        statements().map(lambda case: case[0]),
    ),
    st.sampled_from(["", "postgres", "mysql", "sqlite", "tsql", "bigquery"]),
)
@example("SELECT 'a'1, x'zz", "")
@example("SELECT $$a", "postgres")
@example("/* a /* b */ c", "")
@example(":0.'", "")
@example("??0'", "")
@example("@?0'", "postgres")
def test_masking_is_idempotent(text: str, dialect: str) -> None:
    """Masking masked SQL changes nothing: placeholders, kept parts and masked comments read the same again."""
    once = masked(text, dialect)
    assert mask_sql(once, dialect) == (once, ())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="Key ()=DuplicatenryF'\"[SQL:parmetsLIN1\n.x@", max_size=120))
def test_driver_error_masking_is_idempotent(text: str) -> None:
    """Masking a masked driver error changes nothing."""
    once = mask_driver_errors(text)[0]
    assert mask_driver_errors(once) == (once, ())


# -- where SQL appears --------------------------------------------------------------------------


def transaction() -> dict[str, Any]:
    """A transaction with SQL in a db span, span data, a Redis span, breadcrumbs and an exception."""
    return {
        "type": "transaction",
        "spans": [
            {
                "op": "db",
                "description": "SELECT * FROM users WHERE email = 'anna@x.de'",
                "data": {"db.system": "postgresql", "db.statement": "SELECT * FROM users WHERE id = 42"},
            },
            {"op": "db.redis", "description": "GET session:12345"},
            {"op": "http.client", "description": "GET /a?id=5", "data": {"db.query.text": "DELETE FROM t WHERE a = 1"}},
        ],
        "breadcrumbs": {
            "values": [
                {"category": "query", "message": "UPDATE accounts SET owner = 'Anna Schmidt' WHERE id = 9"},
                {"category": "db.sql.query", "data": {"query": "SELECT 1", "statement": "SELECT 'x'"}},
                {"category": "http", "message": "GET /items/42"},
                {"category": "db.redis", "message": "SET user:1 42"},
            ]
        },
        "exception": {
            "values": [{"type": "IntegrityError", "value": "DETAIL:  Key (name)=(Anna Schmidt) already exists."}]
        },
        "logentry": {"message": "Duplicate entry 'Anna Schmidt' for key 'name'"},
    }


def test_event_masked_where_sql_appears() -> None:
    """db span descriptions, statements in span data, SQL breadcrumbs and driver errors; Redis and HTTP are left."""
    event = transaction()
    meta = mask_sql_literals(event, "", scrubber())
    spans, crumbs = event["spans"], event["breadcrumbs"]["values"]
    assert spans[0]["description"] == "SELECT * FROM users WHERE email = %s"
    assert spans[0]["data"]["db.statement"] == "SELECT * FROM users WHERE id = %s"
    assert spans[1]["description"] == "GET session:12345"
    assert spans[2]["description"] == "GET /a?id=5"
    assert spans[2]["data"]["db.query.text"] == "DELETE FROM t WHERE a = %s"
    assert crumbs[0]["message"] == "UPDATE accounts SET owner = %s WHERE id = %s"
    assert crumbs[1]["data"] == {"query": "SELECT %s", "statement": "SELECT %s"}
    assert crumbs[2]["message"] == "GET /items/42"
    assert crumbs[3]["message"] == "SET user:1 42"
    assert event["exception"]["values"][0]["value"] == "DETAIL:  Key (name)=(%s) already exists."
    assert event["logentry"]["message"] == "Duplicate entry '%s' for key 'name'"
    assert meta["spans"]["0"]["description"] == {"": {"rem": [[RULE_ID, "s", 34, 36]], "len": 45}}
    assert meta["breadcrumbs"]["values"]["0"]["message"][""]["rem"] == [[RULE_ID, "s", 28, 30], [RULE_ID, "s", 42, 44]]


def test_off_without_the_pii_pack() -> None:
    """Only the pii pack's presence (in force, not audited) turns SQL masking on."""
    event = transaction()
    assert mask_sql_literals(event, "", scrubber(SECRETS)) == {}
    assert event == transaction()
    audited = Scrubber([*SECRETS, *(dataclasses.replace(rule, audit=True) for rule in PII)])
    assert not sql_enabled(audited)
    assert sql_enabled(scrubber(PII))


def test_breadcrumbs_read_in_the_dialect_of_the_events_spans() -> None:
    """A query breadcrumb without `db.system` takes the dialect the event's SQL spans agree on."""
    event: dict[str, Any] = {
        "spans": [{"op": "db", "description": "SELECT 1", "data": {"db.system": "mysql"}}],
        "breadcrumbs": [{"category": "query", "message": 'SELECT * FROM t WHERE name = "Anna"'}],
    }
    mask_sql_literals(event, "", scrubber())
    assert event["breadcrumbs"][0]["message"] == "SELECT * FROM t WHERE name = %s"


def test_span_items_v1_v2_and_otel() -> None:
    """`span` items (v1 JSON, v2 `items` with typed attributes) and `otel_span` attribute lists are masked."""
    v1: dict[str, Any] = {
        "op": "db.query",
        "description": "SELECT a FROM t WHERE b = 'x'",
        "data": {"db.system": "sqlite"},
    }
    v2: dict[str, Any] = {
        "items": [
            {
                "name": "SELECT a FROM t WHERE b = 'x'",
                "attributes": {
                    "sentry.op": {"type": "string", "value": "db"},
                    "db.query.text": {"type": "string", "value": "SELECT a FROM t WHERE b = 'x'"},
                    "db.system.name": {"type": "string", "value": "postgresql"},
                },
            }
        ]
    }
    otel: dict[str, Any] = {
        "name": "SELECT t",
        "attributes": [
            {"key": "db.system", "value": {"stringValue": "mysql"}},
            {"key": "db.statement", "value": {"stringValue": 'SELECT a FROM t WHERE b = "x" AND c = 5'}},
        ],
    }
    for payload in (v1, v2, otel):
        assert mask_sql_literals(payload, "@span", scrubber())
    assert v1["description"] == "SELECT a FROM t WHERE b = %s"
    span = v2["items"][0]
    assert span["name"] == span["attributes"]["db.query.text"]["value"] == "SELECT a FROM t WHERE b = %s"
    assert otel["attributes"][1]["value"]["stringValue"] == "SELECT a FROM t WHERE b = %s AND c = %s"


def test_transaction_item_meta_and_report() -> None:
    """Through scrub_item: SQL remarks lead the event's `_meta`, the rules still run after, and all are reported."""
    event = transaction()
    event["spans"][0]["description"] = "SELECT * FROM users WHERE email = 'anna@x.de' -- for bob@example.com"
    event["spans"][2]["description"] = "GET /a?email=carol@example.com"
    it = Item({"type": "transaction"}, orjson.dumps(event))
    report = ScrubReport()
    scrub_item(it, scrubber(), report)
    out = orjson.loads(it.payload)
    assert out["spans"][0]["description"] == "SELECT * FROM users WHERE email = %s -- %s"
    assert out["spans"][2]["description"] == "GET /a?email=[email]"
    meta = out["_meta"]
    assert meta["spans"]["0"]["description"][""]["rem"] == [[RULE_ID, "s", 34, 36], [RULE_ID, "s", 40, 42]]
    assert meta["spans"]["2"]["description"][""]["rem"][0][0] == "pii.email"
    reported = {(r.path, r.rule) for r in report.enforced}
    assert ("spans.0.description", RULE_ID) in reported
    assert ("spans.2.description", "pii.email") in reported


def test_sql_remarks_come_before_the_rules_on_one_field() -> None:
    """Where the rules change a field SQL masking changed too, its remarks come first and `len` is the original's."""
    statement = "SELECT \"anna@x.de\" FROM t WHERE a = 'x'"  # a column named like an email: kept by SQL masking
    event = {"spans": [{"op": "db", "description": statement, "data": {"db.system": "postgresql"}}]}
    it = Item({"type": "transaction"}, orjson.dumps(event))
    scrub_item(it, scrubber())
    out = orjson.loads(it.payload)
    assert out["spans"][0]["description"] == 'SELECT "[email]" FROM t WHERE a = %s'
    entry = out["_meta"]["spans"]["0"]["description"][""]
    assert [remark[0] for remark in entry["rem"]] == [RULE_ID, "pii.email"]
    assert entry["len"] == len(statement)


def test_span_item_reported_without_meta() -> None:
    """A `span` item's SQL is masked and reported; no `_meta` is added to it."""
    it = Item({"type": "span"}, orjson.dumps({"op": "db", "description": "SELECT 1 FROM t WHERE a = 'b'"}))
    report = ScrubReport()
    scrub_item(it, scrubber(), report)
    assert orjson.loads(it.payload) == {"op": "db", "description": "SELECT %s FROM t WHERE a = %s"}
    assert {(r.path, r.rule) for r in report.enforced} == {("span.description", RULE_ID)}


def test_many_literals_get_one_remark() -> None:
    """A long IN list is recorded as one remark covering all placeholders, not hundreds."""
    event = {"spans": [{"op": "db", "description": "SELECT a FROM t WHERE id IN (" + ", ".join(["1"] * 100) + ")"}]}
    meta = mask_sql_literals(event, "", scrubber())
    [remark] = meta["spans"]["0"]["description"][""]["rem"]
    assert remark[:2] == [RULE_ID, "s"] and event["spans"][0]["description"][remark[2] : remark[3]].count("%s") == 100


# -- end to end ------------------------------------------------------------------------------------


class IntegrityError(Exception):
    """Stands in for a driver's error (its message as psycopg would give it)."""


def test_sdk_transaction_and_error_arrive_with_sql_masked() -> None:
    """The real SDK's db span and query breadcrumb (its own record_sql_queries), and a driver error, reach the
    upstream through the relay with literals masked and identifiers kept."""
    sent: list[dict[str, Any]] = []

    def before_send(event: Any, hint: Any) -> Any:
        sent.append(orjson.loads(orjson.dumps(event, default=str)))
        return event

    query = 'SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."email" = \'anna@x.de\' AND age > 30'
    with background_relay(rules="[secrets, pii]") as relay:
        sentry_sdk.init(
            dsn=relay.dsn,
            traces_sample_rate=1.0,
            send_default_pii=True,
            default_integrations=False,
            auto_enabling_integrations=False,
            send_client_reports=False,
            before_send=before_send,
            event_scrubber=EventScrubber(denylist=[], pii_denylist=[], send_default_pii=True),
        )
        client = sentry_sdk.get_client()
        try:
            with sentry_sdk.isolation_scope(), sentry_sdk.start_transaction(name="signup", op="http.server"):
                connection = sqlite3.connect(":memory:")
                connection.execute('CREATE TABLE "users" (id INTEGER, email TEXT, age INTEGER)')
                with record_sql_queries(None, query, None, None, False) as span:
                    assert isinstance(span, Span)
                    span.set_data("db.system", "postgresql")
                    connection.execute(query).fetchall()
                try:
                    raise IntegrityError(PG_DUPLICATE.format("anna@x.de"))
                except IntegrityError:
                    sentry_sdk.capture_exception()
            client.flush(timeout=10)
            relay.wait_for(2)
        finally:
            client.close(timeout=10)
            sentry_sdk.get_global_scope().set_client(None)

        [original] = sent
        assert original["breadcrumbs"]["values"][-1]["message"] == query, "the SDK sent no query breadcrumb"
        items = {i.type: orjson.loads(i.payload) for r in relay.upstream.received for i in r.envelope.items}
        raw = b"".join(r.envelope.serialize() for r in relay.upstream.received)
        assert b"anna@x.de" not in raw
        expected = 'SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."email" = %s AND age > %s'
        [db_span] = [s for s in items["transaction"]["spans"] if s["op"] == "db"]
        assert db_span["description"] == expected
        assert db_span["data"]["db.system"] == "postgresql"
        assert items["transaction"]["_meta"]["spans"]["0"]["description"][""]["rem"][0][0] == RULE_ID
        error = items["event"]
        crumb = [c for c in error["breadcrumbs"]["values"] if c.get("category") == "query"][-1]
        assert crumb["message"] == expected
        assert error["exception"]["values"][0]["value"] == PG_DUPLICATE.format("%s")
        assert error["exception"]["values"][0]["type"] == "IntegrityError"


def test_sdk_streamed_db_span_arrives_with_sql_masked() -> None:
    """With span streaming, the SDK's db span travels as a v2 `span` item: its name and `db.query.text` arrive
    masked, its other attributes intact."""
    query = "SELECT id FROM users WHERE email = 'anna@x.de' AND age > 30"
    with background_relay(rules="[secrets, pii]") as relay:
        sentry_sdk.init(
            dsn=relay.dsn,
            traces_sample_rate=1.0,
            default_integrations=False,
            auto_enabling_integrations=False,
            send_client_reports=False,
            _experiments={"trace_lifecycle": "stream"},
        )
        client = sentry_sdk.get_client()
        try:
            with (
                sentry_sdk.isolation_scope(),  # the SDK adds a query breadcrumb: it must not outlive this test
                sentry_sdk.traces.start_span(name="signup"),
                record_sql_queries(None, query, None, None, False) as span,
            ):
                assert isinstance(span, StreamedSpan)
                span.set_attribute("db.system.name", "postgresql")
            client.flush(timeout=10)
            relay.wait_for(1)
        finally:
            client.close(timeout=10)
            sentry_sdk.get_global_scope().set_client(None)

        [item] = [i for r in relay.upstream.received for i in r.envelope.items if i.type == "span"]
        [db_span] = [s for s in orjson.loads(item.payload)["items"] if s["name"].startswith("SELECT")]
        expected = "SELECT id FROM users WHERE email = %s AND age > %s"
        assert db_span["name"] == db_span["attributes"]["db.query.text"]["value"] == expected
        assert db_span["attributes"]["sentry.op"]["value"] == "db"
        assert db_span["attributes"]["db.system.name"]["value"] == "postgresql"
