"""native.assemble: the event inside a crash upload, from hostile as well as ordinary parts, never raises."""

from __future__ import annotations

import msgpack
import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.ingest import native


def test_msgpack_values_become_json_values() -> None:
    """Non-string keys, bytes, timestamps, NaN and huge integers come out as JSON can hold them."""
    packed = msgpack.packb(
        {1: "one", "b": b"\xffraw", "t": msgpack.Timestamp(1700000000, 0), "nan": float("nan"), "big": 2**64 - 1},
        datetime=False,
    )
    event = native.assemble([], {native.EVENT_FILE: packed})
    assert event == {"1": "one", "b": "\ufffdraw", "t": 1700000000.0, "nan": None, "big": 2**64 - 1}
    orjson.dumps(event)


def test_too_deep_or_not_a_map_is_skipped() -> None:
    """A MessagePack event nested past the bound, or a list, is skipped whole."""
    deep: object = "x"
    for _ in range(200):
        deep = [deep]
    assert native.assemble([], {native.EVENT_FILE: msgpack.packb({"a": deep})}) == {}
    assert native.assemble([], {native.EVENT_FILE: msgpack.packb([1, 2])}) == {}


def test_breadcrumbs_without_timestamps_keep_their_buffer_order() -> None:
    """Buffers with no timestamps are taken in file order; entries that aren't maps are left out."""
    one = msgpack.packb({"message": "a"}) + msgpack.packb(7)
    two = msgpack.packb({"message": "b"})
    event = native.assemble([], {native.BREADCRUMB_FILES[0]: one, native.BREADCRUMB_FILES[1]: two})
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["b"]  # cut to the longer buffer's 1


def test_form_fields_merge_deeply_and_later_values_win() -> None:
    """`sentry` objects merge key by key; a scalar replaces an object; `sentry[a][b]` nests."""
    fields = [
        ("sentry", b'{"tags": {"a": "1"}, "user": {"id": "u1"}}'),
        ("sentry___more", b'{"tags": {"b": "2"}, "user": "flat"}'),
        ("sentry[contexts][os][name]", b"Windows"),
    ]
    assert native.assemble(fields, {}) == {
        "tags": {"a": "1", "b": "2"},
        "user": "flat",
        "contexts": {"os": {"name": "Windows"}},
    }


@settings(max_examples=300, deadline=None)
@example(event=b"\x82\x00\x00\x80\x00", crumbs=b"", fields=[])  # a map as a map key: unhashable
@example(event=b"", crumbs=b"\x81\x80\x00", fields=[])
@given(
    event=st.binary(max_size=200),
    crumbs=st.binary(max_size=200),
    fields=st.lists(
        st.tuples(st.sampled_from(["sentry", "sentry__1", "sentry___x", "sentry[a]", "x"]), st.binary(max_size=50)),
        max_size=4,
    ),
)
def test_any_bytes_give_an_encodable_event(event: bytes, crumbs: bytes, fields: list[tuple[str, bytes]]) -> None:
    """Whatever the parts hold, assemble returns a dict that orjson can write."""
    result = native.assemble(fields, {native.EVENT_FILE: event, native.BREADCRUMB_FILES[0]: crumbs})
    assert isinstance(result, dict)
    orjson.dumps(result)
