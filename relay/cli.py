"""The `relay` command: `relay run`, `relay check-config`, `relay scrub` and `relay rules ...`."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence

from . import __version__, eventloop
from .config import Config, default_config_path, load_config
from .errors import ConfigError
from .logs import configure_logging, masked
from .rules.commands import add_rules_parser, run_rules_command
from .units import format_size


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="relay", description="PII-scrubbing relay proxy for Sentry SDKs.")
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    subs = {}
    for name, help_text in (
        ("run", "start the relay"),
        ("check-config", "validate a config file and print a summary"),
        ("scrub", "scrub JSON events (one per line) with a project's rules, to stdout"),
    ):
        sub = subs[name] = commands.add_parser(name, help=help_text)
        sub.add_argument("--config", "-c", default=None, help="config file (default: $RELAY_CONFIG, then relay.yml)")
    subs["run"].add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        metavar="N",
        help="processes sharing the listen port, each with its own spool partition (default: config `workers`, 1)",
    )
    subs["scrub"].add_argument("--project", type=int, default=None, help="use this project's rules")
    subs["scrub"].add_argument("file", nargs="?", default="-", help="input file, or - for stdin (default)")
    add_rules_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "rules":
        return run_rules_command(args)
    path = args.config or default_config_path()
    try:
        if args.command == "scrub" and args.config is None and not os.path.exists(path):
            config = Config()  # no config at hand: the default rule packs
        else:
            config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s) in the config:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {_no_credentials(problem)}", file=sys.stderr)  # a DSN's key or a URL's password is never printed
        return 2
    if args.command == "check-config":
        print(masked(summarize(config)))  # (the upstream's and Redis's URLs may hold credentials)
        return 0
    if args.command == "scrub":
        from .scrub.offline import run_scrub

        try:
            return run_scrub(config, args.project, args.file)
        except OSError as exc:
            print(f"relay scrub: {exc}", file=sys.stderr)
            return 2
    workers = args.workers or config.workers
    if workers > 1:
        from .workers import check_workers, run_workers

        for problem in check_workers(config, workers):
            print(masked(problem), file=sys.stderr)
            return 2
        configure_logging(config.log.level, config.log.format)
        return run_workers(config, workers)
    configure_logging(config.log.level, config.log.format)
    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(_serve(config))
    return 0


# The user part of a URL-ish value even without a scheme (`key@o1.ingest.sentry.io/42`, `htps//key@host/1`).
_USER_PART = re.compile(r"[^\s'\"/@]{1,512}@(?=[\w.-]+[/:]|[\w-]+\.[\w.-]+)")


def _no_credentials(text: str) -> str:
    """A config problem as printed: credentials in the DSNs and URLs it quotes replaced, however malformed."""
    return _USER_PART.sub("[Filtered]@", masked(text))


def _worker_count(text: str) -> int:
    """`--workers`: a whole number of at least 1."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


async def _serve(config: Config) -> None:
    from .server import serve

    await serve(config)


def summarize(config: Config) -> str:
    """A short human summary of a valid config."""
    lines = [
        f"{config.source}: OK",
        f"  listen: {config.listen.host}:{config.listen.port}",
        f"  upstream: {config.upstream.url}"
        f" (timeout {config.upstream.timeout:g}s, concurrency {config.upstream.concurrency})",
        f"  unknown_projects: {config.unknown_projects.value}",
        f"  queue: {config.queue.max_envelopes} envelopes / {format_size(config.queue.max_bytes)}",
        f"  rules: {', '.join(config.rules) or '(none: scrubbing off)'}",
        f"  workers: {config.workers}",
        f"  ratelimit: {config.ratelimit.backend}"
        + (
            f" ({config.ratelimit.url}, timeout {config.ratelimit.timeout:g}s)"
            if config.ratelimit.backend == "redis"
            else ""
        ),
        f"  client reports: {f'every {config.outcomes.interval:g}s' if config.outcomes.client_reports else 'off'}",
        f"  projects: {len(config.projects)}",
    ]
    for project in config.projects:
        destination = (
            str(project.upstream_dsn.base_url + "/" + project.upstream_dsn.project_id)
            if project.upstream_dsn
            else config.upstream.url
        )
        state = " (disabled)" if project.disabled else ""
        if project.rules is not None:
            state += f" rules: {', '.join(project.rules) or '(none)'}"
        lines.append(f"    - {project.id}: {len(project.keys)} key(s) -> {destination}{state}")
        for quota in project.quotas:
            what = ", ".join(sorted(quota.categories)) or "all categories"
            burst = f", burst {quota.burst}" if quota.burst else ""
            lines.append(f"        quota {quota.id}: {quota.limit} {what} per {quota.window}s per {quota.scope}{burst}")
        if project.sampling is not None:
            rates = ", ".join(f"{name} {rate:g}" for name, rate in project.sampling.rates) or "no category rates"
            lines.append(f"        sampling: {rates}; {len(project.sampling.rules)} rule(s)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
