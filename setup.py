"""Builds the scrub engine's optional C parts (tree walk, family triggers); everything else is in pyproject.toml.

`optional=True`: without a compiler the install still succeeds, and the engine uses its pure-Python twins.
"""

from setuptools import Extension, setup

TRIGGERS = "relay/scrub/_triggers.h"  # shared by both
# the walk, a new string's result, where detectors match, where their matches can begin, the digit validators
WALKER = [f"relay/scrub/{name}.c" for name in ("_walker", "_compute", "_spans", "_scans", "_validators")]

setup(
    ext_modules=[
        Extension("relay.scrub._walker", WALKER, depends=[TRIGGERS, "relay/scrub/_walker.h"], optional=True),
        Extension("relay.scrub._triggers", ["relay/scrub/_triggers.c"], depends=[TRIGGERS], optional=True),
    ]
)
