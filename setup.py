"""Builds the optional C tree walk of the scrub engine; everything else is in pyproject.toml.

`optional=True`: without a compiler the install still succeeds, and the engine uses its pure-Python walk.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("relay.scrub._walker", ["relay/scrub/_walker.c"], optional=True)])
