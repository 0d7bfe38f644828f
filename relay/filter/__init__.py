"""Inbound filters and central fingerprint rules: drop the noise before it costs anything."""

from .fingerprints import fingerprint_for
from .inbound import matching_filter
from .stage import FilterStage

__all__ = ["FilterStage", "fingerprint_for", "matching_filter"]
