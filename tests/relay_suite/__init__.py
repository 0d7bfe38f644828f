"""Sentry Relay's own integration suite (getsentry/relay `tests/integration/`), ported as black-box tests.

Each module ports one Relay module and names the commit read. Relay tests that cannot apply to a scrubbing
proxy are skipped with the reason; behaviours where this relay differs are strict xfails naming the gap.
"""
