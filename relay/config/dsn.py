"""Sentry DSNs: `scheme://public_key[:secret]@host[:port][/path]/project_id`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed DSN; `base_url` is everything before `/api/`."""

    scheme: str
    public_key: str
    host: str
    path: str
    project_id: str

    @property
    def base_url(self) -> str:
        """The URL prefix that `/api/<project>/envelope/` is appended to."""
        return f"{self.scheme}://{self.host}{self.path}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.public_key}@{self.host}{self.path}/{self.project_id}"


def parse_dsn(value: str) -> Dsn:
    """Parse a DSN string, raising ValueError with a readable reason."""
    if not isinstance(value, str):
        raise ValueError(f"expected a DSN string, got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"DSN must use http or https, got {value!r}")
    if not parts.username:
        raise ValueError(f"DSN has no public key before '@': {value!r}")
    if not parts.hostname:
        raise ValueError(f"DSN has no host: {value!r}")
    path, _, project = parts.path.rstrip("/").rpartition("/")
    if not project.isdigit():
        raise ValueError(f"DSN must end with a numeric project id: {value!r}")
    host = parts.netloc.rpartition("@")[2]
    return Dsn(parts.scheme, parts.username, host, path, project)
