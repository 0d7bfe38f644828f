"""`relay rules test`: pytest-like lines, readable diffs, JUnit XML, exit codes, and the shipped packs pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from relay.cli import main
from relay.rules import load_pack, shipped_packs

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed(, \d+ invalid rule files?)? in \d+\.\d\ds$")

ACME = """\
pack: acme
rules:
  - id: acme.customer_id
    pattern: 'CUST-\\d{8}'
    action: mask
    keep_last: 4
  - id: acme.email
    detector: email
    selectors: [extra]
tests:
  - name: customer ids are masked
    input: {message: "lookup CUST-12345678 failed", extra: {who: "bob@example.com"}}
    expect: {message: "lookup ****5678 failed", extra: {who: "[email]"}}
  - name: emails in messages are scrubbed
    input: {message: "mail alice@example.com", extra: {note: "CUST-00000001 ok"}}
    absent: [alice@example.com]
    present: ["CUST-00000001"]
  - name: a text input is scrubbed as a message
    input: "customer CUST-12345678"
    expect: "customer *********5678"
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory, so paths print as they are typed."""
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """Run `relay rules test ARGS` in-process; return the exit code and the output lines."""
    code = main(["rules", "test", *args])
    return code, capsys.readouterr().out.splitlines()


def write(name: str, text: str) -> str:
    """Write a rule file in the current directory and return its name."""
    Path(name).write_text(text, encoding="utf-8")
    return name


def test_shipped_packs_pass(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With no paths, every shipped pack's tests run against that pack, one PASSED line each, and exit 0."""
    monkeypatch.chdir(ROOT)
    expected = [f"rules/{name}.yml::{case.name} PASSED" for name in shipped_packs() for case in load_pack(name).tests]
    code, lines = run(capsys)
    assert code == 0
    assert lines[:-1] == expected
    summary = SUMMARY.match(lines[-1])
    assert summary is not None and summary.groups()[:2] == (str(len(expected)), "0")


def test_shipped_packs_test_each_detector() -> None:
    """Every detector rule of a shipped pack is named (by detector or short id) in one of its tests."""
    for name in shipped_packs():
        pack = load_pack(name)
        names = " ".join(case.name for case in pack.tests)
        missing = [
            r.id
            for r in pack.rules
            if r.detector is not None and r.detector.name not in names and r.id.rpartition(".")[2] not in names
        ]
        assert missing == [], f"pack {name}: no test for {missing}"


def test_failures_explained(capsys: pytest.CaptureFixture[str]) -> None:
    """A failing test shows a diff against `expect`, where an `absent` value leaked and what became of `present`."""
    write("acme.yml", ACME)
    code, lines = run(capsys, "acme.yml")
    assert code == 1
    assert lines[:-1] == [
        "acme.yml::customer ids are masked FAILED",
        "    acme.yml:11: test 'customer ids are masked'",
        "    the output differs from `expect` (- expected, + actual):",
        "    @@ -2,5 +2,5 @@",
        '       "extra": {',
        '         "who": "[email]"',
        "       },",
        '    -  "message": "lookup ****5678 failed"',
        '    +  "message": "lookup *********5678 failed"',
        "     }",
        "acme.yml::emails in messages are scrubbed FAILED",
        "    acme.yml:14: test 'emails in messages are scrubbed'",
        "    'alice@example.com' should have been scrubbed but is still in:",
        "      message: 'mail alice@example.com'",
        "    'CUST-00000001' should have stayed but was scrubbed:",
        "      extra.note: 'CUST-00000001 ok' became '*********0001 ok'",
        "acme.yml::a text input is scrubbed as a message PASSED",
    ]
    summary = SUMMARY.match(lines[-1])
    assert summary is not None and summary.groups()[:2] == ("1", "2")


def test_each_file_is_tested_with_its_own_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """Files given together don't share rules in tests: b.yml has no email rule, so its email survives."""
    write("a.yml", "rules:\n  - id: a.email\n    detector: email\n")
    write(
        "b.yml",
        "rules:\n  - id: b.phone\n    detector: phone\n"
        "tests:\n  - name: only phones\n    input: {message: 'a@example.com +44 20 7946 0958'}\n"
        "    expect: {message: 'a@example.com [phone]'}\n",
    )
    code, lines = run(capsys, "a.yml", "b.yml")
    assert (code, lines[:-1]) == (
        0,
        ["a.yml: no tests (add a `tests:` block to show what the rules do)", "b.yml::only phones PASSED"],
    )


