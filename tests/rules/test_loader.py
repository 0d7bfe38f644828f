"""Loading rule packs: every problem reported at once with file, line and rule id; config checks of rule files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay.cli import main
from relay.config import parse_config
from relay.errors import ConfigError
from relay.rules import ActionType, RuleError, load_pack, parse_pack, shipped_packs
from relay.rules.selectors import SEP, SHORTCUTS
from relay.scrub.detectors import DETECTORS

ROOT = Path(__file__).resolve().parents[2]
KEY = "0123456789abcdef0123456789abcdef"
DETECTOR_LIST = ", ".join(DETECTORS)
SHORTCUT_LIST = ", ".join(sorted(SHORTCUTS))


def problems(text: str, source: str = "pack.yml") -> list[str]:
    """The problems parse_pack reports for rule-file text."""
    with pytest.raises(RuleError) as info:
        parse_pack(text, source)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# -- single problems -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "  - id: r.det\n    detector: emial\n",
            "pack.yml:4:15: rule r.det: unknown detector 'emial'; did you mean 'email'?",
        ),
        (
            "  - id: r.re\n    pattern: '(unclosed'\n",
            "pack.yml:4:14: rule r.re: invalid pattern '(unclosed': missing ) at position 9",
        ),
        (
            "  - id: r.empty\n    pattern: 'x*'\n",
            "pack.yml:4:14: rule r.empty: pattern 'x*' matches the empty string, which would match everywhere",
        ),
        (
            "  - id: r.key\n    detector: email\n    colour: red\n",
            "pack.yml:5:5: rule r.key: unknown key 'colour'; valid keys are: id, description, detector, pattern, "
            "group, keys, selectors, exclude, action, with, mask_char, keep_last, flags, mode",
        ),
        (
            "  - id: r.act\n    detector: email\n    action: obliterate\n",
            "pack.yml:5:13: rule r.act: action must be one of remove, replace, mask, hash, keep, got 'obliterate'",
        ),
        (
            "  - id: r.mask\n    detector: email\n    action: mask\n    mask_char: '##'\n",
            "pack.yml:6:16: rule r.mask: mask_char must be one character, got '##'",
        ),
        (
            "  - id: r.mask\n    detector: email\n    action: mask\n    mask_char: ''\n",
            "pack.yml:6:16: rule r.mask: mask_char must be one character, got ''",
        ),
        (
            "  - id: r.none\n    action: replace\n",
            "pack.yml:3:5: rule r.none: needs one of `detector`, `pattern` or `keys` (only `keep` rules may omit it)",
        ),
        (
            "  - id: r.sel\n    detector: email\n    selectors: [$nonsense]\n",
            f"pack.yml:5:17: rule r.sel: unknown type shortcut '$nonsense'; known: {SHORTCUT_LIST}",
        ),
        (
            "  - id: r.sel\n    detector: email\n    exclude: [$nonsense.x]\n",
            f"pack.yml:5:15: rule r.sel: unknown type shortcut '$nonsense'; known: {SHORTCUT_LIST}",
        ),
        (
            "  - id: r.sel\n    detector: email\n    selectors: ['a..b']\n",
            "pack.yml:5:17: rule r.sel: empty segment in selector 'a..b'",
        ),
        (
            "  - id: r.two\n    detector: email\n    pattern: x\n",
            "pack.yml:5:5: rule r.two: use one of detector, pattern or keys, not detector and pattern",
        ),
        (
            "  - id: r.with\n    detector: email\n    action: remove\n    with: x\n",
            "pack.yml:6:11: rule r.with: `with` only applies to action: replace",
        ),
        (
            "  - id: r.flags\n    pattern: x\n    flags: iz\n",
            "pack.yml:5:12: rule r.flags: unknown flag 'z'; use i, m or s",
        ),
        (
            "  - id: r.group\n    pattern: 'x(y)'\n    group: 2\n",
            "pack.yml:5:12: rule r.group: group must be a capture group number of the pattern, got 2",
        ),
        ("  - id: r.keys\n    keys: []\n", "pack.yml:4:11: rule r.keys: keys must be a list of key-name patterns"),
        (
            "  - id: r.keys\n    keys: ['pass(']\n",
            "pack.yml:4:12: rule r.keys: invalid key pattern 'pass(': missing ) at position 5",
        ),
        (
            "  - id: r.last\n    detector: email\n    action: mask\n    keep_last: -1\n",
            "pack.yml:6:16: rule r.last: keep_last must be a non-negative integer, got -1",
        ),
        ("  - detector: email\n", "pack.yml:3:5: rules[0]: needs an `id` made of letters, digits and _.:@-"),
        (
            "  - id: 'bad id!'\n    detector: email\n",
            "pack.yml:3:9: rule bad id!: needs an `id` made of letters, digits and _.:@-",
        ),
    ],
)
def test_rule_problem(rule: str, expected: str) -> None:
    """Each kind of mistake is reported with the file, the rule's line and its id."""
    assert problems(f"pack: p\nrules:\n{rule}") == [expected]


