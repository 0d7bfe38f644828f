"""`relay rules import-sentry`: Sentry data scrubbing settings converted into a rule file that hides at least as much.

The strictness tests run real sentry-python events through Sentry's own PII engine (`sentry_relay`, the Rust
code Sentry runs) and through our engine with the converted rules alone: no value Sentry hides may survive ours.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regex
import sentry_relay  # Sentry's own engine, from the test extra: the strictness checks must run, not skip
import sentry_sdk
from hypothesis import given, settings
from hypothesis import strategies as st
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware
from sentry_sdk.scrubber import EventScrubber
from sentry_sdk.transport import Transport

from relay.cli import main
from relay.config import parse_config
from relay.rules import RulePack, parse_pack
from relay.rules.keys import normalize_key
from relay.rules.sentry_import import BUILTIN_RULES, STRUCTURE, convert, legacy_config, legacy_settings
from relay.rules.sentry_selectors import SentrySelectorError, abbreviate, key_patterns, translate_selector
from relay.rules.verify import verify_packs
from relay.scrub.engine import Scrubber

DATA = Path(__file__).parent / "sentry_import"
KEY = "0123456789abcdef0123456789abcdef"
Path_ = tuple[str | int, ...]


# -- real SDK events ------------------------------------------------------------------------------------------


class _Recorder(Transport):
    """Keeps the events the SDK would send."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.events += [json.loads(i.payload.get_bytes()) for i in envelope.items if i.type == "event"]


class _KeepEverything(EventScrubber):
    """The SDK's own scrubber would filter passwords before the relay sees them: keep payloads raw."""

    def scrub_event(self, event: Any) -> None:
        return None


class PaymentError(Exception):
    """The failure the sample application raises."""


def _charge(order: dict[str, Any], customer: dict[str, str]) -> None:
    card_number = "4111 1111 1111 1111"
    customer_email = customer["email"]
    password = "hunter2-correct-horse"
    api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    session_token = "9f8e7d6c5b4a3210ffee"
    statement = "/home/alice/invoices/2024-03.pdf"
    ssn = "078-05-1120"
    device = {"mac": "00:1a:2b:3c:4d:5e", "imei": "356938035643809", "id": "550e8400-e29b-41d4-a716-446655440000"}
    order_id = {"number": "CUST-12345678", "card": "5500 0000 0000 0004", "contact": "billing@example.com"}
    database = "postgres://shop:s3cr3t-db-pw@db.internal:5432/shop"
    _ = (card_number, password, api_key, session_token, statement, ssn, device, order_id, database)  # kept as locals
    raise PaymentError(f"card declined for {customer_email} (ticket-4242, CUST-12345678)")


