"""The scrubbing engine: Sentry `_meta` remarks, every action, keys, strings, propagation, idempotency, fail closed."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
from typing import Any

import pytest
import regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.rules import Action, ActionType, Rule, RuleError, Selector, load_pack, parse_pack
from relay.scrub.engine import Scrubber, ScrubError

HASH_KEY = b"test-hash-key"
SHIPPED: list[Rule] = [*load_pack("secrets").rules, *load_pack("pii").rules]


def shipped(hash_key: bytes = HASH_KEY, time_limit: float = 5.0) -> Scrubber:
    """A scrubber with the shipped `secrets` and `pii` packs, as the server builds it."""
    return Scrubber(SHIPPED, hash_key, time_limit)


def custom(rules_yaml: str, hash_key: bytes = HASH_KEY, time_limit: float = 5.0) -> Scrubber:
    """A scrubber for a rule list written in the YAML rule format."""
    return Scrubber(parse_pack(f"rules:\n{rules_yaml}", "test.yml").rules, hash_key, time_limit)


def token(key: bytes, value: str) -> str:
    """The `hash` action's expected output: HMAC-SHA256 with the hash key, first 32 hex digits."""
    return f"[hash:{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]}]"


def frame_vars(**variables: Any) -> dict[str, Any]:
    """An event whose single frame holds these local variables."""
    return {"exception": {"values": [{"type": "E", "stacktrace": {"frames": [{"function": "f", "vars": variables}]}}]}}


def vars_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The `_meta` of an event built with `frame_vars`."""
    return {"exception": {"values": {"0": {"stacktrace": {"frames": {"0": {"vars": meta}}}}}}}


# -- _meta format -------------------------------------------------------------------------------


def test_meta_for_substring_replacement() -> None:
    """A replaced substring gets `[rule_id, "s", start, end]` and the original length, as Sentry writes it."""
    event = shipped().scrub_event({"message": "contact alice@example.com now"})
    assert event == {
        "message": "contact [email] now",
        "_meta": {"message": {"": {"rem": [["pii.email", "s", 8, 15]], "len": 29}}},
    }


def test_meta_positions_are_in_the_new_string() -> None:
    """With several replacements, each range points into the scrubbed string, not the original."""
    event = shipped().scrub_event({"message": "a alice@example.com b bob.smith@example.org c"})
    assert event["message"] == "a [email] b [email] c"
    assert event["_meta"] == {
        "message": {"": {"rem": [["pii.email", "s", 2, 9], ["pii.email", "s", 12, 19]], "len": 45}}
    }
    for _, _, start, end in event["_meta"]["message"][""]["rem"]:
        assert event["message"][start:end] == "[email]"


def test_meta_for_whole_value_key_rule() -> None:
    """A key rule replaces the whole value; the remark covers all of it."""
    event = shipped().scrub_event({"extra": {"password": "hunter2"}})
    assert event == {
        "extra": {"password": "[Filtered]"},
        "_meta": {"extra": {"password": {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 7}}}},
    }


def test_meta_paths_use_list_indices() -> None:
    """Remarks inside lists are keyed by the item's index as a string."""
    event = shipped().scrub_event({"extra": {"mails": ["none", "x alice@example.com"]}})
    assert event["extra"]["mails"] == ["none", "x [email]"]
    assert event["_meta"] == {"extra": {"mails": {"1": {"": {"rem": [["pii.email", "s", 2, 9]], "len": 19}}}}}


def test_existing_meta_is_merged() -> None:
    """An event that already carries `_meta` (from the SDK) keeps it; new remarks are added."""
    sdk_meta = {"extra": {"note": {"": {"rem": [["!limit", "s"]], "len": 9000}}}}
    event = shipped().scrub_event({"message": "to alice@example.com", "_meta": copy.deepcopy(sdk_meta)})
    assert event["_meta"] == {
        "extra": {"note": {"": {"rem": [["!limit", "s"]], "len": 9000}}},
        "message": {"": {"rem": [["pii.email", "s", 3, 10]], "len": 20}},
    }


# -- actions ---------------------------------------------------------------------------------


