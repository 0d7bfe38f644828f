"""`relay rules check`: each kind of problem at its exact file:line:column, summaries and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay.cli import main
from relay.rules import load_pack, shipped_packs

ROOT = Path(__file__).resolve().parents[2]
KEEP_ADVICE = "narrow its selectors to the fields that are safe to keep"
BACKTRACK_ADVICE = (
    "avoid a repeated group that contains another repetition or overlapping alternatives, like (a+)+ or (a|aa)+"
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory, so paths print as they are typed."""
    monkeypatch.chdir(tmp_path)


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """Run `relay rules check ARGS` in-process; return the exit code and the output lines."""
    code = main(["rules", "check", *args])
    return code, capsys.readouterr().out.splitlines()


def write(name: str, text: str) -> str:
    """Write a rule file in the current directory and return its name."""
    Path(name).write_text(text, encoding="utf-8")
    return name


# -- one problem each, at its exact place --------------------------------------------------------

SINGLE_ERRORS = [
    pytest.param(
        "  - id: a.sel\n    detector: email\n    selector: [extra]\n",
        "acme.yml:5:5: rule a.sel: unknown key 'selector'; did you mean 'selectors'?",
        id="unknown key, with the nearest valid key",
    ),
    pytest.param(
        "  - id: a.key\n    detector: email\n    colour: red\n",
        "acme.yml:5:5: rule a.key: unknown key 'colour'; valid keys are: id, description, detector, pattern, group, "
        "keys, selectors, exclude, action, with, mask_char, keep_last, flags, mode",
        id="unknown key, nothing close: the valid keys",
    ),
    pytest.param(
        "  - id: a.det\n    detector: emial\n",
        "acme.yml:4:15: rule a.det: unknown detector 'emial'; did you mean 'email'?",
        id="unknown detector",
    ),
    pytest.param(
        "  - id: a.act\n    detector: email\n    action: replce\n",
        "acme.yml:5:13: rule a.act: action must be one of remove, replace, mask, hash, keep, got 'replce'; "
        "did you mean 'replace'?",
        id="misspelt action",
    ),
    pytest.param(
        "  - id: a.re\n    pattern: 'CUST-(\\d{8}'\n",
        "acme.yml:4:14: rule a.re: invalid pattern 'CUST-(\\d{8}': missing ) at position 11",
        id="pattern that does not compile",
    ),
    pytest.param(
        "  - id: a.slow\n    pattern: '(x|xx)+y'\n",
        f"acme.yml:4:14: rule a.slow: pattern '(x|xx)+y' backtracks catastrophically (timed out on a short string), "
        f"so relay refuses it; {BACKTRACK_ADVICE}",
        id="pattern that times out at load: an error, since relay refuses it",
    ),
    pytest.param(
        "  - id: a.sel\n    detector: email\n    selectors: [extra, $frames.vars]\n",
        "acme.yml:5:24: rule a.sel: unknown type shortcut '$frames' in selector '$frames.vars'; "
        "did you mean '$frame.vars'?",
        id="selector with a misspelt shortcut, pointing at the list item",
    ),
    pytest.param(
        "  - id: a.sel\n    detector: email\n    exclude: ['a..b']\n",
        "acme.yml:5:15: rule a.sel: empty segment in selector 'a..b'",
        id="selector with an empty segment",
    ),
    pytest.param(
        "  - id: a.dup\n    detector: email\n  - id: a.dup\n    detector: phone\n",
        "acme.yml:5:9: rule a.dup: duplicate id (also on line 3); give each rule its own id",
        id="duplicate id in one file",
    ),
    pytest.param(
        "  - id: a.none\n    action: replace\n",
        "acme.yml:3:5: rule a.none: needs one of `detector`, `pattern` or `keys` (only `keep` rules may omit it)",
        id="rule that detects nothing",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), SINGLE_ERRORS)
