"""Who is sending: the public key from headers, query or envelope DSN, checked against the projects."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..config import Config, ProjectConfig, UnknownProjects, parse_dsn
from ..errors import HttpError


@dataclass(frozen=True, slots=True)
class Auth:
    """The credentials of one request."""

    public_key: str
    client: str | None = None


def parse_auth_pairs(value: str) -> dict[str, str]:
    """Parse `Sentry sentry_key=abc, sentry_version=7` into its key/value pairs."""
    _, _, rest = value.strip().partition(" ")
    pairs: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            pairs[key.strip().lower()] = val.strip()
    return pairs


def auth_from_request(request: web.Request) -> Auth | None:
    """Credentials from X-Sentry-Auth, Authorization or the query string; None when there are none."""
    for header in ("X-Sentry-Auth", "Authorization"):
        value = request.headers.get(header)
        if not value:
            continue
        scheme = value.strip().split(" ", 1)[0].lower()
        if scheme == "sentry":
            return _auth_from_pairs(parse_auth_pairs(value), header)
        if scheme == "basic" and header == "Authorization":
            try:
                decoded = base64.b64decode(value.strip()[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise HttpError(401, "Authorization: Basic credentials are not valid base64") from None
            return _auth_from_pairs({"sentry_key": decoded.partition(":")[0]}, header)
    if "sentry_key" in request.query:
        return _auth_from_pairs(dict(request.query), "query string")
    return None


def auth_from_envelope_dsn(headers: Mapping[str, Any], project_id: int) -> Auth:
    """Credentials from the `dsn` of an envelope header, which must name this project."""
    dsn_value = headers.get("dsn")
    if not isinstance(dsn_value, str) or not dsn_value:
        raise HttpError(401, "missing authorization information: no X-Sentry-Auth header, sentry_key or envelope dsn")
    try:
        dsn = parse_dsn(dsn_value)
    except ValueError as exc:
        raise HttpError(401, f"envelope header dsn is invalid: {exc}") from None
    if dsn.project_id != str(project_id):
        raise HttpError(400, f"envelope dsn is for project {dsn.project_id}, but was sent to project {project_id}")
    return Auth(dsn.public_key)


def check_envelope_dsn(headers: Mapping[str, Any], project_id: int, auth: Auth) -> None:
    """When both request auth and an envelope dsn are present, they must agree."""
    dsn_value = headers.get("dsn")
    if not isinstance(dsn_value, str) or not dsn_value:
        return
    try:
        dsn = parse_dsn(dsn_value)
    except ValueError:
        return  # the request's own auth is authoritative; a junk dsn gets rewritten anyway
    if dsn.public_key != auth.public_key or dsn.project_id != str(project_id):
        raise HttpError(400, "envelope header dsn does not match the request's key and project")


_SDK_CLIENT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}/[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}")


def _auth_from_pairs(pairs: Mapping[str, str], where: str) -> Auth:
    key = pairs.get("sentry_key", "").strip()
    if not key:
        raise HttpError(401, f"{where} has no sentry_key")
    client = pairs.get("sentry_client") or None
    # The SDK's name and version ("sentry.python/2.19.0") goes to the spool and upstream as sent: anything else
    # is the client's free text, so it is dropped (the relay then names itself).
    return Auth(key, client if client is not None and _SDK_CLIENT.fullmatch(client) else None)


class ProjectIndex:
    """Looks up projects by id and decides whether a key may send to one."""

    def __init__(self, config: Config) -> None:
        self._projects: dict[int, ProjectConfig] = {p.id: p for p in config.projects}
        self._unknown = config.unknown_projects

    def get(self, project_id: int) -> ProjectConfig | None:
        """The configured project, if any."""
        return self._projects.get(project_id)

    def authorize(self, project_id: int, auth: Auth) -> ProjectConfig | None:
        """The project for this request (None for a forwarded unknown one), or an HttpError."""
        project = self._projects.get(project_id)
        if project is None:
            if self._unknown is UnknownProjects.FORWARD:
                return None
            raise HttpError(403, f"project {project_id} is not configured on this relay")
        if project.disabled:
            raise HttpError(403, f"project {project_id} is disabled")
        if auth.public_key not in project.keys:
            raise HttpError(401, f"unknown public key for project {project_id}")
        return project
