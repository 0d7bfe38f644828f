"""relay: a PII-scrubbing relay proxy for Sentry SDKs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
