"""vendor_assignment: credentials without a prefix, found by the vendor's name they are assigned to."""

from __future__ import annotations

import random
import string
import time

import pytest

from relay.scrub import detectors
from relay.scrub.detectors import assignments

FIND = detectors.DETECTORS["vendor_assignment"]
RNG = random.Random(5)
HEX32 = "".join(RNG.choices("0123456789abcdef", k=32))
B62 = "".join(RNG.choices(string.ascii_letters + string.digits, k=40))
UUID = "5ce8b554-7d56-0449-d98b-13f931926e17"


def found(text: str) -> list[str]:
    return [text[a:b] for a, b in FIND.find(text)]


@pytest.mark.parametrize(
    "text",
    [
        f"DISCORD_BOT_TOKEN={HEX32}",
        f'hubspotApiKey: "{UUID}"',
        f"{{'twitter_api_secret': '{B62}'}}",
        f"asana client secret => {HEX32};",
        f"config.mailgun_key := `{B62}`",
        f"myHubspotKey={B62}",
        f"lob_api_key ?= '{HEX32}'",
        f"new relic insert key: {B62}\\n",
    ],
)
def test_a_value_assigned_to_a_vendor_name_is_found(text: str) -> None:
    got = found(text)
    assert got and got[0] in (HEX32, B62, UUID), (text, got)


@pytest.mark.parametrize(
    "text",
    [
        "twitter: rate limited, retrying",  # words
        "discord_version=2.14.1",  # versions
        "asana_task=1204400319877",  # numbers
        "mapbox_style: https://api.mapbox.com/styles/v1/x3f9ab12",  # URLs
        "global_timeout=30s9abcdef",  # `lob` inside a word
        f"blob={HEX32}",
        "twitter_handle: aaaaaaaa1",  # low entropy
        f"commit {HEX32}",  # no vendor
    ],
)
def test_look_alikes_stay(text: str) -> None:
    assert found(text) == [], text


def test_every_match_fires_the_trigger() -> None:
    """Each vendor spelling is a keyword: what the regex finds, the family's trigger woke for."""
    fires = detectors.TRIGGERS[assignments.FAMILY]
    for vendor in (*assignments._VENDORS, *assignments._WORD_START):
        text = f"{vendor}_token={B62}"
        assert found(text) == [B62], vendor
        assert fires(text) and detectors.fired(text) & detectors.FAMILY_BITS[assignments.FAMILY], vendor


def test_entropy() -> None:
    assert assignments.entropy("aaaa") == 0
    assert assignments.entropy("abcd") == 2
    assert not assignments.strong("abcdefgh") and assignments.strong("a1b2c3d4e5")


def test_hostile_input_stays_linear() -> None:
    text = ("discord_" + "a" * 19 + " ") * 2000 + ("twitter:" + "=" * 5 + "x1" * 50 + "\x00") * 500
    start = time.perf_counter()
    found(text)
    assert time.perf_counter() - start < 1.0
