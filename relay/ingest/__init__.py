"""Ingest: the Sentry-compatible HTTP endpoints."""

from .auth import Auth, ProjectIndex
from .handlers import add_routes
from .middleware import relay_middleware
from .service import Accepted, IngestService
from .state import STATE, RelayState

__all__ = ["STATE", "Accepted", "Auth", "IngestService", "ProjectIndex", "RelayState", "add_routes", "relay_middleware"]