def test_remove_key_rule_gives_null_with_x_remark() -> None:
    """`remove` sets the value to null; the remark has type "x" and no range."""
    event = shipped().scrub_event({"user": {"id": "42", "ip_address": "203.0.113.9"}})
    assert event == {
        "user": {"id": "42", "ip_address": None},
        "_meta": {"user": {"ip_address": {"": {"rem": [["pii.ip_fields", "x"]], "len": 11}}}},
    }


def test_remove_detector_rule_nulls_the_whole_string() -> None:
    """A `remove` detector match removes the string it was found in."""
    scrubber = custom("  - id: t.phone\n    detector: phone\n    action: remove\n")
    event = scrubber.scrub_event({"extra": {"note": "call +44 20 7946 0958", "other": "fine"}})
    assert event == {
        "extra": {"note": None, "other": "fine"},
        "_meta": {"extra": {"note": {"": {"rem": [["t.phone", "x"]], "len": 21}}}},
    }


def test_mask_with_mask_char_and_keep_last() -> None:
    """`mask` overwrites the match with mask_char, keeping the last keep_last characters; remark type "m"."""
    scrubber = custom(
        "  - id: t.card\n    detector: credit_card\n    action: mask\n    mask_char: '#'\n    keep_last: 4\n"
    )
    event = scrubber.scrub_event({"extra": {"card": "card 4111 1111 1111 1111 ok"}})
    assert event == {
        "extra": {"card": "card ###############1111 ok"},
        "_meta": {"extra": {"card": {"": {"rem": [["t.card", "m", 5, 24]], "len": 27}}}},
    }


def test_mask_defaults_to_stars_and_masks_numbers() -> None:
    """Without mask_char the mask is `*`; a card held as an integer is masked whole into a string."""
    scrubber = custom("  - id: t.card\n    detector: credit_card\n    action: mask\n")
    event = scrubber.scrub_event({"extra": {"n": 4111111111111111, "s": "4111111111111111"}})
    assert event == {
        "extra": {"n": "*" * 16, "s": "*" * 16},
        "_meta": {
            "extra": {
                "n": {"": {"rem": [["t.card", "m", 0, 16]], "len": 16}},
                "s": {"": {"rem": [["t.card", "m", 0, 16]], "len": 16}},
            }
        },
    }


def test_hash_is_hmac_sha256_with_the_hash_key() -> None:
    """`hash` writes `[hash:<32 hex>]`, the HMAC-SHA256 of the value under the hash key; remark type "p"."""
    scrubber = custom("  - id: t.email\n    detector: email\n    action: hash\n")
    event = scrubber.scrub_event({"extra": {"to": "mail alice@example.com"}})
    expected = token(HASH_KEY, "alice@example.com")
    assert event == {
        "extra": {"to": f"mail {expected}"},
        "_meta": {"extra": {"to": {"": {"rem": [["t.email", "p", 5, 5 + len(expected)]], "len": 22}}}},
    }
    assert len(expected) == len("[hash:]") + 32


def test_hash_is_stable_and_keyed() -> None:
    """The same value hashes to the same token across events and scrubbers; another key gives another token."""
    rule = "  - id: t.email\n    detector: email\n    action: hash\n"
    first = custom(rule).scrub_event({"message": "alice@example.com"})["message"]
    again = custom(rule).scrub_event({"extra": {"x": "alice@example.com"}})["extra"]["x"]
    other_key = custom(rule, hash_key=b"another-key").scrub_event({"message": "alice@example.com"})["message"]
    other_value = custom(rule).scrub_event({"message": "bob@example.com"})["message"]
    assert first == again == token(HASH_KEY, "alice@example.com")
    assert other_key == token(b"another-key", "alice@example.com")
    assert other_key != first
    assert other_value != first


def test_hash_key_rule_hashes_whole_value() -> None:
    """A `hash` key rule hashes the whole value (numbers as their text)."""
    scrubber = custom("  - id: t.uid\n    keys: [customer_id]\n    action: hash\n")
    event = scrubber.scrub_event({"extra": {"customerId": 12345, "other": 1}})
    expected = token(HASH_KEY, "12345")
    assert event == {
        "extra": {"customerId": expected, "other": 1},
        "_meta": {"extra": {"customerId": {"": {"rem": [["t.uid", "p", 0, len(expected)]], "len": 5}}}},
    }


