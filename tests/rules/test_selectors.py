"""Selectors: dotted keys, wildcards, quoted keys, type shortcuts, exclusions, and subtree pruning."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.envelope import Envelope, Item
from relay.rules import Selector, SelectorError, parse_pack
from relay.rules.selectors import SEP, SHORTCUTS, expand
from relay.scrub.engine import Scrubber
from relay.scrub.items import scrub_envelope_headers, scrub_item


def shape(path: str) -> str:
    """A shape from a dotted path (`#` for list items)."""
    return path.replace(".", SEP) if path else ""


def matches(include: list[str], path: str, exclude: list[str] | None = None) -> bool:
    """Whether the selector matches the node at `path`."""
    return Selector(include, exclude or []).matches(shape(path))


def within(include: list[str], path: str, exclude: list[str] | None = None) -> bool:
    """Whether the selector may match the node at `path` or anything beneath it."""
    return Selector(include, exclude or []).may_match_within(shape(path))


# -- syntax ---------------------------------------------------------------------------------------


def test_dotted_keys_match_node_and_subtree() -> None:
    """`a.b` matches the node a.b and everything beneath it, not its parent or siblings."""
    assert matches(["request.data"], "request.data")
    assert matches(["request.data"], "request.data.password")
    assert matches(["request.data"], "request.data.items.#.card")
    assert not matches(["request.data"], "request")
    assert not matches(["request.data"], "request.env")
    assert not matches(["request.data"], "request.database")
    assert not matches(["request.data"], "extra.request.data")


def test_numeric_segment_matches_any_list_index() -> None:
    """A number in a selector stands for any list item (shapes write indices as `#`)."""
    assert matches(["exception.values.0.type"], "exception.values.#.type")
    assert not matches(["exception.values.0.type"], "exception.values.#.value")


def test_star_matches_exactly_one_segment() -> None:
    """`*` is one segment, never zero or two."""
    assert matches(["*.password"], "extra.password")
    assert matches(["*.password"], "user.password.hint")
    assert not matches(["*.password"], "password")
    assert not matches(["*.password"], "extra.inner.password")


def test_star_inside_a_segment() -> None:
    """`*` within a segment matches any characters of that segment only."""
    assert matches(["req*.url"], "request.url")
    assert matches(["extra.*_token"], "extra.refresh_token")
    assert not matches(["req*.url"], "response.url")
    assert not matches(["extra.*_token"], "extra.a.refresh_token")


def test_double_star_matches_any_number_of_segments() -> None:
    """`**` is any number of segments, zero included."""
    assert matches(["a.**.b"], "a.b")
    assert matches(["a.**.b"], "a.x.b")
    assert matches(["a.**.b"], "a.x.y.b")
    assert not matches(["a.**.b"], "a.x.y.c")
    assert matches(["**.vars"], "vars")
    assert matches(["**.vars"], "exception.values.#.stacktrace.frames.#.vars.password")
    assert not matches(["**.vars"], "exception.values.#.stacktrace.frames.#.variables")
    assert matches(["a.**"], "a.x.y")


def test_trailing_double_star_matches_the_node_itself() -> None:
    """`a.**` with zero segments is `a`: it matches the node a too."""
    assert matches(["a.**"], "a")


def test_lone_double_star_matches_everything() -> None:
    """`**` alone selects the whole payload."""
    selector = Selector(["**"], [])
    assert selector.matches_everything
    assert selector.matches("")
    assert selector.matches(shape("any.thing.#.at.all"))


def test_quoted_keys_with_dots() -> None:
    """`'http.query'` is one key that contains a dot."""
    assert Selector(["data.'http.query'"], []).matches(f"data{SEP}http.query")
    assert Selector(["data.'http.query'"], []).matches(f"data{SEP}http.query{SEP}token")
    assert not Selector(["data.'http.query'"], []).matches(f"data{SEP}http{SEP}query")
    assert Selector(["spans.*.data.'db.statement'"], []).matches(f"spans{SEP}#{SEP}data{SEP}db.statement")


def test_matching_ignores_case() -> None:
    """Selectors compare without case, like key names."""
    assert matches(["Request.Headers"], "request.headers")
    assert matches(["$user"], "User.email")


def test_empty_include_list_matches_everything() -> None:
    """No selectors means everywhere."""
    selector = Selector([], [])
    assert selector.matches_everything
    assert selector.matches("")
    assert selector.matches(shape("extra.x"))


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a..b", "empty segment in selector 'a..b'"),
        ("a.", "empty segment in selector 'a.'"),
        ("a.'b", 'unclosed quote in selector "a.\'b"'),
    ],
)
def test_malformed_selectors(selector: str, message: str) -> None:
    """Malformed selectors raise SelectorError saying what is wrong."""
    with pytest.raises(SelectorError) as info:
        Selector([selector], [])
    assert str(info.value) == message


def test_unknown_shortcut() -> None:
    """An unknown `$name` lists the known shortcuts."""
    with pytest.raises(SelectorError) as info:
        expand("$nonsense.x")
    assert str(info.value) == f"unknown type shortcut '$nonsense'; known: {', '.join(sorted(SHORTCUTS))}"


def test_shortcut_with_tail() -> None:
    """A shortcut followed by more segments uses the longest shortcut and appends the rest."""
    assert expand("$frame.vars.password") == ["**.stacktrace.frames.*.vars.password"]
    assert expand("$frame.varsity") == ["**.stacktrace.frames.*.varsity"]
    assert expand("$message.formatted") == ["logentry.formatted", "message.formatted"]
    assert expand("plain.path") == ["plain.path"]


# -- exclusions -------------------------------------------------------------------------------------


def test_bang_excludes_a_subtree() -> None:
    """`!selector` in the include list removes that subtree."""
    assert matches(["extra", "!extra.safe"], "extra.note")
    assert not matches(["extra", "!extra.safe"], "extra.safe")
    assert not matches(["extra", "!extra.safe"], "extra.safe.deep.value")


def test_bang_alone_means_everything_but() -> None:
    """Only exclusions: everything except those subtrees."""
    assert matches(["!sdk"], "extra.x")
    assert matches(["!sdk"], "")
    assert not matches(["!sdk"], "sdk.name")


def test_exclude_list() -> None:
    """An `exclude` list removes subtrees from what the include list selects; shortcuts work there too."""
    assert matches([], "exception.values.#.value", ["$exception.type", "$sdk"])
    assert not matches([], "exception.values.#.type", ["$exception.type", "$sdk"])
    assert not matches([], "sdk.packages.#.name", ["$sdk"])
    assert not matches(["$frame"], "exception.values.#.stacktrace.frames.#.function", ["$frame.function"])
    assert matches(["$frame"], "exception.values.#.stacktrace.frames.#.vars.x", ["$frame.function"])


# -- may_match_within ------------------------------------------------------------------------------


def test_may_match_within_prefixes() -> None:
    """Ancestors of a selected node may contain matches; unrelated subtrees may not."""
    assert within(["user.email"], "")
    assert within(["user.email"], "user")
    assert within(["user.email"], "user.email")
    assert within(["user.email"], "user.email.x")
    assert not within(["user.email"], "use")
    assert not within(["user.email"], "user.name")
    assert not within(["user.email"], "request")


def test_may_match_within_wildcards() -> None:
    """With `*` and `**` a deeper match stays possible."""
    assert within(["request.*.token"], "request.data")
    assert not within(["request.*.token"], "request.data.other")
    assert within(["**.vars"], "request.anything.deep")
    assert within(["$frame.vars"], "exception.values.#")


def test_may_match_within_respects_exclusions() -> None:
    """An excluded subtree can never match."""
    assert not within([], "sdk", ["$sdk"])
    assert not within([], "sdk.packages.#", ["$sdk"])
    assert within([], "extra", ["$sdk"])
    assert not within(["extra", "!extra.safe"], "extra.safe")
    assert within(["extra", "!extra.safe"], "extra")


# -- shortcuts on event shapes ------------------------------------------------------------------

F = "exception.values.#.stacktrace.frames.#"

# shortcut -> (shapes it must match, near-miss shapes it must not)
EVENT_SHORTCUTS: dict[str, tuple[list[str], list[str]]] = {
    "$event": (["", "extra.x", "exception.values.#.type"], []),
    "$exception": (
        ["exception.values.#.value", "exception.values.#.stacktrace"],
        ["threads.values.#.id", "extra.exception"],
    ),
    "$exception.value": (["exception.values.#.value"], ["exception.values.#.type", "exception.values.#.module"]),
    "$exception.type": (["exception.values.#.type"], ["exception.values.#.value"]),
    "$stacktrace": (
        [f"{F}.vars.x", "threads.values.#.stacktrace.frames", "stacktrace.frames"],
        ["exception.values.#.mechanism"],
    ),
    "$frame": (
        [f"{F}.lineno", "threads.values.#.stacktrace.frames.#.vars"],
        ["exception.values.#.stacktrace.registers"],
    ),
    "$frame.vars": ([f"{F}.vars", f"{F}.vars.password"], [f"{F}.context_line", f"{F}.variables"]),
    "$frame.filename": ([f"{F}.filename"], [f"{F}.abs_path", f"{F}.function"]),
    "$frame.abs_path": ([f"{F}.abs_path"], [f"{F}.filename"]),
    "$frame.function": ([f"{F}.function", f"{F}.raw_function"], [f"{F}.module", f"{F}.filename"]),
    "$frame.module": ([f"{F}.module", f"{F}.package"], [f"{F}.function"]),
    "$frame.context": (
        [f"{F}.context_line", f"{F}.pre_context.#", f"{F}.post_context.#"],
        [f"{F}.vars.x", f"{F}.lineno"],
    ),
    "$message": (["logentry.formatted", "logentry.params.#", "message"], ["extra.message", "logger"]),
    "$request": (["request.url", "request.headers.#.1"], ["extra.request", "contexts.response"]),
    "$request.url": (["request.url"], ["request.method", "request.urls"]),
    "$request.headers": (["request.headers.#.1", "request.headers.Authorization"], ["request.cookies"]),
    "$request.cookies": (["request.cookies", "request.cookies.#.1"], ["request.headers"]),
    "$request.query_string": (["request.query_string"], ["request.url"]),
    "$request.data": (["request.data", "request.data.password"], ["request.env"]),
    "$request.env": (["request.env.REMOTE_ADDR"], ["request.data"]),
    "$user": (["user", "user.email", "user.geo.city"], ["extra.user", "user_id", "users"]),
    "$breadcrumb": (["breadcrumbs.values.#.message", "breadcrumbs.#.data.url"], ["extra.breadcrumbs.values.#"]),
    "$contexts": (["contexts.os.name"], ["extra.contexts"]),
    "$extra": (["extra.anything"], ["contexts.extra", "extras"]),
    "$tags": (["tags.release_stage", "tags.#.1"], ["extra.tags"]),
    "$sdk": (["sdk.name", "sdk.packages.#.version"], ["debug_meta.sdk_info", "sdk_info"]),
    "$debug_meta": (["debug_meta.images.#.code_file"], ["extra.debug_meta"]),
}


@pytest.mark.parametrize("shortcut", sorted(EVENT_SHORTCUTS))
def test_event_shortcut(shortcut: str) -> None:
    """The shortcut matches the shapes it names and not their near-misses."""
    positives, negatives = EVENT_SHORTCUTS[shortcut]
    for path in positives:
        assert matches([shortcut], path), f"{shortcut} should match {path}"
    for path in negatives:
        assert not matches([shortcut], path), f"{shortcut} should not match {path}"


# -- shortcuts on item roots (through the engine, whatever the root names are) ---------------------

MARK = "MARK-1234"


def _item(kind: str, payload: Any, **headers: Any) -> tuple[str, dict[str, Any], bytes]:
    return ("item", {"type": kind, **headers}, payload if isinstance(payload, bytes) else orjson.dumps(payload))


def _trace(trace: dict[str, Any]) -> tuple[str, dict[str, Any], bytes]:
    return ("trace", trace, b"")


# shortcut -> (places a MARK there must be scrubbed, places it must stay)
ITEM_SHORTCUTS: dict[str, tuple[list[Any], list[Any]]] = {
    "$log": (
        [_item("log", {"items": [{"body": MARK}]}), _item("otel_log", {"body": MARK})],
        [_item("event", {"log": MARK}), _item("span", {"data": {"x": MARK}})],
    ),
    "$session": (
        [_item("session", {"attrs": {"user_agent": MARK}}), _item("sessions", {"attrs": {"user_agent": MARK}})],
        [_item("event", {"session": MARK}), _item("event", {"sessions": [MARK]})],
    ),
    "$feedback": (
        [
            _item("user_report", {"comments": MARK}),
            _item("event", {"contexts": {"feedback": {"message": MARK}}}),
            _item("feedback", {"contexts": {"feedback": {"message": MARK}}}),
        ],
        [_item("event", {"user_report": MARK}), _item("event", {"extra": {"feedback": MARK}})],
    ),
    "$check_in": (
        [_item("check_in", {"monitor_slug": MARK})],
        [_item("event", {"check_in": MARK})],
    ),
    "$span": (
        [_item("span", {"description": MARK}), _item("transaction", {"spans": [{"description": MARK}]})],
        [_item("event", {"span": MARK}), _item("transaction", {"transaction": MARK})],
    ),
    "$security": (
        [_item("security", {"csp-report": {"document-uri": MARK}}), _item("raw_security", {"x": MARK})],
        [_item("event", {"security": MARK})],
    ),
    "$profile": (
        [_item("profile", {"transaction": {"name": MARK}}), _item("profile_chunk", {"x": MARK})],
        [_item("event", {"profile": MARK}), _item("event", {"contexts": {"profile": {"x": MARK}}})],
    ),
    "$attachment": (
        [
            _item("attachment", {"x": MARK}, content_type="application/json"),
            _item("attachment", f"line {MARK}\n".encode(), content_type="text/plain"),
        ],
        [_item("event", {"attachment": MARK})],
    ),
    "$trace": (
        [_trace({"trace_id": "fb5cd9fddf8a465a8b0d054660cd6377", "user_segment": MARK})],
        [
            _item("event", {"contexts": {"trace": {"op": MARK}}}),
            _item("event", {"envelope": {"trace": {"op": MARK}}}),
        ],
    ),
}


def _scrub_place(scrubber: Scrubber, place: tuple[str, dict[str, Any], bytes]) -> bytes:
    """Scrub one item or trace header; return what came out, serialized."""
    kind, headers, payload = place
    if kind == "trace":
        envelope = Envelope({"trace": dict(headers)}, [])
        scrub_envelope_headers(envelope, scrubber)
        return orjson.dumps(envelope.headers)
    it = Item(dict(headers), payload)
    scrub_item(it, scrubber)
    return it.payload


def test_every_shortcut_is_tested() -> None:
    """Each shortcut in SHORTCUTS has cases here."""
    assert set(EVENT_SHORTCUTS) | set(ITEM_SHORTCUTS) == set(SHORTCUTS)


@pytest.mark.parametrize("shortcut", sorted(ITEM_SHORTCUTS))
def test_item_shortcut(shortcut: str) -> None:
    """A rule selecting the shortcut applies to its item type's payload and nowhere else."""
    rules = parse_pack(
        f"rules:\n  - id: t.mark\n    pattern: 'MARK-\\d{{4}}'\n    selectors: ['{shortcut}']\n", "t.yml"
    ).rules
    positives, negatives = ITEM_SHORTCUTS[shortcut]
    for place in positives:
        out = _scrub_place(Scrubber(rules), place)
        assert MARK.encode() not in out and b"[Filtered]" in out, f"{shortcut} did not apply to {place}: {out!r}"
    for place in negatives:
        out = _scrub_place(Scrubber(rules), place)
        assert MARK.encode() in out, f"{shortcut} wrongly applied to {place}: {out!r}"
