"""`POST /api/<project>/unreal/<key>/`: Unreal Engine crash reports (CrashReportClient's `.uecrash` upload).

The key is in the path (the engine's crash reporter can't send headers); a key in the request as well is
refused, as Relay refuses "multiple authorization payloads". The archive becomes an envelope (see `unreal`)
and goes through the pipeline as any other. The answer is the event id as a hyphenated UUID, as Relay answers,
and never 429: the crash reporter retries on one, so a rate-limited crash is answered 200 and counted.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from ..config import ProjectConfig
from ..envelope import Envelope
from ..errors import HttpError
from ..outcomes import Outcome, Reason
from .auth import Auth, auth_from_request
from .body import read_body
from .request import check_origin, parse_project_id
from .state import STATE, RelayState
from .unreal import unreal_to_envelope

CLIENT = "unreal-crashreporter"


async def handle_unreal(request: web.Request) -> web.Response:
    """An Unreal crash report; answers the event id (hyphenated) as text."""
    state = request.app[STATE]
    project_id = parse_project_id(request.match_info.get("project_id", ""), "in the URL")
    if auth_from_request(request) is not None:
        raise HttpError(401, "multiple authorization payloads detected: the key is in the path and the request")
    auth = Auth(request.match_info["sentry_key"], CLIENT)
    check_origin(request, state, project_id)
    project = state.projects.authorize(project_id, auth)
    limits = state.config.limits
    body = await read_body(request, limits)
    try:
        envelope = await unreal_to_envelope(body, limits.max_decompressed_size, request.query.get("UserID"))
        oversized = any(
            item.type == "attachment" and len(item.payload) > limits.max_attachment_size for item in envelope.items
        )
    except HttpError as exc:
        if exc.status != 413:
            raise
        oversized = True
    if oversized:
        # As Relay: the upload was taken, and what it expanded to is over the limits: counted invalid, answered
        # 200 (the crash reporter would resend a refused report forever).
        state.outcomes.received(["error"])
        state.outcomes.record(Outcome.INVALID, Reason.TOO_LARGE, ["error"])
        return web.Response(text=str(uuid.uuid4()))
    return await accept_crash(state, envelope, project_id, project, auth)


async def accept_crash(
    state: RelayState, envelope: Envelope, project_id: int, project: ProjectConfig | None, auth: Auth
) -> web.Response:
    """Accept a crash upload and answer as Relay answers crash reporters: the event id as a hyphenated UUID
    (what the minidump and Unreal clients expect), and 200 even when a quota refused it (they retry a 429)."""
    event_id = envelope.event_id
    headers: dict[str, str] = {}
    try:
        accepted = await state.ingest.accept(envelope, project_id, project, auth)
        headers = accepted.headers
        event_id = accepted.event_id or event_id
    except HttpError as exc:
        if exc.status != 429:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "x-sentry-rate-limits"}
    try:
        text = str(uuid.UUID(event_id)) if event_id else ""
    except ValueError:
        text = event_id or ""
    return web.Response(text=text, headers=headers)
