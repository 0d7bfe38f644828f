"""The files of an Unreal crash archive that Sentry reads: `CrashContext.runtime-xml` and the game's log.

Both are read as getsentry/symbolic's `symbolic-unreal` reads them (the context's typed runtime properties, the
last lines of the log), since Relay builds the event from what symbolic gives it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.parsers import expat

# CrashContext.runtime-xml: the `RuntimeProperties` symbolic types (tag -> field name and type), everything else
# there lands in `custom`. Field names are symbolic's, as Relay copies them into the `unreal` context.
_RUNTIME_PROPERTIES: dict[str, tuple[str, str]] = {
    "CrashGUID": ("crash_guid", "str"),
    "ProcessId": ("process_id", "u32"),
    "IsInternalBuild": ("is_internal_build", "bool"),
    "IsSourceDistribution": ("is_source_distribution", "bool"),
    "IsAssert": ("is_assert", "bool"),
    "IsEnsure": ("is_ensure", "bool"),
    "CrashType": ("crash_type", "str"),
    "SecondsSinceStart": ("seconds_since_start", "u32"),
    "GameName": ("game_name", "str"),
    "ExecutableName": ("executable_name", "str"),
    "BuildConfiguration": ("build_configuration", "str"),
    "PlatformName": ("platform_name", "str"),
    "EngineMode": ("engine_mode", "str"),
    "EngineVersion": ("engine_version", "str"),
    "LanguageLCID": ("language_lcid", "i32"),
    "AppDefaultLocale": ("app_default_locate", "str"),  # (sic)
    "BuildVersion": ("build_version", "str"),
    "IsUE4Release": ("is_ue4_release", "bool"),
    "UserName": ("username", "str"),
    "BaseDir": ("base_dir", "str"),
    "RootDir": ("root_dir", "str"),
    "MachineId": ("machine_id", "str"),
    "LoginId": ("login_id", "str"),
    "EpicAccountId": ("epic_account_id", "str"),
    "CallStack": ("legacy_call_stack", "str"),
    "PCallStack": ("portable_call_stack", "str"),
    "UserDescription": ("user_description", "str"),
    "ErrorMessage": ("error_message", "str"),
    "CrashReporterMessage": ("crash_reporter_message", "str"),
    "Misc.NumberOfCores": ("misc_number_of_cores", "u32"),
    "Misc.NumberOfCoresIncludingHyperthreads": ("misc_number_of_cores_inc_hyperthread", "u32"),
    "Misc.Is64bitOperatingSystem": ("misc_is_64bit", "bool"),
    "Misc.CPUVendor": ("misc_cpu_vendor", "str"),
    "Misc.CPUBrand": ("misc_cpu_brand", "str"),
    "Misc.PrimaryGPUBrand": ("misc_primary_gpu_brand", "str"),
    "Misc.OSVersionMajor": ("misc_os_version_major", "str"),
    "Misc.OSVersionMinor": ("misc_os_version_minor", "str"),
    "GameStateName": ("game_state_name", "str"),
    "MemoryStats.TotalPhysical": ("memory_stats_total_physical", "u64"),
    "MemoryStats.TotalVirtual": ("memory_stats_total_virtual", "u64"),
    "MemoryStats.PageSize": ("memory_stats_page_size", "u64"),
    "MemoryStats.TotalPhysicalGB": ("memory_stats_total_phsysical_gb", "u32"),  # (sic)
    "TimeOfCrash": ("time_of_crash", "u64"),
    "bAllowToBeContacted": ("allowed_to_be_contacted", "bool"),
    "CrashReportClientVersion": ("crash_reporter_client_version", "str"),
    "Modules": ("modules", "str"),
}
_FIELD_ORDER = {field: index for index, (field, _) in enumerate(_RUNTIME_PROPERTIES.values())}
_RANGES = {"u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1), "i32": (-(2**31), 2**31 - 1)}
_INTEGER = re.compile(r"(?P<sign>[+-]?)0*(?P<digits>[0-9]+)")
_SECTIONS = frozenset({"RuntimeProperties", "EngineData", "GameData"})


class ContextError(ValueError):
    """CrashContext.runtime-xml is not XML the relay reads."""


@dataclass(frozen=True, slots=True)
class CrashContext:
    """What Sentry reads of CrashContext.runtime-xml: the typed runtime properties (None without that element,
    with `custom` for tags it doesn't know), and the EngineData and GameData bags."""

    runtime: dict[str, Any] | None
    engine: dict[str, str]
    game: dict[str, str]


def parse_context(data: bytes) -> CrashContext:
    """The crash context XML's properties; ContextError when it is not well-formed or declares entities."""
    sections = _sections(data)
    runtime: dict[str, Any] | None = None
    if "RuntimeProperties" in sections:
        runtime, custom = {}, {}
        for tag, text in sections["RuntimeProperties"]:
            known = _RUNTIME_PROPERTIES.get(tag)
            if known is None:
                custom[tag] = text
                continue
            value = _typed(known[1], text)
            if value is None:
                runtime.pop(known[0], None)  # a later empty element clears an earlier one, as in symbolic
            else:
                runtime[known[0]] = value
        runtime = dict(sorted(runtime.items(), key=lambda item: _FIELD_ORDER[item[0]]))
        runtime["custom"] = dict(sorted(custom.items()))
    return CrashContext(runtime, _bag(sections.get("EngineData", [])), _bag(sections.get("GameData", [])))


def _bag(children: list[tuple[str, str]]) -> dict[str, str]:
    """Tag to text, sorted by tag; of two children with one tag, the later counts (as in symbolic)."""
    return dict(sorted(dict(children).items()))


def _typed(kind: str, text: str) -> str | int | bool | None:
    """A property's text as Rust's `FromStr` reads it into symbolic's field type; None when empty or unreadable."""
    if not text:
        return None
    if kind == "str":
        return text
    if kind == "bool":
        return {"true": True, "false": False}.get(text)
    match = _INTEGER.fullmatch(text)
    if match is None or (kind != "i32" and match["sign"] == "-") or len(match["digits"]) > 20:
        return None
    value = int(match["sign"] + match["digits"])
    low, high = _RANGES[kind]
    return value if low <= value <= high else None


def _sections(data: bytes) -> dict[str, list[tuple[str, str]]]:
    """The (tag, text) children of the first element of each name in `_SECTIONS`, wherever it is; a child's text
    is the text directly in it (not in its own children)."""
    found: dict[str, list[tuple[str, str]]] = {}
    open_sections: list[tuple[str, int]] = []
    children: list[tuple[str, str, int, list[str]]] = []  # (section, tag, depth, text parts)
    depth = 0

    def start(tag: str, attributes: Any) -> None:
        nonlocal depth
        depth += 1
        children.extend((section, tag, depth, []) for section, level in open_sections if level == depth - 1)
        if tag in _SECTIONS and tag not in found:
            found[tag] = []
            open_sections.append((tag, depth))

    def end(tag: str) -> None:
        nonlocal depth
        for child in [child for child in children if child[2] == depth]:
            found[child[0]].append((child[1], "".join(child[3])))
            children.remove(child)
        open_sections[:] = [section for section in open_sections if section[1] != depth]
        depth -= 1

    def text(content: str) -> None:
        for child in children:
            if child[2] == depth:
                child[3].append(content)

    def refuse(*args: Any) -> None:
        raise ContextError("it declares entities, which the relay refuses")

    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except ContextError:
        raise
    except expat.ExpatError as exc:
        raise ContextError(f"it is not well-formed XML ({exc})") from None
    except (LookupError, ValueError) as exc:  # an encoding Python lacks, or one expat can't use (multi-byte)
        raise ContextError(f"its encoding can't be read ({exc})") from None
    return found


# <Game>.log: its last lines, as symbolic's `Unreal4LogEntry::parse` reads them.
_FIRST_LINE = re.compile(
    r"Log file open, (?P<month>[0-9]{2})/(?P<day>[0-9]{2})/(?P<year>[0-9]{2}) "
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})$"
)
# [2018.10.29-16.56.37:542][  0]LogInit: Selected Device Profile: [WindowsNoEditor]  (times are UTC)
# (a field of more than nine digits is no time: Python's int() refuses past 4300 digits, Rust's parse past i32)
_LINE = re.compile(
    r"\[(?P<year>[0-9]{1,9})\.(?P<month>[0-9]{1,9})\.(?P<day>[0-9]{1,9})"
    r"-(?P<hour>[0-9]{1,9})\.(?P<minute>[0-9]{1,9})\.(?P<second>[0-9]{1,9}):[0-9]+\]\[ +[0-9]+\](?P<rest>.*)",
    re.DOTALL,
)
_COMPONENT = re.compile(r"(?P<component>[^:]+): ?(?P<message>.*)", re.DOTALL)
MAX_MESSAGE = 8192  # characters of one line kept (Sentry trims a breadcrumb message to this anyway)
_LINE_BYTES = 4 * MAX_MESSAGE + 64  # bytes of one line read: enough for MAX_MESSAGE characters after the prefix


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line: its UTC time in whole seconds (or the nearest later line's, or the log's start), the
    component (`LogInit`) and the message."""

    timestamp: int | None
    component: str | None
    message: str


def log_entries(data: bytes, limit: int) -> list[LogEntry]:
    """The last `limit` lines of an Unreal log (never its first line, the `Log file open` header); the file is
    read from its end, so a log of any size costs only the lines kept."""
    fallback = _start_time(_decode(data[:_LINE_BYTES].split(b"\n", 1)[0]))
    entries: list[LogEntry] = []
    # From the last line back (one more than kept: the header, or the line before the window), a line without
    # a time of its own takes the time of the nearest line after it that has one.
    for raw in _last_lines(data, limit + 1):
        line = _decode(raw)
        stamped = _LINE.fullmatch(line)
        if stamped is not None:
            line = stamped["rest"]
            stamp = _utc(*(int(stamped[key]) for key in ("year", "month", "day", "hour", "minute", "second")))
            fallback = stamp if stamp is not None else fallback
        parts = _COMPONENT.fullmatch(line)
        component, message = (parts["component"], parts["message"]) if parts else (None, line)
        entries.append(LogEntry(fallback, component, message[:MAX_MESSAGE]))
    if entries:
        entries.pop()
    entries.reverse()
    return entries


def _last_lines(data: bytes, count: int) -> list[bytes]:
    """Up to `count` lines from the end, last first, split where Rust's `str::lines` splits (a newline at the end
    ends the last line, it doesn't start an empty one); each cut to its first `_LINE_BYTES` bytes."""
    if not data:
        return []
    lines: list[bytes] = []
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    while len(lines) < count:
        start = data.rfind(b"\n", 0, end) + 1
        lines.append(data[start : min(end, start + _LINE_BYTES)])
        if start == 0:
            break
        end = start - 1
    return lines


def _decode(raw: bytes) -> str:
    """A line as text, without the carriage return of a CRLF. Relay refuses a log that isn't UTF-8, and with it
    the whole crash; here a stray byte costs only that character."""
    return raw.decode("utf-8", "replace").removesuffix("\r")


def _start_time(line: str) -> int | None:
    """The local time of the `Log file open, 12/13/18 15:54:53` header, taken as UTC (the offset is unknown)."""
    match = _FIRST_LINE.search(line)
    if match is None:
        return None
    year = 2000 + int(match["year"])
    return _utc(year, *(int(match[key]) for key in ("month", "day", "hour", "minute", "second")))


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int | None:
    try:
        return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())
    except (ValueError, OverflowError):
        return None
