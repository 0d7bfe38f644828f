"""Unreal Engine crash reports (`POST /api/<project>/unreal/<key>/`) as an envelope of an event and attachments.

Sentry's Relay forwards the archive as one `unreal_report` item and expands it later (relay-server
`utils/unreal.rs`). Here it is expanded at once, the same way, so that the scrubber sees what is inside:

- the event: the `__sentry` JSON in the crash context's GameData, else sentry-native's `__sentry-event` and
  breadcrumb files (see `native`), then the client's `UserID` (user id, `epic_account_id` and `machine_id` tags),
  the last log lines (breadcrumbs) and the crash context (message, user, device/os/gpu contexts, level, sdk, and
  the `unreal` and `game` contexts) merged in as Relay merges them;
- a `user_report` item when the player wrote a description;
- every file as an attachment: the minidump as `event.minidump`, an Apple crash report as
  `event.applecrashreport`, the rest as `event.attachment`.

Relay types the context and log attachments `unreal.context` and `unreal.logs`. Those are not used here: upstream
Relay merges any envelope's `unreal.*` attachments into its event, so they would put back what the scrubber
removed, and add each log breadcrumb twice. As text attachments they are scrubbed as text instead.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson

from ..envelope import Envelope, Item
from ..errors import HttpError
from . import native
from .unreal_archive import ArchiveFile, read_archive
from .unreal_files import ContextError, CrashContext, log_entries, parse_context

MAX_FILES = 100  # files in one archive (a crash has about four); more is 413
MAX_BREADCRUMBS = 40  # log lines kept as breadcrumbs, as Relay's MAX_NUM_UNREAL_LOGS
CONTEXT_FILE = "CrashContext.runtime-xml"
CONFIG_FILE = "CrashReportClient.ini"
SENTRY_PAYLOAD_KEY = "__sentry"  # the GameData entry that holds a Sentry event as JSON
SDK_NAME = "unreal.crashreporter"
_THREADED = 64 * 1024  # archives past this are expanded on a worker thread, off the event loop

# (attachment_type, content_type) of each kind of file; text files are typed as text so the scrubber reads them.
_ATTACHMENTS = {
    "minidump": ("event.minidump", "application/x-dmp"),
    "apple_crash_report": ("event.applecrashreport", "text/plain"),
    "log": ("event.attachment", "text/plain"),
    "config": ("event.attachment", "text/plain"),
    "context": ("event.attachment", "text/xml"),
    "other": ("event.attachment", "application/octet-stream"),
}
# Engine data that fills the gpu context (Relay's mapping).
_GPU_FIELDS = (
    ("RHI.DeviceId", "id"),
    ("RHI.FeatureLevel", "graphics_shader_level"),
    ("RHI.GPUVendor", "vendor_name"),
    ("RHI.UserDriverVersion", "version"),
    ("RHI.RHIName", "api_type"),
)


async def unreal_to_envelope(
    body: bytes, limit: int, user_id: str | None = None, max_files: int = MAX_FILES
) -> Envelope:
    """An Unreal crash archive as an envelope (on a worker thread when large); `limit` bounds its decompressed
    size (413), `user_id` is the request's `UserID` query parameter. 400 with a `detail` when it is corrupt."""
    if len(body) > _THREADED:
        return await asyncio.to_thread(expand_unreal, body, limit, user_id, max_files)
    return expand_unreal(body, limit, user_id, max_files)