def test_duplicate_ids() -> None:
    """A duplicate id is reported on the second rule, naming the first one's line."""
    text = (
        "rules:\n"
        "  - id: r.dup\n    detector: email\n"
        "  - id: r.other\n    detector: phone\n"
        "  - id: r.dup\n    detector: iban\n"
    )
    assert problems(text) == ["pack.yml:6:9: rule r.dup: duplicate id (also on line 2); give each rule its own id"]


def test_problem_lines_follow_the_file() -> None:
    """Line and column point at the offending value, comments and blank lines included."""
    text = (
        "# header comment\n"
        "pack: p\n"
        "\n"
        "rules:\n"
        "  - id: ok.one\n"
        "    detector: email\n"
        "\n"
        "  # a comment\n"
        "  - id: bad.two\n"
        "    detector: nope\n"
    )
    assert problems(text) == [
        f"pack.yml:10:15: rule bad.two: unknown detector 'nope'; built-in detectors: {DETECTOR_LIST}"
    ]


def test_several_problems_reported_at_once() -> None:
    """All problems of a file come in one error, in file order."""
    text = (
        "pack: broken\n"
        "rules:\n"
        "  - id: a.detector\n"
        "    detector: emial\n"
        "  - id: a.regex\n"
        "    pattern: '(unclosed'\n"
        "  - id: a.fine\n"
        "    detector: email\n"
        "  - id: a.action\n"
        "    detector: email\n"
        "    action: obliterate\n"
        "  - id: a.fine\n"
        "    detector: phone\n"
        "  - id: a.mask\n"
        "    detector: email\n"
        "    action: mask\n"
        "    mask_char: '##'\n"
    )
    assert problems(text, "/etc/relay/broken.yml") == [
        "/etc/relay/broken.yml:4:15: rule a.detector: unknown detector 'emial'; did you mean 'email'?",
        "/etc/relay/broken.yml:6:14: rule a.regex: invalid pattern '(unclosed': missing ) at position 9",
        "/etc/relay/broken.yml:11:13: rule a.action: action must be one of remove, replace, mask, hash, keep, "
        "got 'obliterate'",
        "/etc/relay/broken.yml:12:9: rule a.fine: duplicate id (also on line 7); give each rule its own id",
        "/etc/relay/broken.yml:17:16: rule a.mask: mask_char must be one character, got '##'",
    ]


def test_several_problems_in_one_rule() -> None:
    """One rule with several mistakes gets one problem per mistake, in file order."""
    text = "rules:\n  - id: r.many\n    detector: nope\n    action: mask\n    mask_char: '##'\n    colour: red\n"
    assert problems(text) == [
        f"pack.yml:3:15: rule r.many: unknown detector 'nope'; built-in detectors: {DETECTOR_LIST}",
        "pack.yml:5:16: rule r.many: mask_char must be one character, got '##'",
        "pack.yml:6:5: rule r.many: unknown key 'colour'; valid keys are: id, description, detector, pattern, group, "
        "keys, selectors, exclude, action, with, mask_char, keep_last, flags, mode",
    ]


# -- file-level problems --------------------------------------------------------------------------


def test_invalid_yaml_has_a_line() -> None:
    """Broken YAML is reported with the line of the syntax error."""
    [problem] = problems("pack: p\nrules:\n  - id: x\n    detector: [email\n")
    assert problem == (
        "pack.yml:5:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts at line 4, column 15)"
    )


def test_not_a_mapping() -> None:
    """A rule file must be a mapping."""
    assert problems("- a\n- b\n") == ["pack.yml:1:1: a rule file must be a mapping with `rules:`"]