def test_replace_with_custom_text() -> None:
    """`replace` with `with:` uses that text."""
    scrubber = custom("  - id: t.order\n    pattern: 'ORD-\\d{6}'\n    with: '<order>'\n")
    event = scrubber.scrub_event({"message": "order ORD-123456 shipped"})
    assert event == {
        "message": "order <order> shipped",
        "_meta": {"message": {"": {"rem": [["t.order", "s", 6, 13]], "len": 24}}},
    }


def test_pattern_group_replaces_only_the_group() -> None:
    """`group: 1` replaces only that capture group of a pattern match."""
    scrubber = custom("  - id: t.pin\n    pattern: 'pin (\\d{4})'\n    group: 1\n")
    event = scrubber.scrub_event({"message": "your pin 1234 expires"})
    assert event["message"] == "your pin [Filtered] expires"
    assert event["_meta"] == {"message": {"": {"rem": [["t.pin", "s", 9, 19]], "len": 21}}}


# -- keep rules ------------------------------------------------------------------------------


def test_keep_pattern_wins_over_detectors() -> None:
    """An allowlist pattern keeps what it matches even though a detector (listed earlier) matches it too."""
    scrubber = custom(
        "  - id: t.email\n    detector: email\n"
        "  - id: t.keep_internal\n    pattern: '[\\w.+-]+@example\\.internal'\n    action: keep\n"
    )
    event = scrubber.scrub_event({"message": "ops@example.internal paged alice@example.com"})
    assert event == {
        "message": "ops@example.internal paged [email]",
        "_meta": {"message": {"": {"rem": [["t.email", "s", 27, 34]], "len": 44}}},
    }


def _keep_debug() -> Scrubber:
    keep = parse_pack("rules:\n  - id: t.keep\n    selectors: [extra.debug]\n    action: keep\n", "k.yml").rules
    return Scrubber([*keep, *SHIPPED], HASH_KEY)


def test_keep_selector_skips_a_subtree() -> None:
    """A keep rule with only a selector leaves that subtree alone, key rules and detectors included."""
    event = _keep_debug().scrub_event(
        {"extra": {"debug": {"password": "hunter2", "to": "bob@example.com"}, "to": "alice@example.com"}}
    )
    assert event == {
        "extra": {"debug": {"password": "hunter2", "to": "bob@example.com"}, "to": "[email]"},
        "_meta": {"extra": {"to": {"": {"rem": [["pii.email", "s", 0, 7]], "len": 17}}}},
    }


def test_keep_subtree_not_rewritten_by_propagation() -> None:
    """A value found elsewhere is not replaced inside a subtree a keep rule leaves alone."""
    event = _keep_debug().scrub_event({"extra": {"debug": {"to": "alice@example.com"}, "to": "alice@example.com"}})
    assert event == {
        "extra": {"debug": {"to": "alice@example.com"}, "to": "[email]"},
        "_meta": {"extra": {"to": {"": {"rem": [["pii.email", "s", 0, 7]], "len": 17}}}},
    }


def test_keep_keys_overrides_sensitive_key_rule() -> None:
    """A keep rule with `keys` stops key rules from redacting that key."""
    scrubber = Scrubber(
        [
            *parse_pack("rules:\n  - id: t.keep\n    keys: [next_page_token]\n    action: keep\n", "k.yml").rules,
            *SHIPPED,
        ],
        HASH_KEY,
    )
    event = scrubber.scrub_event({"extra": {"nextPageToken": "cGFnZTI", "token": "dG9rZW4"}})
    assert event["extra"] == {"nextPageToken": "cGFnZTI", "token": "[Filtered]"}


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["api_key", "apiKey", "API-KEY", "Api_Key", "api key", "api.key", "APIKEY", "x-api-key"]
)
def test_sensitive_key_matched_whatever_case_or_separator(key: str) -> None:
    """Key names compare without case or separators."""
    event = shipped().scrub_event({"extra": {key: "qwerty123"}})
    assert event == {
        "extra": {key: "[Filtered]"},
        "_meta": {"extra": {key: {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 9}}}},
    }


