"""`relay rules test`: run the `tests:` blocks of rule files, pytest-style, optionally writing JUnit XML.

Each file's tests run against that file's rules alone (a shipped pack against itself, your file
against your file), so a test says what *these* rules do, whatever else a config combines them with.
A test means what it means on a hot reload: both run cases through `verify.run_case`.
"""

from __future__ import annotations

import difflib
import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..scrub.engine import Scrubber
from .check import RuleFile, read_rule_files
from .model import RuleTest
from .verify import pack_scrubber, run_case

_MAX_PLACES = 3
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one test: its name and place, how long it took, and what went wrong (empty: passed)."""

    name: str
    line: int
    seconds: float
    problems: list[str] = field(default_factory=list)  # one line each
    details: str = ""  # the diff, or where a value leaked, for a person to read

    @property
    def passed(self) -> bool:
        """Whether the output was as the test expects."""
        return not self.problems


@dataclass(slots=True)
class FileResult:
    """One rule file's tests, or why they could not run."""

    file: RuleFile
    pack_name: str
    cases: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the file is invalid: its errors
    seconds: float = 0.0


def run_tests(paths: list[str], junit: str | None) -> int:
    """Run the tests in rule files or packs (default: the shipped packs); 0 all pass, 1 failures, 2 invalid files."""
    started = time.perf_counter()
    results = [_run_file(file) for file in read_rule_files(paths)]
    elapsed = time.perf_counter() - started
    passed = sum(c.passed for r in results for c in r.cases)
    failed = sum(not c.passed for r in results for c in r.cases)
    invalid = sum(bool(r.problems) for r in results)
    summary = f"{passed} passed, {failed} failed"
    if invalid:
        summary += f", {invalid} invalid rule file{'s' if invalid > 1 else ''}"
    print(f"{summary} in {elapsed:.2f}s")
    if junit is not None:
        try:
            write_junit(Path(junit), results, elapsed)
        except OSError as exc:
            print(f"{junit}: cannot write the JUnit report: {exc.strerror or exc}")
            return 2
    if invalid:
        return 2
    return 1 if failed else 0


def _run_file(file: RuleFile) -> FileResult:
    report = file.report
    if report is None:
        print(file.failure)
        return FileResult(file, file.display, problems=[file.failure])
    pack = report.pack
    if pack is None:
        errors = [str(p) for p in report.errors]
        print(f"{file.display}: not tested, the rule file has {len(errors)} error{'s' if len(errors) > 1 else ''}:")
        for problem in errors:
            print(problem)
        return FileResult(file, file.display, problems=errors)
    result = FileResult(file, pack.name)
    if not pack.tests:
        print(f"{file.display}: no tests (add a `tests:` block to show what the rules do)")
    started = time.perf_counter()
    scrubber = pack_scrubber(pack)
    for case in pack.tests:
        outcome = run_one(scrubber, case, file.display)
        result.cases.append(outcome)
        print(f"{file.display}::{case.name} {'PASSED' if outcome.passed else 'FAILED'}")
        if not outcome.passed:
            print(_indent(outcome.details))
    result.seconds = time.perf_counter() - started
    return result


def run_one(scrubber: Scrubber, case: RuleTest, source: str) -> CaseResult:
    """Run one test case and explain any failure: a diff against `expect`, where `absent` values leaked."""
    started = time.perf_counter()
    out, problems = run_case(scrubber, case)
    seconds = time.perf_counter() - started
    if not problems:
        return CaseResult(case.name, case.line, seconds)
    details = [f"{source}:{case.line}: test {case.name!r}"]
    explained: set[str] = set()  # run_case's problems that the lines below say better
    if out is not None and case.expect is not None and out != case.expect:
        explained.add("the output differs from `expect`")
        details.append("the output differs from `expect` (- expected, + actual):")
        details.extend(_diff(case.expect, out))
    for value in case.absent:
        places = [f"{path or 'the text'}: {text!r}" for path, text in _strings(out) if value in text]
        if places:
            explained.add(f"{value!r} is still in the output")
            details.append(f"{value!r} should have been scrubbed but is still in:")
            details.extend(f"  {place}" for place in places[:_MAX_PLACES])
    for value in case.present:
        if out is not None and not any(value in text for _, text in _strings(out)):
            explained.add(f"{value!r} is missing from the output")
            details.append(f"{value!r} should have stayed but was scrubbed:")
            for path, text in [(p, t) for p, t in _strings(case.input) if value in t][:_MAX_PLACES]:
                details.append(f"  {path or 'the text'}: {text!r} became {_lookup(out, path)!r}")
    details[1:1] = [problem for problem in problems if problem not in explained]
    return CaseResult(case.name, case.line, seconds, problems, "\n".join(details))


def _diff(expected: Any, actual: Any) -> list[str]:
    def pretty(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    lines = difflib.unified_diff(pretty(expected), pretty(actual), "expected", "actual", lineterm="")
    return [line for line in lines if not line.startswith(("---", "+++"))]


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a JSON value with its dotted path, keys included (a key's path is its parent's)."""
    if isinstance(value, str):
        return [(path, value)]
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((path, key))
            found.extend(_strings(child, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_strings(child, f"{path}.{index}" if path else str(index)))
    return found


def _lookup(value: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def write_junit(path: Path, results: list[FileResult], elapsed: float) -> None:
    """Write JUnit XML (one testsuite per rule file) as Jenkins and GitLab read it."""
    cases = [c for r in results for c in r.cases]
    failures = sum(not c.passed for c in cases)
    errors = sum(bool(r.problems) for r in results)
    root = ET.Element("testsuites", _attrs(name="relay rules test", tests=len(cases) + errors, failures=failures,
                                          errors=errors, time=f"{elapsed:.3f}"))  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    for result in results:
        suite = ET.SubElement(root, "testsuite", _attrs(
            name=result.file.display, tests=len(result.cases) + bool(result.problems),
            failures=sum(not c.passed for c in result.cases), errors=int(bool(result.problems)), skipped=0,
            time=f"{result.seconds:.3f}", timestamp=stamp, hostname=socket.gethostname(),
        ))  # fmt: skip
        if result.problems:
            case = ET.SubElement(suite, "testcase", _attrs(classname=result.pack_name, name="rule file loads",
                                                           file=result.file.display, time="0"))  # fmt: skip
            error = ET.SubElement(case, "error", _attrs(message=result.problems[0], type="RuleError"))
            error.text = _xml_text("\n".join(result.problems))
        for outcome in result.cases:
            case = ET.SubElement(suite, "testcase", _attrs(
                classname=result.pack_name, name=outcome.name, file=result.file.display, line=outcome.line,
                time=f"{outcome.seconds:.3f}",
            ))  # fmt: skip
            if not outcome.passed:
                failure = ET.SubElement(case, "failure", _attrs(message="; ".join(outcome.problems), type="RuleTest"))
                failure.text = _xml_text(outcome.details)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _attrs(**values: object) -> dict[str, str]:
    return {key: _xml_text(str(value)) for key, value in values.items()}


def _xml_text(text: str) -> str:
    """XML 1.0 has no way to write most control characters: show them escaped instead."""
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


__all__ = ["CaseResult", "FileResult", "run_one", "run_tests", "write_junit"]
