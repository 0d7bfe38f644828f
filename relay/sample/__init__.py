"""Sampling: per-category rates and ordered rules, decided the same way by every replica."""

from .sampler import Decision, decide, random_from_hex, trace_random
from .stage import SamplingStage

__all__ = ["Decision", "SamplingStage", "decide", "random_from_hex", "trace_random"]