def test_single_error(capsys: pytest.CaptureFixture[str], rules: str, expected: str) -> None:
    """Each error is one line at the offending key or value, then the summary; exit 1."""
    write("acme.yml", f"pack: acme\nrules:\n{rules}")
    assert check(capsys, "acme.yml") == (1, [expected, "1 error, 0 warnings in 1 file"])


SINGLE_WARNINGS = [
    pytest.param(
        "  - id: a.slow\n    pattern: '(.*,){5}x'\n",
        "acme.yml:4:14: rule a.slow: warning: pattern '(.*,){5}x' is prone to catastrophic backtracking: "
        "on a 2 KB text like ',,,,,,,,,,,,...' it took over 50 ms, and an event that takes too long to scrub is "
        "dropped; rewrite repeated groups that contain another repetition, like (\\w+\\.)+, or alternatives that "
        "overlap, like (a|aa)+",
        id="pattern prone to catastrophic backtracking",
    ),
    pytest.param(
        "  - id: a.email\n    detector: email\n  - id: a.all\n    selectors: ['**']\n    action: keep\n",
        f"acme.yml:6:17: rule a.all: warning: this keep rule leaves untouched everything that a.email looks at, "
        f"so it can never redact anything; {KEEP_ADVICE}",
        id="keep rule over everything shadows a detector",
    ),
    pytest.param(
        "  - id: a.note\n    detector: email\n    selectors: [extra.note]\n"
        "  - id: a.extra\n    selectors: [extra]\n    action: keep\n",
        f"acme.yml:7:17: rule a.extra: warning: this keep rule leaves untouched everything that a.note looks at, "
        f"so it can never redact anything; {KEEP_ADVICE}",
        id="keep rule over a parent path shadows a detector below it",
    ),
    pytest.param(
        "  - id: a.hdr\n    keys: [x_token]\n    selectors: [reqest.headers]\n",
        "acme.yml:5:17: rule a.hdr: warning: selector 'reqest.headers' probably selects nothing: events have no "
        "'reqest'; did you mean 'request'?",
        id="selector that starts with a misspelt event field",
    ),
    pytest.param(
        "  - id: a.twice\n    detector: email\n    detector: phone\n",
        "acme.yml:5:5: rule a.twice: warning: key 'detector' is written twice (first on line 4); only this one counts",
        id="key written twice",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), SINGLE_WARNINGS)
def test_single_warning(capsys: pytest.CaptureFixture[str], rules: str, expected: str) -> None:
    """A warning is reported like an error but marked `warning:`, and alone it exits 0."""
    write("acme.yml", f"pack: acme\nrules:\n{rules}")
    assert check(capsys, "acme.yml") == (0, [expected, "0 errors, 1 warning in 1 file"])


@pytest.mark.parametrize(
    "rules",
    [
        "  - id: a.email\n    detector: email\n  - id: a.debug\n    selectors: [extra.debug]\n    action: keep\n",
        "  - id: a.email\n    detector: email\n    exclude: [extra]\n  - id: a.extra\n    selectors: [extra]\n"
        "    action: keep\n",
        "  - id: a.email\n    detector: email\n  - id: a.most\n    selectors: ['**']\n    exclude: [message]\n"
        "    action: keep\n",
        "  - id: a.email\n    detector: email\n    selectors: [extra]\n  - id: a.ok\n    pattern: 'ORD-\\d+'\n"
        "    action: keep\n",
    ],
    ids=["narrow keep", "detector excludes the kept subtree", "keep spares a field", "keep by pattern"],
)
def test_keep_rules_that_leave_work_are_fine(capsys: pytest.CaptureFixture[str], rules: str) -> None:
    """A keep rule that leaves some place for the detector to look at is not reported."""
    write("acme.yml", f"pack: acme\nrules:\n{rules}")
    assert check(capsys, "acme.yml") == (0, ["0 errors, 0 warnings in 1 file"])


