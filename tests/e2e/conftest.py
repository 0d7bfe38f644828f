"""Fixtures shared by the end-to-end tests: relay processes started from config text."""

from .test_process import start_relay

__all__ = ["start_relay"]