def _shop(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    scope = sentry_sdk.get_isolation_scope()

    def add_body(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        # what a framework integration (Django, Flask) adds from the request body and cookies
        event.setdefault("request", {})["data"] = {
            "username": "alice",
            "password": "hunter2",
            "card": "4012888888881881",
            "note": "call alice.smith@example.com",
        }
        event["request"]["cookies"] = {"sessionid": "s3cr3t-session-id", "theme": "dark", "csrftoken": "csrf-abc123"}
        return event

    scope.add_event_processor(add_body)
    sentry_sdk.add_breadcrumb(
        category="http", data={"url": "https://api.example.com/v1/pay?token=tok_abc123&amount=5", "method": "POST"}
    )
    sentry_sdk.add_breadcrumb(category="auth", message="login as bob@example.org from 198.51.100.7")
    logging.getLogger("shop").info("charging card %s for %s", "5105 1051 0510 5100", "alice.smith@example.com")
    order = {"items": 3, "total": "49.90", "card_number": "4111-1111-1111-1111"}
    _charge(order, {"email": "alice.smith@example.com", "name": "Alice Smith"})
    return []


def _login(username: str) -> None:
    token = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    creds = ("password", "opensesame-42")
    iban = "DE89370400440532013000"
    _ = (token, creds, iban)  # kept as locals
    raise PermissionError(f"login failed for {username} from 2001:db8::8a2e:370:7334")


def capture_sdk_events() -> list[dict[str, Any]]:
    """Events from a live sentry-python client: a WSGI request that fails, a message, a log record, an exception."""
    recorder = _Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = sentry_sdk.Client(
            dsn="http://key@localhost/1",
            transport=recorder,
            send_default_pii=True,
            include_local_variables=True,
            default_integrations=False,
            auto_enabling_integrations=False,
            integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
            event_scrubber=_KeepEverything(),
            release="shop@4.12.0",
            environment="production",
            server_name="web-1",
        )
    logger = logging.getLogger("shop")
    logger.setLevel(logging.INFO)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            scope.set_user(
                {"id": "42", "email": "alice.smith@example.com", "ip_address": "203.0.113.9", "username": "alice"}
            )
            scope.set_tag("customer", "alice.smith@example.com")
            scope.set_extra("card_number", "4111-1111-1111-1111")
            scope.set_extra("order_secret", "vault-7731")
            scope.set_extra("notes", "ssn 078-05-1120, iban DE89370400440532013000, mac 00:1a:2b:3c:4d:5e")
            scope.set_extra("order_id", {"card": "5500 0000 0000 0004", "ip": "198.51.100.23"})
            scope.set_extra("user.note", "reach me at carol@example.net")
            scope.set_context("customer", {"email": "alice.smith@example.com", "phone": "+1 415 555 0100"})
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/checkout",
                "QUERY_STRING": "coupon=SPRING&session_token=qs-s3cr3t",
                "SERVER_NAME": "shop.example.com",
                "SERVER_PORT": "443",
                "wsgi.url_scheme": "https",
                "REMOTE_ADDR": "203.0.113.9",
                "HTTP_AUTHORIZATION": "Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0",
                "HTTP_COOKIE": "sessionid=s3cr3t-session-id; theme=dark",
                "HTTP_X_CUSTOM_SECRET": "topsecret-42",
                "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64)",
                "HTTP_X_FORWARDED_FOR": "198.51.100.7",
            }
            with pytest.raises(PaymentError):
                SentryWsgiMiddleware(_shop)(environ, lambda *a: None)
            sentry_sdk.capture_message("refund for bob@example.org to DE89370400440532013000 from 198.51.100.7")
            logger.error("login failed for %s with %s", "carol@example.com", "Bearer abc.def.ghi")
            try:
                _login("dave@example.com")
            except PermissionError:
                sentry_sdk.capture_exception()
        client.flush()
    finally:
        client.close()
    assert len(recorder.events) == 4
    return recorder.events


@pytest.fixture(scope="module")
def sdk_events() -> list[dict[str, Any]]:
    """The SDK's events as Sentry's PII engine reads them (normalized once, so both engines see the same)."""
    canonical = []
    for event in capture_sdk_events():
        normalized = sentry_relay.pii_strip_event({}, event)
        normalized.pop("_meta", None)
        canonical.append(normalized)
    return canonical


# -- comparing what each engine hides -----------------------------------------------------------------------------


def leaves(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every scalar of a JSON value (not booleans or nulls), with its path."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key != "_meta":
                yield from leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))
    elif value is not None and not isinstance(value, bool):
        yield path, value


def lookup(value: Any, path: Path_) -> Any:
    """The value at `path`, or None if it is gone."""
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def hidden(original: dict[str, Any], scrubbed: dict[str, Any]) -> dict[Path_, list[tuple[int, int]]]:
    """Values that scrubbing removed or changed, each with the spans of its text that didn't survive."""
    out: dict[Path_, list[tuple[int, int]]] = {}
    for path, value in leaves(original):
        new = lookup(scrubbed, path)
        if new == value:
            continue
        text = str(value)
        if new is None:
            out[path] = [(0, len(text))]
            continue
        matcher = difflib.SequenceMatcher(None, text, str(new), autojunk=False)
        spans: list[tuple[int, int]] = []
        for op, a, b, _, _ in matcher.get_opcodes():
            if op in ("replace", "delete"):  # a replacement that shares a few characters with the original is one
                spans[-1:] = [(spans[-1][0], b)] if spans and a - spans[-1][1] < 4 else [*spans[-1:], (a, b)]
        out[path] = spans
    return out


