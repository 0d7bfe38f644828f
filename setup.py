"""Builds the scrub engine's optional C part (relay.scrub._walker); everything else is in pyproject.toml.

`optional=True`: without a compiler the install still succeeds, and the engine uses its pure-Python twins.
"""

from setuptools import Extension, setup

# The walk, a new string's result, where detectors match, where their matches can begin, the digit
# validators, and the family triggers.
SOURCES = [
    f"relay/scrub/{name}.c" for name in ("_walker", "_compute", "_spans", "_scans", "_validators", "_triggers")
]
HEADERS = ["relay/scrub/_walker.h", "relay/scrub/_triggers.h"]

setup(ext_modules=[Extension("relay.scrub._walker", SOURCES, depends=HEADERS, optional=True)])