@pytest.mark.parametrize("key", ["keyboard", "author", "tokenizer", "monkey", "passenger", "sidebar", "description"])
def test_near_miss_keys_are_not_sensitive(key: str) -> None:
    """Keys that merely contain a sensitive word are left alone."""
    event = shipped().scrub_event({"extra": {key: "qwerty"}})
    assert event == {"extra": {key: "qwerty"}}


def test_key_rule_on_numbers_but_not_booleans_or_null() -> None:
    """Numbers under a sensitive key are redacted too; booleans and null carry nothing and stay."""
    event = shipped().scrub_event({"extra": {"pin_password": 1234, "password": True, "secret": None}})
    assert event == {
        "extra": {"pin_password": "[Filtered]", "password": True, "secret": None},
        "_meta": {"extra": {"pin_password": {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 4}}}},
    }


def test_pair_list_headers() -> None:
    """Headers as `[[name, value], ...]` are matched by the header name; the value is redacted in place."""
    event = shipped().scrub_event(
        {
            "request": {
                "headers": [
                    ["Authorization", "Bearer abcdefghijklmnop"],
                    ["Accept", "*/*"],
                    ["X-Api-Key", "k-123456"],
                ]
            }
        }
    )
    assert event == {
        "request": {"headers": [["Authorization", "[Filtered]"], ["Accept", "*/*"], ["X-Api-Key", "[Filtered]"]]},
        "_meta": {
            "request": {
                "headers": {
                    "0": {"1": {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 23}}},
                    "2": {"1": {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 8}}},
                }
            }
        },
    }


def test_query_string_scrubbed_per_parameter() -> None:
    """A query string keeps its harmless parameters; sensitive ones are replaced one by one."""
    event = shipped().scrub_event({"request": {"query_string": "token=abc123&page=2&email=bob@example.com"}})
    assert event == {
        "request": {"query_string": "token=[Filtered]&page=2&email=[email]"},
        "_meta": {
            "request": {
                "query_string": {
                    "": {"rem": [["secrets.sensitive_keys", "s", 6, 16], ["pii.email", "s", 30, 37]], "len": 41}
                }
            }
        },
    }


def test_cookie_string_scrubbed_per_parameter() -> None:
    """A cookie string has each sensitive cookie replaced, the others kept."""
    scrubber = custom("  - id: t.session\n    keys: [sessionid, csrftoken]\n    selectors: [$request]\n")
    event = scrubber.scrub_event({"request": {"cookies": "sessionid=abc123; theme=dark; csrftoken=xyz789"}})
    assert event == {
        "request": {"cookies": "sessionid=[Filtered]; theme=dark; csrftoken=[Filtered]"},
        "_meta": {
            "request": {"cookies": {"": {"rem": [["t.session", "s", 10, 20], ["t.session", "s", 44, 54]], "len": 46}}}
        },
    }


def test_shipped_packs_filter_cookies_whole() -> None:
    """The shipped `secrets` pack names `cookies` itself as sensitive: the whole cookie string goes."""
    event = shipped().scrub_event({"request": {"cookies": "sessionid=abc123; theme=dark"}})
    assert event["request"] == {"cookies": "[Filtered]"}


# -- strings -----------------------------------------------------------------------------------


def test_repr_quoted_values() -> None:
    """Frame locals as the Python SDK sends them (repr, quoted) are scrubbed inside the quotes."""
    event = shipped().scrub_event(frame_vars(to="'alice@example.com'", password="'hunter2'"))
    assert event["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"] == {
        "to": "'[email]'",
        "password": "[Filtered]",
    }
    assert event["_meta"] == vars_meta(
        {
            "to": {"": {"rem": [["pii.email", "s", 1, 8]], "len": 19}},
            "password": {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 9}},
        }
    )


def test_found_value_replaced_elsewhere() -> None:
    """A password found under its key (repr-quoted) is replaced wherever else it occurs in the event."""
    event = frame_vars(password="'Hunter2-pw'")
    event["extra"] = {"note": "login with Hunter2-pw failed"}
    out = shipped().scrub_event(event)
    assert out["extra"] == {"note": "login with [Filtered] failed"}
    assert out["_meta"]["extra"] == {"note": {"": {"rem": [["secrets.sensitive_keys", "s", 11, 21]], "len": 28}}}