def leaks(original: dict[str, Any], sentry: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """What Sentry hides that is still visible in our output (empty: ours is at least as strict).

    A value leaks if our output keeps it as it was, or keeps a run of 4 or more characters of a span Sentry hid
    (in place: the diff from the original to our output keeps them).
    """
    found = []
    for path, spans in hidden(original, sentry).items():
        value, mine = str(lookup(original, path)), lookup(ours, path)
        where = ".".join(map(str, path))
        if mine is None:
            continue
        if mine == lookup(original, path):
            found.append(f"{where}: {value!r} is hidden by Sentry, not by relay")
            continue
        blocks = difflib.SequenceMatcher(None, value, str(mine), autojunk=False).get_matching_blocks()
        for a, b in spans:
            if any(min(b, k.a + k.size) - max(a, k.a) >= 4 for k in blocks):
                found.append(f"{where}: {value[a:b]!r} survives in {mine!r}")
    return found


def sentry_config(name: str) -> list[dict[str, Any]]:
    """The PII configs Sentry applies for a sample: a PII config, or legacy settings as Sentry converts them."""
    raw = json.loads((DATA / name).read_text())
    if "applications" in raw:
        return [raw]
    settings = legacy_settings(raw, [], [])
    converted = sentry_relay.convert_datascrubbing_config(settings)
    if "strip-fields" in converted.get("rules", {}):  # Sentry compiles it case-insensitively; JSON can't say so
        rule = converted["rules"]["strip-fields"]
        rule["keyPattern"] = "(?i)" + rule["keyPattern"]
    return [converted]


def converted_pack(*names: str) -> RulePack:
    """Our rule pack for sample configs (a PII config and/or legacy settings)."""
    pii = legacy = None
    for name in names:
        raw = json.loads((DATA / name).read_text())
        if "applications" in raw:
            pii = raw
        else:
            legacy = raw
    result = convert(pii, legacy)
    assert result.problems == []
    return parse_pack(result.text, "sentry-import.yml")


def strictness(configs: tuple[str, ...], events: list[dict[str, Any]]) -> tuple[int, int, list[str]]:
    """Values Sentry hides, values ours hides, and what leaks: over all events, our converted rules alone."""
    scrubber = Scrubber(converted_pack(*configs).rules, b"test-hash-key")
    sentry_hides = ours_hides = 0
    found: list[str] = []
    for event in events:
        theirs = event
        for config in [c for name in configs for c in sentry_config(name)]:
            theirs = sentry_relay.pii_strip_event(config, theirs)
        ours = scrubber.scrub_event(copy.deepcopy(event))
        sentry_hides += len(hidden(event, theirs))
        ours_hides += len(hidden(event, ours))
        found += leaks(event, theirs, ours)
    return sentry_hides, ours_hides, found


SAMPLES = [
    ("legacy-defaults.json",),
    ("legacy-project-api.json",),
    ("advanced.json",),
    ("advanced-selectors.json",),
    ("advanced.json", "legacy-defaults.json"),
]


@pytest.mark.parametrize("configs", SAMPLES, ids=["+".join(c) for c in SAMPLES])
def test_no_value_sentry_hides_survives_the_converted_rules(
    configs: tuple[str, ...], sdk_events: list[dict[str, Any]], record_property: Any
) -> None:
    """Real SDK events: every value Sentry's engine removes or changes is removed or changed by ours too."""
    sentry_hides, ours_hides, found = strictness(configs, sdk_events)
    record_property("values_hidden_by_sentry", sentry_hides)
    record_property("values_hidden_by_relay", ours_hides)
    assert sentry_hides > 0, "the sample events should give Sentry's rules something to do"
    assert found == [], f"Sentry hides {sentry_hides} values, relay {ours_hides}; leaks:\n" + "\n".join(found)
    assert ours_hides >= sentry_hides


@pytest.mark.parametrize("name", sorted(n for n in BUILTIN_RULES if not n.startswith("@anything")))
def test_every_builtin_rule_is_at_least_as_strict(name: str, sdk_events: list[dict[str, Any]]) -> None:
    """Each of Sentry's built-in rules on `$string`, converted, hides everything Sentry's hides."""
    text = " ".join(
        [
            "mail alice.smith@example.com card 4111 1111 1111 1111 or 5105-1051-0510-5100, iban DE89370400440532013000",
            "ssn 078-05-1120 ip 203.0.113.9 / fe80::1ff:fe23:4567:890a mac 00:1a:2b:3c:4d:5e imei 356938035643809",
            "uuid 550e8400-e29b-41d4-a716-446655440000 path /home/alice/x C:\\Users\\bob\\y url https://u:pw@host/",
            "Authorization: Bearer abc.def-ghi cookie: sessionid=s3cr3t; csrftoken=zz; theme=dark",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----",
        ]
    )
    battery = {"extra": {"text": text, "password": "hunter2", "api_token": "tok-123", "auth": {"user": "x"}}}
    config = {"applications": {"$string": [name]}}
    result = convert(config, None)
    assert result.problems == []
    scrubber = Scrubber(parse_pack(result.text, "x.yml").rules, b"k")
    for event in [battery, *sdk_events]:
        theirs = sentry_relay.pii_strip_event(config, event)
        ours = scrubber.scrub_event(copy.deepcopy(event))
        assert leaks(event, theirs, ours) == []


def test_numbers_under_sensitive_keys_are_hidden_too() -> None:
    """`{"password": 1.5}`: Sentry removes the number, and so does the converted key rule."""
    config = {"applications": {"$object.**": ["@password"]}}
    event = {"extra": {"settings": {"password": 1.5, "token": 12}}}
    theirs = sentry_relay.pii_strip_event(config, event)
    ours = Scrubber(parse_pack(convert(config, None).text, "x.yml").rules, b"k").scrub_event(copy.deepcopy(event))
    assert leaks(event, theirs, ours) == []


def test_approximations_are_warnings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Where relay's rules select more than Sentry's (an index, `a && b`, `!$type`), a warning says so."""
    config = {"applications": {"exception.values.0.value": ["@email"], "extra.a && b.c": ["@ip"],
                               "$string && !$number": ["@uuid"]}}  # fmt: skip
    (tmp_path / "pii.json").write_text(json.dumps(config))
    code, _, err = run([str(tmp_path / "pii.json")], capsys)
    assert code == 0
    assert "index 0: relay's selectors match every list element, not only element 0" in err
    assert "`&&` of two paths: relay applies the rule wherever the more specific one matches" in err
    assert "`!$number` ignored: relay's selectors can't exclude by value type" in err


def test_the_legacy_settings_convert_as_sentry_converts_them() -> None:
    """Our port of Sentry's legacy conversion gives the PII config `sentry_relay` gives, selector for selector."""
    for raw in (
        json.loads((DATA / "legacy-defaults.json").read_text()),
        json.loads((DATA / "legacy-project-api.json").read_text()),
        {"scrubData": True, "scrubDefaults": False, "scrubIpAddresses": True, "sensitiveFields": [" a ", ""]},
        {"scrubData": False, "scrubDefaults": True, "scrubIpAddresses": False, "excludeFields": ["x"]},
        {"scrubData": True, "scrubDefaults": True, "scrubIpAddresses": False, "sensitiveFields": ["a.b", "c*"]},
    ):
        settings = legacy_settings(raw, [], [])
        ours, _ = legacy_config(settings)
        theirs = sentry_relay.convert_datascrubbing_config(settings)
        if "strip-fields" in ours.get("rules", {}):
            ours["rules"]["strip-fields"]["keyPattern"] = ours["rules"]["strip-fields"]["keyPattern"][4:]
        assert ours.get("rules", {}) == theirs.get("rules", {})
        assert ours["applications"] == theirs.get("applications", {})


STRUCTURE_EVENT = {  # every field of STRUCTURE, and then some
    "event_id": "6f2c8f3b8f3d4c0e9f6f0e5e1c1b2a3d", "timestamp": "2024-01-01T00:00:00Z", "level": "error",
    "start_timestamp": "2024-01-01T00:00:00Z", "received": "2024-01-01T00:00:01Z", "platform": "python",
    "release": "shop@1.0", "dist": "12", "environment": "prod", "type": "transaction", "logger": "shop.checkout",
    "fingerprint": ["{{ default }}", "alice@example.com"], "modules": {"django": "4.2"},
    "contexts": {"trace": {"trace_id": "a9367b49b86045f3866a72fa7a6850d7", "span_id": "8de64a0b2f3ad8d3",
                           "parent_span_id": "8de64a0b2f3ad8d4"}},
    "exception": {"values": [{"type": "ValueError", "module": "builtins", "value": "alice@example.com",
                              "mechanism": {"type": "generic", "handled": True},
                              "stacktrace": {"frames": [{"function": "login", "raw_function": "login(user)",
                                                         "context_line": "password = 'hunter2'",
                                                         "pre_context": ["email = 'alice@example.com'"],
                                                         "post_context": ["token = 'abc'"]}]}}]},
    "sdk": {"name": "sentry.python", "version": "2.0", "integrations": ["logging"],
            "packages": [{"name": "pypi:sentry-sdk", "version": "2.0"}]},
    "spans": [{"span_id": "8de64a0b2f3ad8d5", "parent_span_id": "8de64a0b2f3ad8d3",
               "trace_id": "a9367b49b86045f3866a72fa7a6850d7", "start_timestamp": 1.0, "timestamp": 2.0}],
}  # fmt: skip


def test_structure_fields_are_never_scrubbed_by_sentry(sdk_events: list[dict[str, Any]]) -> None:
    """What the converted rules always spare (STRUCTURE), Sentry never touches, even when told to exactly there."""
    from relay.rules.selectors import expand

    selectors = [e for s in STRUCTURE for e in expand(s)]
    config = {"applications": {s: ["@anything:replace"] for s in ["**", "$string", *selectors]}}
    spared = [regex.escape(s).replace(r"\*\*", ".*").replace(r"\*", "[^.]+") + r"(\..*)?" for s in selectors]
    event = sentry_relay.pii_strip_event({}, STRUCTURE_EVENT)
    for original in [event, *sdk_events]:
        touched = [".".join(map(str, p)) for p in hidden(original, sentry_relay.pii_strip_event(config, original))]
        assert touched, "the config should scrub something"
        assert [t for t in touched if any(regex.fullmatch(p, t) for p in spared)] == []


# -- selectors and key patterns -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "include", "exclude", "beneath"),
    [
        ("$frame.vars", ["$frame.vars", "**.raw_stacktrace.frames.*.vars"], [], []),
        ("$http.headers.x-custom-secret", ["$request.headers.x-custom-secret"], [], []),
        ("$string", [], [], []),
        ("$frame.vars.**", ["$frame.vars.*", "**.raw_stacktrace.frames.*.vars.*"], [], []),
        ("password", ["**.password"], [], []),
        ("*.cookies.session", ["**.*.cookies.session"], [], []),
        ("*.extra.**", ["$extra.*.*"], [], []),
        ("extra.'user.note'", ["**.extra.'user.note'"], [], []),
        ("$string && !order_id", [], ["**.order_id"], ["**.order_id.*"]),
        ("$string && !debug_meta.**", [], ["**.debug_meta.*"], []),
        ("$string && !$breadcrumb.category", [], ["breadcrumbs.values.*.category"], []),
        ("$logentry.formatted", ["$message.formatted", "message"], [], []),
        ("$error.value", ["$exception.value", "exception.*.value"], [], []),
        ("$user.ip_address | $http.env.REMOTE_ADDR", ["$user.ip_address", "$request.env.REMOTE_ADDR"], [], []),
        ("extra.** && ~extra.x", ["**.extra.*"], ["**.extra.x"], ["**.extra.x.*", "**.extra.x.**.extra.*"]),
        ("extra.** && !extra.a.**", ["**.extra.*"], ["**.extra.a.*"], ["**.extra.**.extra.a.*"]),
        ("$string && !list.0", [], [], []),
        ("'it''s'", ["**.it*s"], [], []),
        ("exception.values.0.value", ["**.exception.values.0.value"], [], []),
    ],
)
def test_selectors_translate_to_ours(selector: str, include: list[str], exclude: list[str], beneath: list[str]) -> None:
    """Sentry selectors become ours, selecting at least as much; exclusions spare only what Sentry spares."""
    (where,) = translate_selector(selector)
    assert abbreviate(list(where.include)) == include
    assert abbreviate(list(where.exclude)) == exclude
    assert list(where.beneath) == beneath


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("$frame.vars &&", "invalid selector"),
        ("**.a.**", "deep wildcard used more than once"),
        ("*", "wildcard must be part of a path"),
        ("$minidump.heap", "minidumps"),
        ("$extra", "unknown value type `$extra`"),
        ("a.$bogus", "unknown value type `$bogus`"),
    ],
)
def test_bad_selectors_are_refused(selector: str, message: str) -> None:
    """Selectors Sentry rejects, or that name what our rules can't scrub, are errors saying why."""
    with pytest.raises(SentrySelectorError, match=regex.escape(message)):
        translate_selector(selector)