def test_rules_not_a_list() -> None:
    """`rules` must be a list."""
    assert problems("rules: x\n") == ["pack.yml:1:8: rules: must be a list of rules"]


def test_rule_not_a_mapping_has_a_line() -> None:
    """A rule that is not a mapping is reported with its line too."""
    assert problems("pack: p\nrules:\n  - just a string\n") == [
        "pack.yml:3:5: rules[0]: each rule must be a mapping (start it with `- id: ...`)"
    ]


def test_unknown_pack_key() -> None:
    """Unknown top-level keys are reported."""
    assert problems("rules: []\nrulez: []\n") == ["pack.yml:2:1: unknown top-level key 'rulez'; did you mean 'rules'?"]


def test_test_case_problems() -> None:
    """Test cases need an input and something to check, and only known keys."""
    text = "rules: []\ntests:\n  - name: no input\n  - input: {}\n  - input: {}\n    expect: {}\n    bogus: 1\n"
    assert problems(text) == [
        "pack.yml:3:5: tests[0]: each test needs an `input`",
        "pack.yml:4:5: tests[1]: needs `expect`, `absent` or `present`",
        "pack.yml:7:5: tests[2]: unknown key 'bogus'; valid: name, input, expect, absent, present",
    ]


def test_unknown_pack_name() -> None:
    """A name that is not a shipped pack (and not a path) says which packs exist."""
    with pytest.raises(RuleError) as info:
        load_pack("no_such_pack")
    assert info.value.problems == [
        f"no_such_pack: no shipped rule pack by that name (shipped: {', '.join(shipped_packs())})"
    ]


def test_missing_rule_file(tmp_path: Path) -> None:
    """A rule file path that does not exist is reported with the path."""
    path = tmp_path / "missing.yml"
    with pytest.raises(RuleError) as info:
        load_pack(str(path))
    assert info.value.problems == [f"{path}: cannot read rule file: No such file or directory"]


def test_relative_path_resolved_against_base(tmp_path: Path) -> None:
    """A relative rule file path is resolved against the given base directory."""
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "mine.yml").write_text("pack: mine\nrules:\n  - id: m.email\n    detector: email\n")
    pack = load_pack("packs/mine.yml", tmp_path)
    assert (pack.name, [r.id for r in pack.rules], pack.source) == (
        "mine",
        ["m.email"],
        str(tmp_path / "packs" / "mine.yml"),
    )


# -- what a valid pack compiles to -----------------------------------------------------------------


def test_defaults_apply_and_rules_override_them() -> None:
    """`defaults` supply action, selectors and exclude; a rule's own values win."""
    pack = parse_pack(
        "pack: p\n"
        "description: A pack.\n"
        "defaults:\n"
        "  action: remove\n"
        "  selectors: [extra]\n"
        "  exclude: [extra.safe]\n"
        "rules:\n"
        "  - id: r.default\n"
        "    detector: email\n"
        "  - id: r.own\n"
        "    detector: phone\n"
        "    action: mask\n"
        "    selectors: [user]\n",
        "p.yml",
    )
    first, second = pack.rules
    assert (pack.name, pack.description) == ("p", "A pack.")
    assert first.action.type is ActionType.REMOVE
    assert first.selector.matches(f"extra{SEP}note")
    assert not first.selector.matches(f"extra{SEP}safe{SEP}note")
    assert not first.selector.matches("user")
    assert second.action.type is ActionType.MASK
    assert second.selector.matches(f"user{SEP}email")
    assert not second.selector.matches(f"extra{SEP}note")
    assert not second.selector.matches(f"extra{SEP}safe")


def test_pack_name_defaults_to_file_stem(tmp_path: Path) -> None:
    """Without `pack:`, a pack is named after its file."""
    path = tmp_path / "team_rules.yml"
    path.write_text("rules:\n  - id: t.email\n    detector: email\n")
    assert load_pack(str(path)).name == "team_rules"


def test_flags_and_key_patterns_compile() -> None:
    """`flags: i` makes a pattern case-insensitive; key patterns match normalized key names."""
    pack = parse_pack(
        "rules:\n"
        "  - id: r.pat\n    pattern: 'secret-\\d+'\n    flags: i\n"
        "  - id: r.keys\n    keys: [user_token, 'pin_\\d']\n",
        "p.yml",
    )
    pattern_rule, keys_rule = pack.rules
    assert pattern_rule.pattern is not None and pattern_rule.pattern.search("SECRET-42") is not None
    assert keys_rule.keys is not None
    assert keys_rule.keys.fullmatch("usertoken") is not None
    assert keys_rule.keys.fullmatch("pin1") is not None
    assert keys_rule.keys.fullmatch("usertokens") is None


