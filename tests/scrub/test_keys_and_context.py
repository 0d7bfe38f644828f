"""Object keys, percent-encoded text, key names as labels, the user's identity and template references, through
the shipped packs, on the C walk and on its pure-Python twin."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.config import Config
from relay.rules import load_pack
from relay.scrub.engine import Scrubber
from relay.scrub.registry import ScrubberRegistry

RULES = [rule for name in ("secrets", "pii") for rule in load_pack(name).rules]


def make(pure: bool, **kwargs: Any) -> Scrubber:
    """A scrubber with the shipped packs; `pure` walks and computes in Python (the twin the C parts mirror)."""
    scrubber = Scrubber(RULES, b"k" * 32, 5.0, **kwargs)
    if pure:
        scrubber._walk = scrubber._value  # type: ignore[method-assign]
        scrubber._compiled = None
    return scrubber


WALKS = pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])


@WALKS
def test_keys_holding_personal_data_are_renamed(pure: bool) -> None:
    """A key that is an e-mail address or a card number becomes its redaction, in order, with `_meta` for the key."""
    event = {"extra": {"a": 1, "alice@x.com": 2, "[email]": 3, "4111 1111 1111 1111": None, "z": {"bob@y.org": True}}}
    out = make(pure).scrub_event(event)
    assert list(out["extra"]) == ["a", "[email] (2)", "[email]", "[creditcard]", "z"]
    assert out["extra"]["[email] (2)"] == 2 and out["extra"]["z"] == {"[email]": True}
    assert out["_meta"]["extra"]["[email] (2)"][""]["key"] == {"rem": [["pii.email", "s", 0, 7]], "len": 11}
    assert "alice@x.com" not in str(out) and "bob@y.org" not in str(out)


@WALKS
def test_ordinary_keys_and_structure_are_kept(pure: bool) -> None:
    """Keys that hold nothing keep their names, whatever their values (None and booleans too)."""
    event = {"extra": {"in_app": True, "user_id": None, "2024-03-15": 1, "550e8400-e29b-41d4-a716-446655440000": 2}}
    assert make(pure).scrub_event(copy.deepcopy(event)) == event


@WALKS
def test_percent_encoded_values_are_decoded_for_the_detectors(pure: bool) -> None:
    """An encoded e-mail, phone or MAC in a query string goes whole, encoded run and all."""
    event = {"request": {"query_string": "email=anna%40gmx.de&phone=%2B36%201%20234%205678&page=2"}}
    out = make(pure).scrub_event(event)
    assert out["request"]["query_string"] == "email=[email]&phone=[phone]&page=2"


@WALKS
def test_a_key_naming_an_id_is_its_label(pure: bool) -> None:
    """Under `bsn` or an `x-tfn` header a valid number goes; one with a wrong check digit stays."""
    event = {
        "extra": {"bsn": "111222333", "user_bsn": "111222334", "customerCpf": "52998224725"},
        "request": {"headers": {"x-tfn": "123 456 782"}},
    }
    out = make(pure).scrub_event(event)
    assert out["extra"] == {"bsn": "[id]", "user_bsn": "111222334", "customerCpf": "[id]"}


@WALKS
def test_the_users_identity_goes_everywhere_as_whole_words(pure: bool) -> None:
    """user.name and user.username go where they are and wherever else they occur; "Anna" not in "Annabelle"."""
    event = {
        "user": {"id": "42", "name": "Anna Schmidt", "username": "aschmidt77"},
        "message": "Anna paid; aschmidt77 logged in; Annabelle too",
        "contexts": {"os": {"name": "Linux"}},
    }
    out = make(pure).scrub_event(event)
    assert out["user"] == {"id": "42", "name": "[name]", "username": "[user]"}
    assert out["message"] == "[name] paid; [user] logged in; Annabelle too"
    assert out["contexts"] == {"os": {"name": "Linux"}}


def test_identity_keys_can_be_turned_off() -> None:
    """With scrub.identity_keys empty, user names are left to the packs' own rules."""
    event = {"user": {"name": "Anna Schmidt"}, "message": "Schmidt paid"}
    assert make(False).scrub_event(copy.deepcopy(event))["message"] == "[name] paid"
    assert make(False, identity_keys=()).scrub_event(copy.deepcopy(event))["message"] == "Schmidt paid"


def test_phone_regions_come_from_the_config() -> None:
    """`scrub.phone_regions` decides which national formats count: a Polish number needs PL."""
    from relay.config.loader import parse_config

    text = "tel. 516 113 875"
    polish = ScrubberRegistry(parse_config("scrub: {phone_regions: [PL]}\n", "r.yml", {})).for_project(None)
    assert polish.scrub_event({"message": text})["message"] == "tel. [phone]"
    us_only = ScrubberRegistry(parse_config("scrub: {phone_regions: [US]}\n", "r.yml", {})).for_project(None)
    assert us_only.scrub_event({"message": "call 516 113 875"})["message"] == "call 516 113 875"
    ScrubberRegistry(Config())  # the default regions again, for the tests that follow


@WALKS
def test_template_references_are_not_secrets(pure: bool) -> None:
    """`${DB_PASSWORD}`, `{{ secrets.x }}`, `%API_KEY%` and `$API_KEY` stay; real values after the same keys go."""
    text = "password=${DB_PASSWORD} token: %API_KEY% secret=$API_KEY key={{ secrets.x }} pwd=hunter22"
    out = make(pure).scrub_event({"message": text})
    assert out["message"] == (
        "password=${DB_PASSWORD} token: %API_KEY% secret=$API_KEY key={{ secrets.x }} pwd=[Filtered]"
    )


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(
        st.sampled_from(["a", "alice@x.com", "[email]", "4111 1111 1111 1111", "bob@y.org", "n", "+4915112345678"]),
        min_size=1,
        max_size=6,
        unique=True,
    )
)
def test_key_renaming_agrees_between_walks_and_is_idempotent(keys: list[str]) -> None:
    """The C walk and the Python twin rename the same keys the same way, and a second pass changes nothing."""
    event = {"extra": {key: index for index, key in enumerate(keys)}}
    by_c = make(False).scrub_event(copy.deepcopy(event))
    by_python = make(True).scrub_event(copy.deepcopy(event))
    assert by_c == by_python
    again = copy.deepcopy(by_c)
    again.pop("_meta", None)
    assert make(False).scrub_event(copy.deepcopy(again)) == again