_KEYS = ["a", "b", "order_id", "extra", "api_key", "Auth"]
_TREES = st.recursive(
    st.sampled_from(["u1@example.com", "v2@example.net", "w3@example.org"]),
    lambda kids: st.one_of(
        st.dictionaries(st.sampled_from(_KEYS), kids, min_size=1, max_size=3),
        st.lists(kids, min_size=1, max_size=3).filter(lambda items: len(items) != 2),  # (see test docstring)
    ),
    max_leaves=14,
)
_PATHS = st.builds(
    lambda head, rest: ".".join([head, *rest]),
    st.sampled_from([*_KEYS, "*", "**", "0", "$string", "$object", "$array", "$event"]),
    st.lists(st.sampled_from([*_KEYS, "*", "**", "1"]), max_size=2),
).filter(lambda p: p.count("**") <= 1 and p != "*")
_FORMS = ["{p}", "{p} || {q}", "{p} && !{q}", "$string && !{q}", "!{q}", "({p} || extra.**) && ~{q}", "{p} && {q}"]
_RULES = ["@email:replace", "@email:remove", "@anything:remove", "@anything:replace", "@password:filter", "pair"]


@settings(max_examples=150, deadline=None)
@given(
    tree=st.dictionaries(st.sampled_from(_KEYS), _TREES, min_size=1, max_size=3),
    form=st.sampled_from(_FORMS),
    p=_PATHS,
    q=_PATHS,
    rule=st.sampled_from(_RULES),
)
def test_random_selectors_hide_at_least_what_sentry_hides(
    tree: dict[str, Any], form: str, p: str, q: str, rule: str
) -> None:
    """Random selectors (paths, wildcards, `**`, types, `||`, `&&`, `!`) and rules, on random data, against Sentry.

    Lists of two elements are left out: our engine reads `[["k", "v"], ...]` as key/value pairs and never scrubs
    the keys, where Sentry scrubs both (an engine difference, not a conversion one).
    """
    config = {
        "rules": {"pair": {"type": "redact_pair", "keyPattern": "(?i)^a$|order"}},
        "applications": {form.format(p=p, q=q): [rule]},
    }
    try:
        sentry_relay.processing.validate_pii_config(json.dumps(config))
    except ValueError:
        return  # Sentry rejects it: nothing to compare
    result = convert(config, None)
    if result.problems:
        return  # refused, with a reason: never a weaker file
    event = sentry_relay.pii_strip_event({}, {"extra": tree})
    event.pop("_meta", None)
    ours = Scrubber(parse_pack(result.text, "x.yml").rules, b"k").scrub_event(copy.deepcopy(event))
    assert leaks(event, sentry_relay.pii_strip_event(config, event), ours) == []