def test_found_value_replaced_in_log_params() -> None:
    """A secret found in the formatted message is replaced in `logentry.params` too."""
    out = shipped().scrub_event(
        {
            "logentry": {
                "message": "login password=%s",
                "params": ["Hunter2-pw"],
                "formatted": "login password=Hunter2-pw",
            }
        }
    )
    assert out["logentry"]["params"] == ["[Filtered]"]
    assert out["logentry"]["formatted"] == "login password=[Filtered]"
    assert out["_meta"]["logentry"]["params"] == {
        "0": {"": {"rem": [["secrets.sensitive_keys", "s", 0, 10]], "len": 10}}
    }
    assert out["_meta"]["logentry"]["formatted"] == {"": {"rem": [["secrets.sensitive_keys", "s", 15, 25]], "len": 25}}


@pytest.mark.parametrize("template", ["login password=%s", "token=%s&page=%d", "password: %s", "api_key=%(key)s"])
def test_printf_templates_are_not_rewritten(template: str) -> None:
    """A message template holds placeholders, not secrets: it is left exactly as written, with no remark."""
    out = shipped().scrub_event({"logentry": {"message": template, "params": ["x"]}})
    assert out == {"logentry": {"message": template, "params": ["x"]}}


def test_short_or_plain_words_do_not_propagate() -> None:
    """A short or all-lowercase found value is not hunted elsewhere (it would hit ordinary text)."""
    out = shipped().scrub_event({"extra": {"password": "secret", "note": "the secret garden", "tag": "ab1"}})
    assert out["extra"] == {"password": "[Filtered]", "note": "the secret garden", "tag": "ab1"}


# -- structure -----------------------------------------------------------------------------------

STRUCTURED_EVENT: dict[str, Any] = {
    "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
    "timestamp": "2024-03-15T10:22:33.123456Z",
    "start_timestamp": 1710498153.5,
    "release": "shop@1.2.3+7d4c1f0a9b8e2d3c4f5a6b7c8d9e0f1a2b3c4d5e",
    "environment": "production",
    "platform": "python",
    "level": "error",
    "logger": "shop.checkout",
    "server_name": "web-1",
    "dist": "42",
    "sdk": {
        "name": "sentry.python",
        "version": "2.75.0",
        "packages": [{"name": "pypi:sentry-sdk", "version": "2.75.0"}],
    },
    "exception": {
        "values": [
            {
                "type": "ValueError",
                "module": "shop.checkout",
                "value": "payment declined",
                "mechanism": {"type": "generic", "handled": True},
                "stacktrace": {
                    "frames": [
                        {
                            "filename": "/home/alice/app/views.py",
                            "abs_path": "/home/alice/app/views.py",
                            "function": "checkout",
                            "module": "app.views",
                            "lineno": 128,
                            "colno": 4,
                            "in_app": True,
                            "context_line": "    raise ValueError('payment declined')",
                        }
                    ]
                },
            }
        ]
    },
    "contexts": {
        "trace": {"trace_id": "fb5cd9fddf8a465a8b0d054660cd6377", "span_id": "9af0571ca31e416a", "op": "http.server"},
        "os": {"name": "Linux", "version": "6.1.0"},
        "runtime": {"name": "CPython", "version": "3.11.7"},
    },
    "tags": {
        "request_id": "550e8400-e29b-41d4-a716-446655440000",
        "commit": "7d4c1f0a9b8e2d3c4f5a6b7c8d9e0f1a2b3c4d5e",
        "build": "20240315.3",
    },
    "extra": {
        "order_uuid": "123e4567-e89b-12d3-a456-426614174000",
        "sha": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
        "started": "2024-03-15 10:22:33",
        "epoch": 1710498153,
        "epoch_ms": 1710498153123,
        "version": "v10.2.0.1",
        "ratio": 0.25,
    },
    "modules": {"django": "4.2.11"},
}


def test_structure_is_kept() -> None:
    """Ids, types, functions, line numbers, release, sdk, UUIDs, SHAs and timestamps survive; home user names go."""
    out = shipped().scrub_event(copy.deepcopy(STRUCTURED_EVENT))
    expected = copy.deepcopy(STRUCTURED_EVENT)
    frame = expected["exception"]["values"][0]["stacktrace"]["frames"][0]
    frame["filename"] = frame["abs_path"] = "/home/[user]/app/views.py"
    remark = {"": {"rem": [["pii.user_path", "s", 6, 12]], "len": 24}}
    expected["_meta"] = {
        "exception": {"values": {"0": {"stacktrace": {"frames": {"0": {"filename": remark, "abs_path": remark}}}}}}
    }
    assert out == expected


