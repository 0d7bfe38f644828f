"""`relay rules explain`: before and after, each redaction's path, rule, action and span; never a removed value."""

from __future__ import annotations

import copy
import io
import re
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.cli import main
from relay.config import Config, load_config
from relay.rules.explain import explain_event
from relay.rules.loader import parse_pack
from relay.scrub.engine import Scrubber
from relay.scrub.registry import ScrubberRegistry

EMAIL = "alice.smith@example.com"
PASSWORD = "hunter2-Secret!"
CARD = "4111 1111 1111 1111"
ORDER = "ORD-123456"
IP = "203.0.113.9"
SECRETS = (EMAIL, PASSWORD, CARD, ORDER, IP)
FRAME = "exception.values.0.stacktrace.frames.3"

ORDERS_PACK = """\
pack: orders
rules:
  - id: orders.number
    description: Order numbers like ORD-123456.
    pattern: 'ORD-\\d{6}'
    with: '[order]'
"""

ACTIONS_PACK = """\
pack: actions
rules:
  - id: t.remove_token
    keys: [token]
    action: remove
  - id: t.mask_card
    detector: credit_card
    action: mask
    keep_last: 4
  - id: t.hash_email
    detector: email
    action: hash
"""

CONFIG = """\
upstream: {url: "http://127.0.0.1:9"}
rules: [secrets, pii]
scrub: {hash_key: test-key}
projects:
  - id: 42
    keys: ["0123456789abcdef0123456789abcdef"]
    rules: [secrets, pii, ./orders.yml]
  - id: 43
    keys: ["abcdefabcdefabcdefabcdefabcdefab"]
"""