SENTRY_KEY_PATTERNS = [
    r"(?i)(password|secret|passwd|api[-_]key|apikey|auth|credentials|mysql_pwd|privatekey|private[-_]key|"
    r"token[^\s]*[:=]|^otp$|^two[-_]factor$)",
    r"(?i)card_number|ssn|order\.secret",
    r"^x-.*-secret$",
    r"(?x) session \  id | csrf[-_]?token",
    r"[[:alpha:]]+_id\b",
    r"a.b|c\Wd|e[-_q]f",
]


@settings(max_examples=400, deadline=None)
@given(key=st.text(alphabet="abcdefpqrstuwxyzADIKNOST_-. 0129", max_size=24), index=st.integers(0, 5))
def test_key_patterns_match_every_key_sentry_matches(key: str, index: int) -> None:
    """Wherever Sentry's regex finds a match in a raw key, our `keys:` match its normalized form."""
    pattern = SENTRY_KEY_PATTERNS[index]
    for word in ("password", "session_id", "card_number", "x-api-secret", "two-factor", "token=", "a.b"):
        candidate = key + word if len(key) % 2 else word + key
        if regex.search(pattern, candidate):
            compiled = [regex.compile(e, regex.IGNORECASE) for e in key_patterns(pattern)]
            assert any(c.fullmatch(normalize_key(candidate)) for c in compiled), (pattern, candidate)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("card_number|ssn", [".*cardnumber.*", ".*ssn.*"]),
        ("^x-.*-secret$", ["x.*secret"]),
        ("(?i)(token)", [".*token.*"]),
        ("foo.bar", [".*foo.?bar.*"]),
    ],
)
def test_key_patterns_read_like_key_names(pattern: str, expected: list[str]) -> None:
    """Translated key patterns stay short: separators dropped, alternatives as separate entries."""
    assert key_patterns(pattern) == expected