# -- idempotency (property) ------------------------------------------------------------------

# Planted value -> the part of it that must not survive scrubbing.
PLANTED_PARTS: dict[str, str] = {
    "alice@example.com": "alice@example.com",
    "bob.smith+tag@mail.example.org": "bob.smith+tag@mail.example.org",
    "4111 1111 1111 1111": "4111 1111 1111 1111",
    "4111111111111111": "4111111111111111",
    "5500-0000-0000-0004": "5500-0000-0000-0004",
    "+44 20 7946 0958": "7946 0958",
    "+1 (415) 555-0100": "555-0100",
    "AKIAIOSFODNN7EXAMPLE": "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2c3D4e5" * 4: "a1B2c3D4e5" * 4,
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl": "eyJhbGciOiJIUzI1NiJ9",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc": "4eC39HqLyjWDarjtT1zdp7dc",
    "password=Hunter2-pw": "Hunter2-pw",
    "token=tok_abcdef123456": "tok_abcdef123456",
    "203.0.113.9": "203.0.113.9",
    "/home/alice/app.py": "alice",
    "postgres://app:s3cr3t-pw@db.internal/prod": "s3cr3t-pw",
    "GB82 WEST 1234 5698 7654 32": "GB82 WEST 1234 5698 7654 32",
}
PLANTED = list(PLANTED_PARTS)
FILLER = ["ok", "user", "failed", "order 42", "v2.31.0", "2024-03-15T10:22:33Z", "550e8400-e29b-41d4-a716-446655440000"]
KEYS = ["message", "data", "note", "url", "password", "apiKey", "email", "ip_address", "headers", "vars", "0", "value"]

planted_text = st.lists(st.sampled_from(PLANTED + FILLER), min_size=1, max_size=4).flatmap(
    lambda parts: st.sampled_from([" ", ", ", "&", "'", " = ", "\n"]).map(lambda sep: sep.join(parts))
)
leaves = planted_text | st.sampled_from(PLANTED) | st.integers(min_value=0, max_value=2**53) | st.none() | st.booleans()
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text("abcdefxyz_", min_size=1, max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)
events = st.dictionaries(
    st.sampled_from(["extra", "contexts", "request", "breadcrumbs", "user", "message"]), trees, min_size=1
)

MIXED_ACTIONS = """
  - id: t.card
    detector: credit_card
    action: mask
    keep_last: 4
  - id: t.email
    detector: email
    action: hash
  - id: t.phone
    detector: phone
    action: remove
"""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
@example(event={"extra": "+1 (415) 555-0100 4111111111111111"})
@example(event={"extra": "4111111111111111 GB82 WEST 1234 5698 7654 32 4111 1111 1111 1111"})
def test_scrubbing_is_idempotent_with_shipped_packs(event: dict[str, Any]) -> None:
    """Scrubbing a scrubbed event changes nothing: same values, and `_meta` does not grow."""
    once = shipped().scrub_event(copy.deepcopy(event))
    twice = shipped().scrub_event(copy.deepcopy(once))
    assert twice == once


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
@example(event={"extra": "4111 1111 1111 1111", "contexts": "+44 20 7946 0958 4111 1111 1111 1111"})
def test_scrubbing_is_idempotent_with_mask_hash_and_remove(event: dict[str, Any]) -> None:
    """Masks and hash tokens are not scrubbed again on a second pass."""
    rules = [*parse_pack(f"rules:\n{MIXED_ACTIONS}", "mixed.yml").rules, *SHIPPED]
    once = Scrubber(rules, HASH_KEY).scrub_event(copy.deepcopy(event))
    twice = Scrubber(rules, HASH_KEY).scrub_event(copy.deepcopy(once))
    assert twice == once