def test_file_level_problems(capsys: pytest.CaptureFixture[str]) -> None:
    """Top-level and `defaults` keys are checked too; a mistake in defaults is reported once, there."""
    write(
        "acme.yml",
        "pack: acme\n"
        "default:\n"
        "  action: mask\n"
        "defaults:\n"
        "  with: '[x]'\n"
        "  action: obliterate\n"
        "rules:\n"
        "  - id: a.one\n"
        "    detector: email\n"
        "  - id: a.two\n"
        "    detector: phone\n",
    )
    assert check(capsys, "acme.yml") == (
        1,
        [
            "acme.yml:2:1: unknown top-level key 'default'; did you mean 'defaults'?",
            "acme.yml:5:3: defaults: unknown key 'with'; only these can have defaults: action, selectors, exclude, "
            "mode",
            "acme.yml:6:11: defaults: action must be one of remove, replace, mask, hash, keep, got 'obliterate'",
            "3 errors, 0 warnings in 1 file",
        ],
    )


def test_invalid_yaml_points_at_the_character(capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML syntax error gives line and column, and a hint for the usual cause."""
    write("acme.yml", 'pack: acme\nrules:\n  - id: a.re\n    pattern: "\\d+"\n')
    assert check(capsys, "acme.yml") == (
        1,
        [
            "acme.yml:4:16: invalid YAML: found unknown escape character 'd' (while scanning a double-quoted scalar "
            "that starts at line 4, column 14); write patterns in single quotes ('\\d+'), where a backslash is just "
            "a backslash",
            "1 error, 0 warnings in 1 file",
        ],
    )


def test_tests_block_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """Each `tests:` entry needs an input and something to compare, with known keys and the right types."""
    write(
        "acme.yml",
        "pack: acme\n"
        "rules:\n"
        "  - id: a.email\n"
        "    detector: email\n"
        "tests:\n"
        "  - name: no input\n"
        "  - input: {message: x}\n"
        "  - input: {message: x}\n"
        "    expected: {message: x}\n"
        "  - input: {message: x}\n"
        "    absent: {a: 1}\n"
        "  - input: {message: x}\n"
        "    expect: x\n"
        "  - name: twin\n"
        "    input: {message: x}\n"
        "    present: [x]\n"
        "  - name: twin\n"
        "    input: {message: y}\n"
        "    present: [y]\n",
    )
    assert check(capsys, "acme.yml") == (
        1,
        [
            "acme.yml:6:5: tests[0]: each test needs an `input`",
            "acme.yml:7:5: tests[1]: needs `expect`, `absent` or `present`",
            "acme.yml:8:5: tests[2]: needs `expect`, `absent` or `present`",
            "acme.yml:9:5: tests[2]: unknown key 'expected'; did you mean 'expect'?",
            "acme.yml:11:13: tests[3]: absent must be a text or a list of texts, got {'a': 1}",
            "acme.yml:13:13: tests[4]: expect must be an event (a mapping), like the input",
            "acme.yml:17:11: tests[6]: warning: test name 'twin' is also used on line 14",
            "6 errors, 1 warning in 1 file",
        ],
    )


# -- several files together ------------------------------------------------------------------------


def test_duplicate_id_across_files(capsys: pytest.CaptureFixture[str]) -> None:
    """Files checked together are one rule set: an id used in two of them is an error in the second."""
    write("a.yml", "rules:\n  - id: acme.email\n    detector: email\n")
    write("b.yml", "rules:\n  - id: b.phone\n    detector: phone\n  - id: acme.email\n    detector: email\n")
    assert check(capsys, "a.yml", "b.yml") == (
        1,
        [
            "b.yml:4:9: rule acme.email: duplicate id: a.yml:2 already has a rule acme.email; ids must be unique "
            "across packs",
            "1 error, 0 warnings in 2 files",
        ],
    )


def test_keep_rule_shadows_a_shipped_pack(capsys: pytest.CaptureFixture[str]) -> None:
    """A keep-everything rule in one file silences the detectors of the packs checked with it."""
    write("keep.yml", "rules:\n  - id: keep.all\n    action: keep\n")
    code, lines = check(capsys, "keep.yml", "secrets")
    more = len(load_pack("secrets").rules) - 5
    assert code == 0
    assert lines == [
        "keep.yml:2:5: rule keep.all: warning: this keep rule leaves untouched everything that "
        "secrets.sensitive_keys, secrets.pem_private_key, secrets.auth_header, secrets.url_credentials, "
        f"secrets.key_value and {more} more look at, so they can never redact anything; {KEEP_ADVICE}",
        "0 errors, 1 warning in 2 files",
    ]


def test_broken_file_reports_everything_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """A file with many mistakes gets all of them, errors and warnings, in file order, and a summary."""
    write(
        "broken.yml",
        "pack: acme\n"
        "rules:\n"
        "  - id: acme.customer_id\n"
        "    pattern: 'CUST-(\\d{8}'\n"
        "    action: mask\n"
        "  - id: acme.email\n"
        "    detector: emial\n"
        "    selector: [$frame.vars]\n"
        "  - id: acme.csv\n"
        "    pattern: '(.*,){5}x'\n"
        "  - id: acme.email\n"
        "    detector: email\n"
        "    selectors: [reqest.headers]\n",
    )
    write("other.yml", "rules:\n  - id: acme.csv\n    detector: phone\n")
    code, lines = check(capsys, "broken.yml", "other.yml")
    assert code == 1
    assert [line.split(": ", 2)[:2] for line in lines[:-1]] == [
        ["broken.yml:4:14", "rule acme.customer_id"],
        ["broken.yml:7:15", "rule acme.email"],
        ["broken.yml:8:5", "rule acme.email"],
        ["broken.yml:10:14", "rule acme.csv"],
        ["broken.yml:11:9", "rule acme.email"],
        ["broken.yml:13:17", "rule acme.email"],
        ["other.yml:2:9", "rule acme.csv"],
    ]
    assert lines[-1] == "5 errors, 2 warnings in 2 files"


# -- what gets checked, and exit codes -------------------------------------------------------------


def test_shipped_packs_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """With no paths the shipped packs are checked, together, and they have no problems at all."""
    assert check(capsys) == (0, [f"0 errors, 0 warnings in {len(shipped_packs())} files"])


def test_pack_names_and_directories(capsys: pytest.CaptureFixture[str]) -> None:
    """A pack name checks that shipped pack; a directory checks every rule file in it."""
    Path("packs").mkdir()
    write("packs/a.yml", "rules:\n  - id: a.email\n    detector: email\n")
    write("packs/b.yaml", "rules:\n  - id: b.phone\n    detector: phone\n")
    write("packs/notes.txt", "not a rule file\n")
    assert check(capsys, "pii", "packs") == (0, ["0 errors, 0 warnings in 3 files"])


def test_unreadable_files_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file or unknown pack name is reported and exits 2, after checking the rest."""
    write("bad.yml", "rules:\n  - id: a.det\n    detector: emial\n")
    code, lines = check(capsys, "missing.yml", "nosuchpack", "bad.yml")
    assert code == 2
    assert lines == [
        "missing.yml: cannot read rule file: No such file or directory",
        f"nosuchpack: no shipped rule pack by that name (shipped: {', '.join(shipped_packs())})",
        "bad.yml:3:15: rule a.det: unknown detector 'emial'; did you mean 'email'?",
        "3 errors, 0 warnings in 3 files",
    ]


def test_check_as_a_process(tmp_path: Path) -> None:
    """`python -m relay rules check` prints problems on stdout and exits 1 on errors."""
    write("acme.yml", "pack: acme\nrules:\n  - id: a.sel\n    detector: email\n    selector: [extra]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "relay", "rules", "check", "acme.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines() == [
        "acme.yml:5:5: rule a.sel: unknown key 'selector'; did you mean 'selectors'?",
        "1 error, 0 warnings in 1 file",
    ]