@pytest.mark.parametrize("pattern", [r"(?=a)b", r"(a)\1", r"\p{L}+", "[a&&b]"])
def test_key_patterns_we_cant_translate_are_refused(pattern: str) -> None:
    """Look-arounds, back-references and exotic classes in key patterns are errors, not guesses."""
    with pytest.raises(SentrySelectorError):
        key_patterns(pattern)


# -- the file it writes ---------------------------------------------------------------------------------------------


def test_the_advanced_sample_converts_to_the_golden_file() -> None:
    """The conversion of advanced.json is stable and reads as expected (regenerate the golden file on purpose)."""
    result = convert(json.loads((DATA / "advanced.json").read_text()), None, sources="advanced.json")
    assert result.problems == []
    assert result.text == (DATA / "advanced.expected.yml").read_text()


@pytest.mark.parametrize("configs", SAMPLES, ids=["+".join(c) for c in SAMPLES])
def test_converted_files_load_and_their_tests_pass(configs: tuple[str, ...]) -> None:
    """Every converted sample loads with parse_pack, carries generated tests, and those tests pass."""
    pack = converted_pack(*configs)
    assert pack.rules
    assert pack.tests
    assert verify_packs([pack]) == []


def test_converted_file_is_usable_from_the_config(tmp_path: Path) -> None:
    """`rules: [./sentry-imported.yml]` in relay.yml loads the converted file (with a hash key for hash rules)."""
    output = tmp_path / "sentry-imported.yml"
    assert main(["rules", "import-sentry", str(DATA / "advanced.json"), "-o", str(output)]) == 0
    config_text = (
        f'upstream: {{url: "http://127.0.0.1:9"}}\nrules: [./sentry-imported.yml]\nscrub: {{hash_key: "k3y"}}\n'
        f'projects:\n  - id: 42\n    keys: ["{KEY}"]\n'
    )
    config = parse_config(config_text, str(tmp_path / "relay.yml"), {})
    assert config.rules == ("./sentry-imported.yml",)


