"""Legacy attachment upload: `POST /api/<project>/events/<event_id>/attachments/`, multipart form data.

As Sentry Relay does (`relay-server/src/endpoints/attachments.rs`, `utils/multipart.rs`): every file part
becomes an `attachment` item (`event.attachment`, with its filename and content type) in an envelope whose
`event_id` is the one in the path, so the upstream adds them to that event. Form fields without a filename
are not forwarded (Relay packs them into a `form_data` item that only crash uploads use). The answer is 201
with no body; a bad event id is 400, a body that is not multipart 400, an attachment over
`limits.max_attachment_size` 413.
"""

from __future__ import annotations

from aiohttp import BodyPartReader, MultipartReader, hdrs, web

from ..envelope import Envelope, Item
from ..errors import HttpError
from .body import read_body
from .legacy import _stream_of
from .request import check_origin, parse_uuid, project_id_of, require_auth
from .state import STATE

DEFAULT_CONTENT_TYPE = "application/octet-stream"


async def handle_attachments(request: web.Request) -> web.Response:
    """Attachments for an event sent earlier; 201 once taken."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    event_id = parse_uuid(request.match_info["event_id"], "event id in the URL")
    check_origin(request, state, project_id)
    auth = require_auth(request)
    project = state.projects.authorize(project_id, auth)
    if not request.content_type.startswith("multipart/"):
        raise HttpError(400, "attachments must be sent as multipart/form-data, one file part each")
    limits = state.config.limits
    body = await read_body(request, limits)
    items = await attachment_items(request.headers.get(hdrs.CONTENT_TYPE, ""), body, limits.max_envelope_items)
    await state.ingest.accept(Envelope({"event_id": event_id}, items), project_id, project, auth)
    return web.Response(status=201)


async def attachment_items(content_type: str, body: bytes, max_items: int) -> list[Item]:
    """One `attachment` item per file part of a multipart body; 400 when it is malformed, 413 past `max_items`."""
    items: list[Item] = []
    try:
        reader = MultipartReader({hdrs.CONTENT_TYPE: content_type}, _stream_of(body))
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.filename is None:
                continue  # nested multipart or a plain form field: not an attachment
            if len(items) == max_items:
                raise HttpError(413, f"more than limits.max_envelope_items ({max_items}) attachments")
            data = bytes(await part.read(decode=False))
            headers = {
                "type": "attachment",
                "attachment_type": "event.attachment",
                "filename": part.filename or part.name or "attachment",
                "content_type": part.headers.get(hdrs.CONTENT_TYPE, DEFAULT_CONTENT_TYPE),
            }
            items.append(Item(headers, data))
    except (ValueError, AssertionError) as exc:
        raise HttpError(400, f"malformed multipart body: {exc}") from None
    return items