def test_audit_rules_are_tested_as_if_enforced(capsys: pytest.CaptureFixture[str]) -> None:
    """A rule in `mode: audit` changes nothing live, but its tests show what it will do once enforced."""
    write(
        "audit.yml",
        "rules:\n  - id: t.email\n    detector: email\n    mode: audit\n"
        "tests:\n  - name: would redact\n    input: {message: 'to a@example.com'}\n"
        "    expect: {message: 'to [email]'}\n",
    )
    code, lines = run(capsys, "audit.yml")
    assert (code, lines[0]) == (0, "audit.yml::would redact PASSED")


def test_invalid_rule_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid file is not tested: its problems are printed as `check` prints them; the others still run."""
    write("bad.yml", "rules:\n  - id: a.det\n    detector: emial\ntests:\n  - input: {message: x}\n    present: [x]\n")
    write(
        "good.yml", "rules:\n  - id: g.email\n    detector: email\ntests:\n  - input: {message: x}\n    present: [x]\n"
    )
    code, lines = run(capsys, "bad.yml", "good.yml", "nosuchpack")
    assert code == 2
    assert lines[:-1] == [
        "bad.yml: not tested, the rule file has 1 error:",
        "bad.yml:3:15: rule a.det: unknown detector 'emial'; did you mean 'email'?",
        "good.yml::tests[0] PASSED",
        f"nosuchpack: no shipped rule pack by that name (shipped: {', '.join(shipped_packs())})",
    ]
    summary = SUMMARY.match(lines[-1])
    assert summary is not None and summary.groups() == ("1", "0", ", 2 invalid rule files")


def test_junit_report(capsys: pytest.CaptureFixture[str]) -> None:
    """--junit writes one testsuite per file and one testcase per test, failures with their explanation."""
    write("acme.yml", ACME)
    write("bad.yml", "rules:\n  - id: a.det\n    detector: emial\n")
    write(
        "odd.yml",
        'rules:\n  - id: o.email\n    detector: email\ntests:\n  - name: "bell \\a in a name"\n'
        "    input: {message: 'ring \\x07'}\n    present: [ring]\n",
    )
    code, _ = run(capsys, "acme.yml", "bad.yml", "odd.yml", "--junit", "reports/ci/rules.xml")
    assert code == 2
    root = ET.parse("reports/ci/rules.xml").getroot()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("name", "tests", "failures", "errors")} == {
        "name": "relay rules test",
        "tests": "5",
        "failures": "2",
        "errors": "1",
    }
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        ("acme.yml", "3", "2", "0"),
        ("bad.yml", "1", "0", "1"),
        ("odd.yml", "1", "0", "0"),
    ]
    cases = suites[0].findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("file"), c.get("line")) for c in cases] == [
        ("acme", "customer ids are masked", "acme.yml", "11"),
        ("acme", "emails in messages are scrubbed", "acme.yml", "14"),
        ("acme", "a text input is scrubbed as a message", "acme.yml", "18"),
    ]
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == "the output differs from `expect`"
    assert failure.text is not None and '+  "message": "lookup *********5678 failed"' in failure.text
    leak = cases[1].find("failure")
    assert leak is not None and leak.get("message") == (
        "'alice@example.com' is still in the output; 'CUST-00000001' is missing from the output"
    )
    assert list(cases[2]) == []
    error = suites[1].find("testcase/error")
    assert error is not None and error.get("type") == "RuleError"
    assert error.get("message") == "bad.yml:3:15: rule a.det: unknown detector 'emial'; did you mean 'email'?"
    odd = suites[2].find("testcase")
    assert odd is not None and odd.get("name") == "bell \\x07 in a name"
    for element in root.iter("testcase"):
        assert float(element.get("time", "x")) >= 0


def test_junit_unwritable(capsys: pytest.CaptureFixture[str]) -> None:
    """A JUnit path that can't be written is reported and exits 2, after the tests ran."""
    Path("taken").mkdir()
    code, lines = run(capsys, "pii", "--junit", "taken")
    assert code == 2
    assert lines[-1] == "taken: cannot write the JUnit report: Is a directory"


def test_test_as_a_process(tmp_path: Path) -> None:
    """`python -m relay rules test --junit` on the shipped packs exits 0 and writes a clean report."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "relay", "rules", "test", "--junit", "report.xml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert all(line.endswith(" PASSED") for line in lines[:-1])
    assert SUMMARY.match(lines[-1]) is not None
    root = ET.parse(tmp_path / "report.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (str(len(lines) - 1), "0", "0")
