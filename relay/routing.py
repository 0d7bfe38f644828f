"""Where each project's envelopes go, and how an envelope is rewritten for that upstream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Config, ProjectConfig
from .envelope import Envelope


@dataclass(frozen=True, slots=True)
class Target:
    """An upstream destination: base URL, project id and the public key to authenticate with."""

    base_url: str
    project_id: str
    public_key: str

    @property
    def envelope_url(self) -> str:
        """The upstream's envelope endpoint for this project."""
        return f"{self.base_url}/api/{self.project_id}/envelope/"

    @property
    def dsn(self) -> str:
        """The DSN an SDK would use to send here directly."""
        scheme, _, rest = self.base_url.partition("://")
        return f"{scheme}://{self.public_key}@{rest}/{self.project_id}"


class Router:
    """Maps (project, local key) to the upstream target and rewrites envelope headers for it."""

    def __init__(self, config: Config) -> None:
        self._default_url = config.upstream.url

    def target_for(self, project_id: int, project: ProjectConfig | None, public_key: str) -> Target:
        """The upstream target; without `upstream_dsn` the id and key are passed through unchanged."""
        if project is not None and project.upstream_dsn is not None:
            dsn = project.upstream_dsn
            return Target(dsn.base_url, dsn.project_id, dsn.public_key)
        return Target(self._default_url, str(project_id), public_key)

    @staticmethod
    def rewrite(envelope: Envelope, target: Target) -> None:
        """Replace every local identity in the envelope header with the upstream's."""
        headers = envelope.headers
        if "dsn" in headers:
            headers["dsn"] = target.dsn
        trace: Any = headers.get("trace")
        if isinstance(trace, dict) and "public_key" in trace:
            trace["public_key"] = target.public_key