def test_comments_name_the_sentry_rule_and_selector() -> None:
    """Each group of rules says which Sentry selector and rules it came from; each rule, its Sentry rule."""
    text = convert(json.loads((DATA / "advanced.json").read_text()), None).text
    assert '# Sentry Advanced Data Scrubbing: "$http.headers.x-custom-secret": ["@anything:remove"]' in text
    pack = parse_pack(text, "x.yml")
    assert all(rule.description.startswith(("Sentry ", "Beneath ")) for rule in pack.rules)


# -- the command -----------------------------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `relay rules import-sentry ...`; return the exit code, stdout and stderr."""
    code = main(["rules", "import-sentry", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --output the file is written and the summary goes to stderr; warnings name what is approximate."""
    output = tmp_path / "out.yml"
    code, out, err = run([str(DATA / "advanced.json"), "--output", str(output), "--id-prefix", "acme"], capsys)
    assert code == 0
    assert out == ""
    assert f"rules to {output}" in err
    assert (
        "warning: Advanced Data Scrubbing: selector '$user.ip_address || $http.env.REMOTE_ADDR': rule '@ip:hash'" in err
    )
    pack = parse_pack(output.read_text(), str(output))
    assert all(rule.id.startswith("acme.") for rule in pack.rules)


def test_cli_dash_means_no_pii_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`-` for the PII config converts only the legacy settings, to stdout by default."""
    code, out, _ = run(["-", "--datascrubbing", str(DATA / "legacy-defaults.json")], capsys)
    assert code == 0
    pack = parse_pack(out, "stdout.yml")
    assert {rule.id.split(".")[1] for rule in pack.rules} == {"legacy"}
    assert "# Sentry legacy scrubData + scrubDefaults + scrubIpAddresses" in out


def test_cli_reads_sentry_project_details(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sentry's project details JSON (relayPiiConfig as a string, legacy keys beside it) converts as a whole."""
    details = {
        "slug": "shop",
        "relayPiiConfig": (DATA / "advanced.json").read_text(),
        "dataScrubber": True,
        "dataScrubberDefaults": True,
        "scrubIPAddresses": False,
        "sensitiveFields": [],
        "safeFields": [],
    }
    (tmp_path / "project.json").write_text(json.dumps(details))
    code, out, _ = run([str(tmp_path / "project.json")], capsys)
    assert code == 0
    ids = [rule.id for rule in parse_pack(out, "x.yml").rules]
    assert any(i.startswith("sentry.legacy.") for i in ids) and "sentry.email-replace" in ids


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"applications": {"$minidump.heap": ["@anything:remove"]}}, "selector '$minidump.heap': `$minidump` selects"),
        (
            {
                "rules": {"a": {"type": "alias", "rule": "b"}, "b": {"type": "alias", "rule": "a"}},
                "applications": {"$string": ["a"]},
            },
            "selector '$string': rule 'a' refers to itself (a -> b -> a)",
        ),
        (
            {"rules": {"la": {"type": "pattern", "pattern": "(?=foo)bar"}}, "applications": {"$string": ["la"]}},
            "Sentry rule 'la' on '$string': pattern '(?=foo)bar': look-around",
        ),
        (
            {
                "rules": {"x": {"type": "pattern", "pattern": "x", "redaction": {"method": "obliterate"}}},
                "applications": {"$string": ["x"]},
            },
            "selector '$string': rule 'x': redaction method must be one of default, remove, replace, mask, hash, "
            "got 'obliterate'",
        ),
        (
            {"rules": {"k": {"type": "redact_pair", "keyPattern": "(a)\\1"}}, "applications": {"**": ["k"]}},
            "Sentry rule 'k' on '**': key pattern '(a)\\\\1': escape \\1 is not supported",
        ),
        (
            {"rules": {"e": {"type": "pattern", "pattern": "x*"}}, "applications": {"$string": ["e"]}},
            "Sentry rule 'e' on '$string': pattern 'x*' matches the empty string",
        ),
        (
            {"rules": {"t": {"type": "frobnicate"}}, "applications": {"$string": ["t"]}},
            "selector '$string': rule 't': unknown type 'frobnicate'",
        ),
        ({"applications": {"$frame.vars &&": ["@email"]}}, "selector '$frame.vars &&': invalid selector"),
        ([1, 2], "Advanced Data Scrubbing: must be a JSON object"),
    ],
)
def test_unconvertible_input_is_an_error_naming_it(
    config: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What can't be expressed exits 1, names the rule or selector and why, and writes nothing."""
    (tmp_path / "pii.json").write_text(json.dumps(config))
    output = tmp_path / "out.yml"
    code, _, err = run([str(tmp_path / "pii.json"), "-o", str(output)], capsys)
    assert code == 1
    assert message in err
    assert "nothing written" in err
    assert not output.exists()


def test_unreadable_input_and_nothing_to_do_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid JSON, a missing file, or no input at all exit 2."""
    (tmp_path / "bad.json").write_text("{nope")
    code, _, err = run([str(tmp_path / "bad.json")], capsys)
    assert code == 2 and f"{tmp_path / 'bad.json'}:1:2: invalid JSON" in err
    code, _, err = run([str(tmp_path / "missing.json")], capsys)
    assert code == 2 and "can't read" in err
    code, _, err = run(["-"], capsys)
    assert code == 2 and "nothing to convert" in err


def test_warnings_for_what_sentry_itself_ignores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing rules and groups, `hide_inner` (Sentry reads hideInner), unknown keys: warnings, for Sentry's silence."""
    config = {
        "rules": {
            "m": {"type": "multiple", "rules": ["@email"], "hide_inner": True},
            "g": {"type": "pattern", "pattern": "a(b)", "replaceGroups": [1, 3]},
        },
        "applications": {"$string": ["m", "nope", "g"]},
        "extra": 1,
    }
    (tmp_path / "pii.json").write_text(json.dumps(config))
    code, _, err = run([str(tmp_path / "pii.json")], capsys)
    assert code == 0
    assert "no rule 'nope'; Sentry ignores the reference" in err
    assert "Sentry ignores `hide_inner`" in err
    assert "unknown key 'extra' ignored" in err
    assert "replaceGroups [1, 3]: Sentry redacts nothing for groups the pattern doesn't have [3]; nor does" in err