def expand_unreal(body: bytes, limit: int, user_id: str | None = None, max_files: int = MAX_FILES) -> Envelope:
    """The envelope of an Unreal crash archive: event, user report and attachments (see the module)."""
    files = read_archive(body, limit, max_files)
    if not files:
        raise HttpError(400, "unreal crash report holds no files")
    kinds = [_kind(file) for file in files]
    context = next((_context(f) for f, kind in zip(files, kinds, strict=True) if kind == "context"), None)
    event = _base_event(files, context)
    event_id = uuid.uuid4().hex  # Relay gives an Unreal report a new id, whatever its event says
    event["event_id"] = event_id
    if user_id:
        _merge_user_info(event, user_id)
    _merge_logs(event, [f.data for f, kind in zip(files, kinds, strict=True) if kind == "log"])
    reports: list[Item] = []
    if context is not None and context.runtime is not None:
        runtime = dict(context.runtime)
        if "user_description" in runtime:
            reports.append(_user_report(event_id, runtime.pop("user_description"), runtime.get("username")))
        _merge_context(event, runtime, context)
    if "minidump" in kinds or "apple_crash_report" in kinds:
        event.setdefault("platform", "native")
    attachments = [
        _attachment(file, kind)
        for file, kind in zip(files, kinds, strict=True)
        # Merged into the event (scrubbed there), never forwarded: sentry-native's files, and the crash context,
        # whose XML would carry the user's name and machine past the scrubber (it reads text, not the fields).
        if file.name not in native.NATIVE_FILES and kind != "context"
    ]
    items = [Item({"type": "event"}, _dumps(event)), *reports, *attachments]
    return Envelope({"event_id": event_id}, items)


def _kind(file: ArchiveFile) -> str:
    """What a file is, as symbolic tells (by name first, then by content)."""
    if file.name == CONFIG_FILE:
        return "config"
    if file.name == CONTEXT_FILE:
        return "context"
    if file.name.endswith(".log"):
        return "log"
    if file.data.startswith(b"MDMP"):
        return "minidump"
    if file.data.startswith(b"Incident Identifier:"):
        return "apple_crash_report"
    return "other"


def _attachment(file: ArchiveFile, kind: str) -> Item:
    """A file of the archive as an attachment item of its kind."""
    attachment_type, content_type = _ATTACHMENTS[kind]
    headers = {"type": "attachment", "filename": file.name, "attachment_type": attachment_type}
    return Item({**headers, "content_type": content_type}, file.data)


def _context(file: ArchiveFile) -> CrashContext:
    """The parsed crash context, or 400 saying why it can't be read."""
    try:
        return parse_context(file.data)
    except ContextError as exc:
        raise HttpError(400, f"unreal crash report's {CONTEXT_FILE} can't be read: {exc}") from None


def _base_event(files: list[ArchiveFile], context: CrashContext | None) -> dict[str, Any]:
    """The event the archive carries: `__sentry` in GameData (then the native files are ignored, as in Relay),
    else sentry-native's MessagePack event and breadcrumbs, else an empty one."""
    payload = context.game.get(SENTRY_PAYLOAD_KEY) if context is not None else None
    if payload:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise HttpError(
                400, f"the {SENTRY_PAYLOAD_KEY} GameData of {CONTEXT_FILE} is not JSON: {exc.msg}"
            ) from None
        if not isinstance(event, dict):
            raise HttpError(400, f"the {SENTRY_PAYLOAD_KEY} GameData of {CONTEXT_FILE} is not a JSON object")
        return event
    found: dict[str, bytes] = {}
    for file in files:
        if file.name in native.NATIVE_FILES:
            found.setdefault(file.name, file.data)
    return native.assemble([], found)


def _merge_user_info(event: dict[str, Any], user_id: str) -> None:
    """CrashReportClient's `UserID` (`<login id>|<epic account id>|<machine id>`): user id and two tags."""
    parts = user_id.split("|")
    if parts[0]:
        _object(event, "user")["id"] = parts[0]
    for tag, value in zip(("epic_account_id", "machine_id"), parts[1:3], strict=False):
        if value:
            _add_tag(event, tag, value)


def _merge_logs(event: dict[str, Any], logs: list[bytes]) -> None:
    """The last lines of the logs as breadcrumbs, after the event's own."""
    crumbs: list[dict[str, Any]] = []
    for data in logs:
        for entry in log_entries(data, MAX_BREADCRUMBS)[: MAX_BREADCRUMBS - len(crumbs)]:
            crumb: dict[str, Any] = {} if entry.timestamp is None else {"timestamp": float(entry.timestamp)}
            if entry.component is not None:
                crumb["category"] = entry.component
            crumb["message"] = entry.message
            crumbs.append(crumb)
    if not crumbs:
        return
    existing = event.get("breadcrumbs")
    values = existing.get("values") if isinstance(existing, dict) else existing
    container = existing if isinstance(existing, dict) else {}
    container["values"] = [*(values if isinstance(values, list) else []), *crumbs]
    event["breadcrumbs"] = container