PII_FIRST: list[Rule] = [*load_pack("pii").rules, *load_pack("secrets").rules]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
@example(event={"message": "GET /cb?token=alice@example.com&x=1"})
def test_scrubbing_is_idempotent_with_pii_before_secrets(event: dict[str, Any]) -> None:
    """With `rules: [pii, secrets]` too, a second pass changes nothing."""
    once = Scrubber(PII_FIRST, HASH_KEY).scrub_event(copy.deepcopy(event))
    twice = Scrubber(PII_FIRST, HASH_KEY).scrub_event(copy.deepcopy(once))
    assert twice == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login password: alice@example.com", "login password: [email]"),
        ("GET /cb?token=alice@example.com&x=1", "GET /cb?token=[email]&x=1"),
        ("auth: 4111 1111 1111 1111", "auth: [creditcard]"),
        ("secret=+44 20 7946 0958", "secret=[phone]"),
    ],
)
def test_placeholders_after_secret_words_are_not_rescrubbed(text: str, expected: str) -> None:
    """A placeholder after `token=`/`password:` is left alone on a second pass, not mangled into `[Filtered]]`."""
    once = Scrubber(PII_FIRST, HASH_KEY).scrub_event({"message": text})
    assert once["message"] == expected
    twice = Scrubber(PII_FIRST, HASH_KEY).scrub_event(copy.deepcopy(once))
    assert twice == once


@pytest.mark.parametrize(
    "text", ["alice@example.com+44 20 7946 0958", "+1 (415) 555-0100203.0.113.9", "203.0.113.9+44 20 7946 0958"]
)
def test_idempotent_when_values_touch(text: str) -> None:
    """Values written without a separator between them are scrubbed the same way on a second pass."""
    once = shipped().scrub_event({"message": text})
    twice = shipped().scrub_event(copy.deepcopy(once))
    assert twice == once


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.sampled_from(PLANTED), min_size=1, max_size=5))
def test_planted_values_separated_by_spaces_never_survive(values: list[str]) -> None:
    """Planted values in free text, in frame vars (repr-quoted) and in lists are all gone after scrubbing."""
    text = " ".join(values)
    event = {"message": f"failed for {text} today", "extra": {"items": list(values)}, **frame_vars(local=repr(text))}
    out = repr(shipped().scrub_event(event))
    for value in values:
        assert PLANTED_PARTS[value] not in out, f"{PLANTED_PARTS[value]!r} survived in {out}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qty 2 4111 1111 1111 1111", "qty 2 [creditcard]"),
        ("call +1 (415) 555-0100 4111111111111111", "call [phone] [creditcard]"),
        ("call +44 20 7946 0958 4111 1111 1111 1111", "call [phone] [creditcard]"),
        ("x 4111111111111111 GB82 WEST 1234 5698 7654 32 4111 1111 1111 1111", "x [creditcard] [iban] [creditcard]"),
    ],
)
def test_value_next_to_another_number_is_found(text: str, expected: str) -> None:
    """A card or phone right after another number is found in one pass, not hidden by a rejected look-alike."""
    assert shipped().scrub_event({"message": text})["message"] == expected


# -- fail closed -----------------------------------------------------------------------------


def test_loader_rejects_backtracking_pattern_on_plain_text() -> None:
    """A user pattern that backtracks catastrophically on a short plain string is refused at load time."""
    with pytest.raises(RuleError) as info:
        parse_pack("rules:\n  - id: t.slow\n    pattern: '(x|xx)+y'\n", "slow.yml")
    [problem] = info.value.problems
    assert problem.startswith("slow.yml:3:14: rule t.slow: pattern '(x|xx)+y' backtracks catastrophically")


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"(a+)+$"])
def test_loader_rejects_textbook_redos_patterns(pattern: str) -> None:
    """The textbook catastrophic patterns are refused at load time, not only ones that choke on `xxx...`."""
    with pytest.raises(RuleError) as info:
        parse_pack(f"rules:\n  - id: t.slow\n    pattern: '{pattern}'\n", "slow.yml")
    assert "backtracks catastrophically" in info.value.problems[0]


def _slow_rule() -> Rule:
    """A rule with a catastrophically backtracking pattern, built directly (bypassing the loader's check)."""
    return Rule(
        id="t.slow",
        description="",
        action=Action(ActionType.REPLACE),
        selector=Selector([], []),
        pattern=regex.compile(r"(a|aa)+$", regex.VERSION1),
    )


