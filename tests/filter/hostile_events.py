"""Hypothesis strategies for hostile event payloads, shared by the filter and sampling tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import strategies as st


class _HugeInt(int):
    """An int past sys.get_int_max_str_digits(): str() of it raises ValueError, float() OverflowError.
    Only repr() is named, so that Hypothesis can print an example holding one."""

    __str__ = int.__repr__

    def __repr__(self) -> str:
        return "HUGE_INT"


class _DeepList(list[Any]):
    """A list nested deeper than str() can go (orjson parses 1024 levels); repr() names it instead."""

    __str__ = list.__repr__

    def __repr__(self) -> str:
        return f"nested({DEEP})"


class _DeepDict(dict[str, Any]):
    """A mapping nested deeper than str() can go; repr() names it instead."""

    __str__ = dict.__repr__

    def __repr__(self) -> str:
        return f"nested_dict({DEEP})"


HUGE_INT = _HugeInt(10**5000)
DEEP = 1010

BAD_URLS = (
    "http://[::1/x",
    "http://[zz]/",
    "http://[::1]:99999/",
    "http://\uff03@x/",
    "http://a\u2100b/",
    "http://user:pw@[/",
    "http://[v1.fe]/",
    "://",
    "http://",
    "\x00://\x00",
    "http://" + "a" * 5000,
    "http://localhost:abc/",
)
KEYS = (
    "request", "url", "headers", "Host", "host", "Origin", "referer", "User-Agent", "tags", "exception",
    "values", "type", "value", "stacktrace", "frames", "abs_path", "filename", "module", "function", "in_app",
    "package", "threads", "user", "ip_address", "logentry", "formatted", "message", "release", "environment",
    "transaction", "level", "logger", "platform", "sdk", "name", "contexts", "trace", "trace_id", "sample_rand",
    "fingerprint", "event_id",
)  # fmt: skip


def nested(depth: int) -> list[Any]:
    """A list nested `depth` levels deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return _DeepList([value])


def nested_dict(depth: int) -> dict[str, Any]:
    """A mapping nested `depth` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return _DeepDict(a=value)


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(HUGE_INT),
    st.just(_HugeInt(-(10**5000))),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(BAD_URLS),
    st.sampled_from(KEYS),
    st.just(nested(DEEP)),
    st.just(nested_dict(DEEP)),
)
junk = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children).map(list),  # a pair, as headers and tags may be sent
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=5),
    ),
    max_leaves=20,
)
pairs = st.lists(st.one_of(st.tuples(st.one_of(st.sampled_from(KEYS), junk), junk).map(list), junk), max_size=4)
mapping_or_pairs = st.one_of(st.dictionaries(st.sampled_from(KEYS), junk, max_size=4), pairs, junk)
frame = st.one_of(st.fixed_dictionaries({}, optional={k: junk for k in KEYS[14:22]}), junk)
stacktrace = st.one_of(st.fixed_dictionaries({}, optional={"frames": st.one_of(st.lists(frame, max_size=3), junk)}))
exception = st.one_of(st.fixed_dictionaries({}, optional={"type": junk, "value": junk, "stacktrace": stacktrace}), junk)
exceptions = st.one_of(
    st.fixed_dictionaries({}, optional={"values": st.one_of(st.lists(exception, max_size=3), junk)}),
    st.lists(exception, max_size=3),
    junk,
)
# Events with the shape filters and rules look for, and hostile values at every place they read.
shaped_events = st.fixed_dictionaries(
    {},
    optional={
        "request": st.one_of(
            st.fixed_dictionaries(
                {}, optional={"url": st.one_of(st.sampled_from(BAD_URLS), junk), "headers": mapping_or_pairs}
            ),
            junk,
        ),
        "tags": mapping_or_pairs,
        "exception": exceptions,
        "threads": st.one_of(st.fixed_dictionaries({}, optional={"values": st.lists(junk, max_size=3)}), junk),
        "stacktrace": stacktrace,
        "user": st.one_of(st.fixed_dictionaries({}, optional={"ip_address": junk}), junk),
        "logentry": st.one_of(st.fixed_dictionaries({}, optional={"formatted": junk, "message": junk}), junk),
        "message": junk,
        "contexts": st.one_of(st.fixed_dictionaries({}, optional={"trace": junk}), junk),
        "sdk": st.one_of(st.fixed_dictionaries({}, optional={"name": junk}), junk),
        **{key: junk for key in ("release", "environment", "transaction", "level", "logger", "platform")},
        "fingerprint": junk,
        "event_id": junk,
    },
)
events = st.one_of(shaped_events, st.dictionaries(st.sampled_from(KEYS), junk, max_size=8))


@contextmanager
def rule_failures(*loggers: str) -> Iterator[list[logging.LogRecord]]:
    """Collect the "rule failed" records the named loggers emit (at any level) while the block runs."""
    found: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("rule failed"):
                found.append(record)

    handler = Collect(logging.DEBUG)
    targets = [logging.getLogger(name) for name in loggers]
    levels = [target.level for target in targets]
    for target in targets:
        target.addHandler(handler)
        target.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        for target, level in zip(targets, levels, strict=True):
            target.removeHandler(handler)
            target.setLevel(level)