def test_shipped_packs_load() -> None:
    """Every shipped pack loads without problems and has rules and tests."""
    assert {"secrets", "pii"} <= set(shipped_packs())
    for name in shipped_packs():
        pack = load_pack(name)
        assert pack.rules, name
        assert pack.tests, name


# -- relay check-config ----------------------------------------------------------------------------

BROKEN_PACK = "pack: broken\nrules:\n  - id: bad.detector\n    detector: emial\n"


def config_text(rules: str, extra: str = "") -> str:
    """A minimal valid config with these top-level rules."""
    return (
        f'upstream: {{url: "http://127.0.0.1:9"}}\nrules: {rules}\nprojects:\n  - id: 42\n    keys: ["{KEY}"]\n{extra}'
    )


def test_check_config_reports_broken_rule_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config exits 2 and names the config key and the rule file's line and rule."""
    (tmp_path / "broken.yml").write_text(BROKEN_PACK)
    config = tmp_path / "relay.yml"
    config.write_text(config_text("[./broken.yml, secrets]"))
    assert main(["check-config", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{config}: 1 problem(s) in the config:",
        f"  {config}: rules[0]: {tmp_path / 'broken.yml'}:4:15: rule bad.detector: unknown detector 'emial'; "
        "did you mean 'email'?",
    ]


def test_check_config_reports_project_rule_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken rule file named by a project is reported under `projects[i].rules[j]`."""
    (tmp_path / "broken.yml").write_text(BROKEN_PACK)
    config = tmp_path / "relay.yml"
    config.write_text(config_text("[secrets]", "    rules: [pii, ./broken.yml]\n"))
    assert main(["check-config", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        f"  {config}: projects[0].rules[1]: {tmp_path / 'broken.yml'}:4:15: rule bad.detector: unknown detector 'emial'"
        in err
    )


def test_check_config_reports_unknown_pack_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown pack name is a config problem at its key."""
    config = tmp_path / "relay.yml"
    config.write_text(config_text("[secrets, pi]"))
    assert main(["check-config", "--config", str(config)]) == 2
    assert f"  {config}: rules[1]: pi: no shipped rule pack by that name" in capsys.readouterr().err


def test_check_config_process_exit_code(tmp_path: Path) -> None:
    """`python -m relay check-config` as a process exits 2 and prints the rule file problem on stderr."""
    (tmp_path / "broken.yml").write_text(BROKEN_PACK)
    (tmp_path / "relay.yml").write_text(config_text("[./broken.yml]"))
    env = {k: v for k, v in os.environ.items() if k != "RELAY_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "check-config", "--config", "relay.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "relay.yml: rules[0]: broken.yml:4:15: rule bad.detector: unknown detector 'emial'" in result.stderr


HASH_PACK = "pack: hashing\nrules:\n  - id: h.email\n    detector: email\n    action: hash\n"


def test_hash_rule_needs_hash_key(tmp_path: Path) -> None:
    """A rule with `action: hash` and no scrub.hash_key is a config problem naming the rule and its file."""
    (tmp_path / "hash.yml").write_text(HASH_PACK)
    source = str(tmp_path / "relay.yml")
    with pytest.raises(ConfigError) as info:
        parse_config(config_text("[./hash.yml]"), source, {})
    assert info.value.problems == [
        f"{source}: scrub.hash_key: required because rule h.email ({tmp_path / 'hash.yml'}:3) uses action hash; "
        "set it to ${RELAY_HASH_KEY}"
    ]


def test_hash_rule_with_hash_key_from_environment(tmp_path: Path) -> None:
    """With scrub.hash_key taken from the environment, a hash rule is fine."""
    (tmp_path / "hash.yml").write_text(HASH_PACK)
    config = parse_config(
        config_text("[./hash.yml]", "scrub: {hash_key: '${RELAY_HASH_KEY}'}\n"),
        str(tmp_path / "relay.yml"),
        {"RELAY_HASH_KEY": "s3cret-key"},
    )
    assert config.scrub.hash_key == "s3cret-key"
    assert config.rules == ("./hash.yml",)