def test_pattern_timeout_raises_scrub_error() -> None:
    """A pattern that runs past the time limit fails the scrub (the item is dropped, never forwarded)."""
    scrubber = Scrubber([_slow_rule()], HASH_KEY, time_limit=0.05)
    with pytest.raises(ScrubError, match=r"^rule t\.slow timed out"):
        scrubber.scrub_event({"message": "a" * 5000 + "!"})


def test_time_limit_on_huge_payload_raises_scrub_error() -> None:
    """A payload too big to scrub within the time limit fails with ScrubError."""
    scrubber = shipped(time_limit=1e-6)
    payload = {"extra": {f"k{i}": {"note": f"user {i} alice{i}@example.com"} for i in range(5000)}}
    with pytest.raises(ScrubError, match=r"^scrubbing took longer than 1e-06s$"):
        scrubber.scrub_event(payload)


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "alice@example.com"}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_nesting_up_to_128_levels_is_scrubbed() -> None:
    """128 nested containers are still scrubbed."""
    out = shipped().scrub_event(_nested(128))
    node = out
    for _ in range(127):
        node = node["a"]
    assert node == {"leaf": "[email]"}


def test_nesting_deeper_than_128_levels_fails_closed() -> None:
    """Nesting deeper than 128 levels raises ScrubError."""
    with pytest.raises(ScrubError, match=r"^payload nested deeper than 128 levels$"):
        shipped().scrub_event(_nested(129))


def test_scrubber_usable_after_a_failure() -> None:
    """After a ScrubError, the same scrubber scrubs the next payload normally."""
    scrubber = shipped()
    with pytest.raises(ScrubError):
        scrubber.scrub_event(_nested(200))
    assert scrubber.scrub_event({"message": "alice@example.com"})["message"] == "[email]"


# -- fast paths must not change what is found ------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    [
        *"abcdeiknoprstwxyzAKIS0123456789 =:&?;\"'-_./@",
        "password",
        "token",
        "Bearer ",
        "api_key",
        "sid",
        "aws_secret",
        "AKIA",
        "ghp_",
        "sk-",
        "eyJ",
        "xoxb-",
    ]
)


@given(st.lists(_ALPHABET, max_size=40).map("".join))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@example("token=abcdefgh password: hunter22 Bearer abcdefghijkl")
@example("x-amz-signature=deadbeefcafe&key=abcdef123")
@example("AKIAIOSFODNN7EXAMPLE ghp_" + "a" * 36)
def test_anchored_scan_finds_what_a_full_scan_finds(text: str) -> None:
    scrubber = shipped()
    for family in {f for plan in [scrubber._root_plan("")] for f in scrubber._child(plan, "message").families}:
        if family.starts is None:
            continue
        full = scrubber._detector_spans(text, dataclasses.replace(family, starts=None))
        anchored = scrubber._detector_spans(text, family)
        assert anchored == full, family.rules[0].detector


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T12:50:06.261528Z",
        "2026-11-22 12:50:06+01:00",
        "2026-11-22",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "123456",
        "-12.5",
    ],
)
def test_timestamps_uuids_and_short_numbers_are_left_alone(text: str) -> None:
    event = {"message": text, "extra": {"when": text}}
    assert shipped().scrub_event(event) == {"message": text, "extra": {"when": text}}


def test_a_user_pattern_still_applies_to_timestamps() -> None:
    scrubber = custom(
        "  - id: no-dates\n    pattern: '\\d{4}-\\d\\d-\\d\\d'\n    action: replace\n    with: '[date]'\n"
    )
    assert scrubber.scrub_event({"message": "2026-11-22"})["message"] == "[date]"


@pytest.mark.parametrize(
    ("number", "label"),
    [("353918050000005", "[imei]"), ("490154203237518", "[imei]"), ("378282246310005", "[creditcard]")],
)
def test_fifteen_digit_numbers_are_labelled_by_issuer(number: str, label: str) -> None:
    """Only Amex and Maestro cards have 15 digits; other 15-digit Luhn numbers are IMEIs."""
    assert shipped().scrub_event({"message": f"device {number}"})["message"] == f"device {label}"