def _user_report(event_id: str, description: str, username: Any) -> Item:
    """The player's description of the crash, as the user report Relay makes of it."""
    report = {"event_id": event_id, "name": username or "unknown", "email": "", "comments": description}
    return Item({"type": "user_report"}, orjson.dumps(report))


def _merge_context(event: dict[str, Any], runtime: dict[str, Any], context: CrashContext) -> None:
    """Relay's `merge_unreal_context`: each value fills its event field when that is empty; what Relay moves out
    of the runtime properties leaves them, and the rest becomes the `unreal` context."""
    if (message := runtime.pop("error_message", None)) is not None:
        _set_message(event, message)
    if (username := runtime.pop("username", None)) is not None:
        _fill(_object(event, "user"), "username", username)
    if (login_id := runtime.get("login_id")) is not None:
        _fill(_object(event, "user"), "id", login_id)
    contexts = _object(event, "contexts")
    if (memory := runtime.pop("memory_stats_total_physical", None)) is not None:
        _fill(_known_context(contexts, "device"), "memory_size", memory)
    if (os_version := runtime.pop("misc_os_version_major", None)) is not None:
        _fill(_known_context(contexts, "os"), "raw_description", os_version)
    engine = context.engine
    if "RHI.AdapterName" in engine:
        _fill(_known_context(contexts, "gpu"), "name", engine["RHI.AdapterName"])
    elif (brand := runtime.pop("misc_primary_gpu_brand", None)) is not None:
        _fill(_known_context(contexts, "gpu"), "name", brand)
    for key, field in _GPU_FIELDS:
        if key in engine:
            _fill(_known_context(contexts, "gpu"), field, engine[key])
    if _is_empty(event.get("level")):
        if runtime.get("is_assert") is True:
            event["level"] = "error"
        elif runtime.get("is_ensure") is True:
            event["level"] = "warning"
    runtime.pop("modules", None)  # replaced by the minidump's module list later
    game = {key: value for key, value in context.game.items() if key != SENTRY_PAYLOAD_KEY}
    if game:
        _object(contexts, "game").update(game)
    if event.get("sdk") is None:
        event["sdk"] = {"name": SDK_NAME, "version": runtime.pop("crash_reporter_client_version", None) or "0.0.0"}
    _object(contexts, "unreal").update(runtime)


def _set_message(event: dict[str, Any], message: str) -> None:
    """The error message as `logentry.formatted`, unless the event has a message (`message` is its old name)."""
    current = event.get("logentry", event.get("message"))
    if isinstance(current, dict):
        _fill(current, "formatted", message)
    elif not (isinstance(current, str) and current):
        event["logentry"] = {"formatted": message}


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """`parent[key]`, made an object if it is missing or isn't one."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _known_context(contexts: dict[str, Any], kind: str) -> dict[str, Any]:
    """A context of a type Sentry knows (device, os, gpu), keyed by its type."""
    context = contexts.get(kind)
    if not isinstance(context, dict):
        context = contexts[kind] = {"type": kind}
    return context


def _fill(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `target[key]` unless it has a value (an empty string counts as none, and is never set)."""
    if value != "" and _is_empty(target.get(key)):
        target[key] = value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _add_tag(event: dict[str, Any], key: str, value: str) -> None:
    """A tag added whichever form the event's tags take (an object, or a list of pairs as Relay writes)."""
    tags = event.get("tags")
    if isinstance(tags, dict):
        tags[key] = value
    elif isinstance(tags, list):
        tags.append([key, value])
    else:
        event["tags"] = [[key, value]]


def _dumps(event: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(event)
    except TypeError as exc:  # orjson writes at most 254 levels of nesting
        raise HttpError(400, f"unreal crash report's event cannot be encoded: {exc}") from None
