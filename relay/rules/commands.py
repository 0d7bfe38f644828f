"""`relay rules ...`: the commands compliance teams use on rule files.

Each subcommand lives in its own module; this one only declares the arguments (a contract) and
dispatches. Exit codes: 0 clean, 1 problems found (failed checks or tests), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_rules_parser(commands: Any) -> None:
    """Register `relay rules` and its subcommands on the top-level subparsers."""
    rules = commands.add_parser("rules", help="check, test, explain and import scrubbing rules")
    sub = rules.add_subparsers(dest="rules_command", required=True)

    check = sub.add_parser("check", help="validate rule files: file:line:column, rule id and a fix for each problem")
    check.add_argument("paths", nargs="*", help="rule files or pack names (default: the shipped packs)")

    test = sub.add_parser("test", help="run the tests: blocks of rule files (and the shipped packs' own)")
    test.add_argument("paths", nargs="*", help="rule files or pack names (default: the shipped packs)")
    test.add_argument("--junit", metavar="FILE", default=None, help="also write JUnit XML for CI systems")

    explain = sub.add_parser("explain", help="show an event before and after a project's rules, redaction by redaction")
    explain.add_argument("event", help="a JSON event file, or - for stdin")
    explain.add_argument("--project", type=int, default=None, help="use this project's rules (default: top-level)")
    explain.add_argument("--config", "-c", default=None, help="config file (default: $RELAY_CONFIG, then relay.yml)")
    explain.add_argument(
        "--rules", action="append", default=None, help="rule packs or files instead of the config's (repeat, or a,b)"
    )
    explain.add_argument("--format", choices=("text", "json"), default="text")

    imp = sub.add_parser("import-sentry", help="convert a Sentry project's data scrubbing settings into a rule file")
    imp.add_argument("pii_config", help="Advanced Data Scrubbing JSON (`rules` and `applications`), or - for none")
    imp.add_argument("--datascrubbing", default=None, help="legacy settings JSON (scrubData, sensitiveFields, ...)")
    imp.add_argument("--output", "-o", default="-", help="where to write the rule file (default: stdout)")
    imp.add_argument("--id-prefix", default="sentry", help="prefix of the generated rule ids")

    fp = sub.add_parser(
        "import-sentry-fingerprints", help="convert Sentry fingerprinting rules (text syntax) into `fingerprints:` YAML"
    )
    fp.add_argument("file", help="the rules text (`error.type:DatabaseError -> database-error`), or - for stdin")
    fp.add_argument("--output", "-o", default="-", help="where to write the YAML (default: stdout)")


def run_rules_command(args: argparse.Namespace) -> int:
    """Run the parsed `relay rules` subcommand; return the exit code."""
    name = args.rules_command
    if name == "check":
        from .check import run_check

        return run_check(args.paths)
    if name == "test":
        from .testing import run_tests

        return run_tests(args.paths, args.junit)
    if name == "explain":
        from .explain import run_explain

        return run_explain(args)
    if name == "import-sentry":
        from .sentry_import import run_import

        return run_import(args)
    if name == "import-sentry-fingerprints":
        from ..filter.sentry_syntax import run_import_fingerprints

        return run_import_fingerprints(args)
    raise AssertionError(f"unknown rules command {name!r}")
