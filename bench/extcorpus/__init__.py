"""An independent labeled scrubbing corpus, built from outside sources (bench/README-scrub.md).

Values come from Faker's locale providers, libphonenumber's example numbers, python-stdnum's validators
(valid identifiers, and checksum-broken ones as decoys) and gitleaks' rules (from a checkout, when one is at
hand). They are written into real payloads of the sentry-python and @sentry/node SDKs at many placements;
each label says kind, region, placement and the form the value takes there.
"""

from .build import CORPUS, META, build, load

__all__ = ["CORPUS", "META", "build", "load"]