EVENT: dict[str, Any] = {
    "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
    "level": "error",
    "message": f"payment failed for card {CARD} on order {ORDER}",
    "exception": {
        "values": [
            {
                "type": "SMTPError",
                "value": "could not send the receipt",
                "stacktrace": {
                    "frames": [
                        {"function": "main", "filename": "app.py", "lineno": 1},
                        {"function": "checkout", "filename": "shop/views.py", "lineno": 88},
                        {"function": "receipt", "filename": "shop/mail.py", "lineno": 10},
                        {
                            "function": "send",
                            "filename": "shop/mail.py",
                            "lineno": 12,
                            "vars": {"to": f"'{EMAIL}'", "password": PASSWORD, "retries": 3},
                        },
                    ]
                },
            }
        ]
    },
    "user": {"id": "42", "ip_address": IP},
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with relay.yml (projects 42 and 43), a rule file and event.json."""
    (tmp_path / "relay.yml").write_text(CONFIG)
    (tmp_path / "orders.yml").write_text(ORDERS_PACK)
    (tmp_path / "actions.yml").write_text(ACTIONS_PACK)
    (tmp_path / "event.json").write_bytes(orjson.dumps(EVENT))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `relay rules explain ARGS` in-process; (exit code, stdout, stderr)."""
    code = main(["rules", "explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


def explain_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """Run explain with `--format json` and parse what it printed."""
    code, out, err = explain(capsys, *args, "--format", "json")
    assert code == 0, err
    result: dict[str, Any] = orjson.loads(out)
    return result


def triples(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(path, rule, action) of every redaction."""
    return {(r["path"], r["rule"], r["action"]) for r in result["redactions"]}


PROJECT_42 = {
    ("message", "pii.credit_card", "replaced"),
    ("message", "orders.number", "replaced"),
    (f"{FRAME}.vars.to", "pii.email", "replaced"),
    (f"{FRAME}.vars.password", "secrets.sensitive_keys", "replaced"),
    ("user.ip_address", "pii.ip_fields", "removed"),
}


def test_text_lists_each_redaction_with_path_rule_action_and_span(workdir: Path, capsys: Any) -> None:
    """The text report has one line per redaction: path, rule id, action and the span in the original."""
    code, out, err = explain(capsys, "--project", "42", "event.json")
    assert code == 0, err
    assert out.startswith("project 42; rules: secrets, pii, ./orders.yml\n")
    assert "5 redactions:" in out
    table = out.split("5 redactions:\n", 1)[1].splitlines()
    assert table[0].split() == ["PATH", "RULE", "ACTION", "SPAN", "(original)"]
    rows = {tuple(line.split(None, 3)) for line in table[1:]}
    assert rows == {
        ("message", "pii.credit_card", "replaced", "24-43 of 63 chars"),
        ("message", "orders.number", "replaced", "53-63 of 63 chars"),
        (f"{FRAME}.vars.to", "pii.email", "replaced", "1-24 of 25 chars"),
        (f"{FRAME}.vars.password", "secrets.sensitive_keys", "replaced", "whole value (15 chars)"),
        ("user.ip_address", "pii.ip_fields", "removed", "whole value (11 chars)"),
    }
    assert '"message": "payment failed for card [creditcard] on order [order]"' in out  # the after view


def test_text_output_never_contains_a_removed_value(workdir: Path, capsys: Any) -> None:
    """Piped (not a TTY), the before view masks each redacted span and labels it with its rule."""
    code, out, _ = explain(capsys, "--project", "42", "event.json")
    assert code == 0
    for secret in SECRETS:
        assert secret not in out
    assert "payment failed for card «redacted 19 chars by pii.credit_card» on order" in out
    assert "\"'«redacted 23 chars by pii.email»'\"" in out
    assert "«redacted 15 chars by secrets.sensitive_keys»" in out
    assert '"ip_address": "«redacted 11 chars by pii.ip_fields»"' in out
    assert '"retries": 3' in out  # what no rule touched is shown as it was


def test_json_format_for_tooling(workdir: Path, capsys: Any) -> None:
    """`--format json` has project, rules, a masked before, the server's after and the redactions."""
    code, out, _ = explain(capsys, "--project", "42", "event.json", "--format", "json")
    assert code == 0
    for secret in SECRETS:
        assert secret not in out
    result = orjson.loads(out)
    assert set(result) == {"project", "rules", "before", "after", "redactions"}
    assert result["project"] == 42
    assert result["rules"] == ["secrets", "pii", "./orders.yml"]
    assert triples(result) == PROJECT_42
    assert set(result["redactions"][0]) == {
        "path", "rule", "action", "start", "end", "original_length", "original_start", "original_end",
    }  # fmt: skip
    assert result["before"]["message"] == (
        "payment failed for card «redacted 19 chars by pii.credit_card» on order «redacted 10 chars by orders.number»"
    )
    assert result["before"]["exception"]["values"][0]["stacktrace"]["frames"][3]["vars"]["retries"] == 3


def test_after_is_exactly_what_the_server_forwards(workdir: Path, capsys: Any) -> None:
    """`after` is the project's server scrubber's output, `_meta` included."""
    result = explain_json(capsys, "--project", "42", "event.json")
    config = load_config(workdir / "relay.yml")
    server = ScrubberRegistry(config).for_project(config.project(42)).scrub_event(copy.deepcopy(EVENT))
    assert result["after"] == server


def test_spans_in_the_scrubbed_and_the_original_value(workdir: Path, capsys: Any) -> None:
    """`start`/`end` index the scrubbed value (as in `_meta`); `original_start`/`original_end` the original."""
    result = explain_json(capsys, "--project", "42", "event.json")
    after = result["after"]
    found = {(r["path"], r["rule"]): r for r in result["redactions"]}
    card = found["message", "pii.credit_card"]
    assert after["message"][card["start"] : card["end"]] == "[creditcard]"
    assert EVENT["message"][card["original_start"] : card["original_end"]] == CARD
    assert card["original_length"] == len(EVENT["message"])
    email = found[f"{FRAME}.vars.to", "pii.email"]
    assert f"'{EMAIL}'"[email["original_start"] : email["original_end"]] == EMAIL
    removed = found["user.ip_address", "pii.ip_fields"]
    assert (removed["start"], removed["end"], removed["original_start"], removed["original_end"]) == (None, None, 0, 11)
    assert after["_meta"]["message"][""]["rem"] == [
        ["pii.credit_card", "s", card["start"], card["end"]],
        ["orders.number", "s", found["message", "orders.number"]["start"], found["message", "orders.number"]["end"]],
    ]


def test_each_project_gets_its_own_rules(workdir: Path, capsys: Any) -> None:
    """Project 43 has no order rule; no project means the top-level rules."""
    for args in (["--project", "43"], []):
        result = explain_json(capsys, *args, "event.json")
        assert triples(result) == PROJECT_42 - {("message", "orders.number", "replaced")}
        assert result["rules"] == ["secrets", "pii"]
        assert ORDER in result["after"]["message"]
    assert explain_json(capsys, "event.json")["project"] is None


def test_rules_option_replaces_the_configured_packs(workdir: Path, capsys: Any) -> None:
    """`--rules` names packs or files (repeatable, or comma-separated) used instead of the config's."""
    result = explain_json(capsys, "--project", "42", "--rules", "./orders.yml", "event.json")
    assert result["rules"] == ["./orders.yml"]
    assert triples(result) == {("message", "orders.number", "replaced")}
    both = explain_json(capsys, "--rules", "secrets", "--rules", "pii,./orders.yml", "event.json")
    assert both["rules"] == ["secrets", "pii", "./orders.yml"]
    assert triples(both) == PROJECT_42


def test_actions_removed_masked_hashed(workdir: Path, capsys: Any) -> None:
    """Remark types map to actions; a value removed from inside a string has an empty scrubbed span."""
    event: dict[str, Any] = {
        "message": f"card {CARD} for {EMAIL}",
        "request": {"url": "https://shop.example.com/a?token=abc123def456&page=2"},
        "extra": {"token": "zzz-secret-value"},
    }
    (workdir / "actions.json").write_bytes(orjson.dumps(event))
    code, out, _ = explain(capsys, "--rules", "./actions.yml", "actions.json", "--format", "json")
    assert code == 0
    for secret in (CARD, EMAIL, "abc123def456", "zzz-secret-value"):
        assert secret not in out
    result = orjson.loads(out)
    found = {(r["path"], r["rule"]): r for r in result["redactions"]}
    assert triples(result) == {
        ("message", "t.mask_card", "masked"),
        ("message", "t.hash_email", "hashed"),
        ("request.url", "t.remove_token", "removed"),
        ("extra.token", "t.remove_token", "removed"),
    }
    mask = found["message", "t.mask_card"]
    assert result["after"]["message"][mask["start"] : mask["end"]] == "*" * 15 + "1111"
    assert event["message"][mask["original_start"] : mask["original_end"]] == CARD
    hashed = found["message", "t.hash_email"]
    assert event["message"][hashed["original_start"] : hashed["original_end"]] == EMAIL
    assert result["after"]["message"][hashed["start"] : hashed["end"]].startswith("[hash:")
    token = found["request.url", "t.remove_token"]
    assert token["start"] == token["end"]
    assert event["request"]["url"][token["original_start"] : token["original_end"]] == "abc123def456"
    assert result["after"]["request"]["url"] == "https://shop.example.com/a?token=&page=2"
    assert result["before"]["request"]["url"] == (
        "https://shop.example.com/a?token=«redacted 12 chars by t.remove_token»&page=2"
    )
    assert result["after"]["extra"]["token"] is None


def test_stdin_and_envelopes(workdir: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`-` reads stdin; an envelope's first event item is explained."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(orjson.dumps(EVENT))))
    assert triples(explain_json(capsys, "--project", "42", "-")) == PROJECT_42
    payload = orjson.dumps(EVENT)
    envelope = b"\n".join(
        [
            orjson.dumps({"event_id": EVENT["event_id"]}),
            orjson.dumps({"type": "attachment", "length": 2}),
            b"hi",
            orjson.dumps({"type": "event", "length": len(payload)}),
            payload,
        ]
    )
    (workdir / "event.envelope").write_bytes(envelope)
    assert triples(explain_json(capsys, "--project", "42", "event.envelope")) == PROJECT_42


def test_a_terminal_sees_the_original_values_highlighted(
    workdir: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a TTY the before view shows the redacted values highlighted and labelled; NO_COLOR masks them."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["rules", "explain", "--project", "42", "event.json"]) == 0
    shown = terminal.getvalue()
    assert "Before (redacted spans highlighted):" in shown
    assert f"'\x1b[1;41;97m{EMAIL}\x1b[0m\x1b[2m⟦pii.email⟧\x1b[0m'" in shown
    assert f"\x1b[1;41;97m{PASSWORD}\x1b[0m" in shown

    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    monkeypatch.setattr(sys, "stdout", plain)
    assert main(["rules", "explain", "--project", "42", "event.json"]) == 0
    assert EMAIL not in plain.getvalue()


def test_control_characters_never_reach_the_terminal(workdir: Path, capsys: Any) -> None:
    """Escape sequences in keys and values are printed escaped."""
    (workdir / "evil.json").write_bytes(
        orjson.dumps({"extra": {"pass\x1b[2Jword": "x\x9b31m", "note": "\x1b]0;hi\x07"}})
    )
    code, out, _ = explain(capsys, "evil.json")
    assert code == 0
    assert "\x1b" not in out
    assert "\x9b" not in out
    assert "pass\\u001b[2Jword" in out


def test_remarks_the_event_came_with(workdir: Path, capsys: Any) -> None:
    """Only this run's redactions are listed; `after` keeps the event's own `_meta`, as the server does."""
    event = {**EVENT, "_meta": {"culprit": {"": {"rem": [["sdk.rule", "s", 0, 3]], "len": 9}}}}
    (workdir / "meta.json").write_bytes(orjson.dumps(event))
    result = explain_json(capsys, "--project", "42", "meta.json")
    assert triples(result) == PROJECT_42
    assert result["after"]["_meta"]["culprit"] == event["_meta"]["culprit"]
    assert "message" in result["after"]["_meta"]
    assert result["before"]["_meta"] == event["_meta"]


def test_a_value_found_twice_is_explained_twice(workdir: Path, capsys: Any) -> None:
    """A secret found once is replaced everywhere (propagation); each place is listed and masked."""
    secret = "Tr0ub4dor&3-horse"
    event = {"extra": {"password": secret}, "logentry": {"params": [secret], "formatted": f"login as {secret} failed"}}
    (workdir / "twice.json").write_bytes(orjson.dumps(event))
    code, out, _ = explain(capsys, "twice.json", "--format", "json")
    assert code == 0
    assert secret not in out
    result = orjson.loads(out)
    assert {r["path"] for r in result["redactions"]} == {"extra.password", "logentry.params.0", "logentry.formatted"}
    assert result["before"]["logentry"]["formatted"] == "login as «redacted 17 chars by secrets.sensitive_keys» failed"


def test_a_change_without_a_remark_is_masked_all_the_same() -> None:
    """Safety net: should the engine ever change a value without a `_meta` remark, `before` still hides it."""

    class Silent(Scrubber):
        def scrub_event(self, event: dict[str, Any], *args: Any) -> dict[str, Any]:
            event["extra"]["token"] = "gone"
            event["extra"]["nested"] = None
            return event

    event = {"extra": {"token": "s3cr3t-t0ken", "nested": {"key": "k3y-value"}, "kept": "ok"}}
    result = explain_event(Silent([]), event).as_json()
    assert result["redactions"] == []
    assert result["before"]["extra"] == {
        "token": "«redacted 12 chars by the scrubber, without a remark»",
        "nested": "«redacted 20 chars by the scrubber, without a remark»",
        "kept": "ok",
    }
    assert event["extra"]["token"] == "s3cr3t-t0ken"  # the caller's event is left as it was


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "event.json: is empty; expected a JSON event"),
        (b'{"message": "x",}', "event.json: not valid JSON: trailing comma is not allowed (line 1, column 16)"),
        (b"[1, 2]", "event.json: an event must be a JSON object, got an array"),
        (b'{"a": 1}\n{"type": "event", "length": 99}\n{}', "event.json: neither a JSON event nor a valid envelope"),
        (b'{"a": 1}\n{"type": "session"}\n{}', "event.json: an envelope without an event item (item types: session)"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(workdir: Path, capsys: Any, content: bytes, message: str) -> None:
    """Unusable input: a message on stderr naming the file, nothing on stdout, exit code 2."""
    (workdir / "event.json").write_bytes(content)
    code, out, err = explain(capsys, "event.json")
    assert (code, out) == (2, "")
    assert err.startswith(f"relay rules explain: {message}")


def test_missing_file_unknown_project_bad_config_and_bad_rules(workdir: Path, capsys: Any) -> None:
    """Each is exit code 2 with a message that says what to fix."""
    code, out, err = explain(capsys, "nope.json")
    assert (code, out, err) == (2, "", "relay rules explain: nope.json: cannot read: No such file or directory\n")
    code, _, err = explain(capsys, "--project", "7", "event.json")
    assert code == 2
    assert err == "relay rules explain: unknown project 7 in relay.yml (configured projects: 42, 43)\n"
    (workdir / "broken.yml").write_text("upstream: {url: 'http://x'}\nlisten: {port: -1}\n")
    code, _, err = explain(capsys, "--config", "broken.yml", "event.json")
    assert code == 2
    assert err.startswith("relay rules explain: 1 problem(s) in the config:\n  broken.yml")
    (workdir / "bad-rules.yml").write_text("rules:\n  - id: bad\n    pattern: '('\n")
    code, _, err = explain(capsys, "--rules", "./bad-rules.yml", "event.json")
    assert code == 2
    assert re.search(r"^  (\./)?bad-rules\.yml:3:.*rule bad: invalid pattern", err, re.MULTILINE), err
    code, _, err = explain(capsys, "--rules", "nosuchpack", "event.json")
    assert code == 2
    assert "nosuchpack: no shipped rule pack by that name" in err


def test_without_a_config_file_the_default_packs_apply(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """No relay.yml at hand: the shipped default packs, like `relay scrub`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    (tmp_path / "event.json").write_bytes(orjson.dumps(EVENT))
    result = explain_json(capsys, "event.json")
    assert result["rules"] == list(Config().rules)
    assert ("message", "pii.credit_card", "replaced") in triples(result)


_WORDS = st.sampled_from(["order", "shipped", "to", "x", "ab.cd", "@", "é", "[Filtered]", "mail", "-", "42"])
_PLANTED = st.sampled_from(["bob@example.com", "a.b+c@mail.example.org", "4111 1111 1111 1111", "5555555555554444"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_WORDS, _PLANTED), min_size=1, max_size=12))
def test_masked_before_is_the_original_with_exactly_the_redacted_spans_masked(words: list[str]) -> None:
    """Invariant: `before` is the original with each original span masked, and reveals nothing `after` hides."""
    text = " ".join(words)
    pack = parse_pack("rules:\n  - {id: e, detector: email}\n  - {id: c, detector: credit_card}\n", "t.yml")
    result = explain_event(Scrubber(pack.rules), {"message": text}).as_json()
    before = result["before"]["message"]
    spans = sorted((r["original_start"], r["original_end"], r["rule"]) for r in result["redactions"])
    rebuilt, cursor = [], 0
    for start, end, rule in spans:
        rebuilt += [text[cursor:start], f"«redacted {end - start} chars by {rule}»"]
        cursor = end
    assert before == "".join([*rebuilt, text[cursor:]])
    after = result["after"]["message"]
    for planted in set(words):  # the before view reveals nothing the after view hides
        assert planted in after or planted not in before
