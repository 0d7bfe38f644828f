"""The admin listener: tools for operators and compliance teams, never on the ingest port."""

from .playground import PLAYGROUND, Playground, create_admin_app, start_admin

__all__ = ["PLAYGROUND", "Playground", "create_admin_app", "start_admin"]
