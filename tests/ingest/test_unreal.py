"""Unreal Engine crash reports: the `.uecrash` archive, the event Relay builds from it, and hostile archives.

`data/unreal_crash` (Windows, minidump) and `data/unreal_crash_apple` (Mac, Apple crash report) are real
CrashReportClient uploads, from getsentry/symbolic's test fixtures (MIT).
"""

from __future__ import annotations

import random
import re
import struct
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.envelope import Envelope
from relay.errors import HttpError
from relay.ingest.auth import Auth
from relay.ingest.unreal import MAX_BREADCRUMBS, expand_unreal, unreal_to_envelope
from relay.ingest.unreal_archive import ArchiveFile, read_archive, write_archive
from relay.ingest.unreal_files import log_entries, parse_context

from ..conftest import RelayFactory, state_of
from ..scrub.test_stage_e2e import projects_yaml
from ..support import KEY, PROJECT, FakeUpstream

DATA = Path(__file__).parent / "data"
LIMIT = 100 * 1024**2
MINIDUMP = b"MDMP\x93\xa7\x00\x00" + b"\x00" * 56 + b"crash data"
USER_ID = "ebff51ef3c4878627823eebd9ff40eb4|2e7d369327054a448be6c8d3601213cb|C52DC39D-DAF3-5E36-A8D3-BF5F53A5D38F"


def fixture(name: str) -> bytes:
    """A real crash archive from `data/`."""
    return (DATA / name).read_bytes()


def context_xml(runtime: str = "", engine: str = "", game: str = "") -> bytes:
    """A CrashContext.runtime-xml with these RuntimeProperties, EngineData and GameData children."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<FGenericCrashContext>\n'
        f"\t<RuntimeProperties>{runtime}</RuntimeProperties>\n"
        "\t<PlatformProperties><PlatformIsRunningWindows>1</PlatformIsRunningWindows></PlatformProperties>\n"
        f"\t<EngineData>{engine}</EngineData>\n\t<GameData>{game}</GameData>\n</FGenericCrashContext>\n"
    ).encode()


def crash(*files: tuple[str, bytes], cr1: bool = False) -> bytes:
    """A compressed crash archive of these files."""
    return write_archive(files, "UE4CC-Windows-0000", "UE4CC-Windows-0000.ue4crash", cr1=cr1)


def expand(*files: tuple[str, bytes], user_id: str | None = None) -> Envelope:
    """The envelope of a crash archive of these files."""
    return expand_unreal(crash(*files), LIMIT, user_id)


def event_of(envelope: Envelope) -> dict[str, Any]:
    """The envelope's event (its first item)."""
    assert envelope.items[0].type == "event"
    event: dict[str, Any] = envelope.items[0].json()
    return event


def fails(body: bytes, limit: int = LIMIT, max_files: int = 100) -> HttpError:
    """The HttpError expanding `body` raises."""
    with pytest.raises(HttpError) as caught:
        expand_unreal(body, limit, None, max_files)
    return caught.value


def fstring(text: bytes) -> bytes:
    """An ANSI FString as UE writes it."""
    return struct.pack("<i", len(text)) + text


def header(count: int) -> bytes:
    """An archive header holding `count` files."""
    return fstring(b"dir\0") + fstring(b"name\0") + struct.pack("<ii", 0, count)


# The archive


def test_reads_the_real_archive() -> None:
    """The Windows fixture holds the context, the client's ini, the log and the minidump, in that order."""
    files = read_archive(fixture("unreal_crash"), LIMIT, 100)
    assert [(f.name, len(f.data)) for f in files] == [
        ("CrashContext.runtime-xml", 6545),
        ("CrashReportClient.ini", 204),
        ("MyProject.log", 21143),
        ("UE4Minidump.dmp", 410700),
    ]
    assert files[3].data.startswith(b"MDMP")


@settings(max_examples=150, deadline=None)
@given(
    files=st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40),
            st.binary(max_size=300),
        ),
        max_size=6,
    ),
    cr1=st.booleans(),
)
def test_archive_round_trip(files: list[tuple[str, bytes]], cr1: bool) -> None:
    """What write_archive writes, read_archive reads back: names (ANSI or UTF-16) and bytes, in both layouts."""
    assert read_archive(crash(*files, cr1=cr1), LIMIT, 100) == [ArchiveFile(n, d) for n, d in files]


def test_cr1_layout_and_utf16_names() -> None:
    """The newer `CR1` layout (one header first) and a non-ANSI file name are read."""
    envelope = expand_unreal(crash(("Spiel-Ü.log", b"x\n"), ("UEMinidump.dmp", MINIDUMP), cr1=True), LIMIT)
    assert [item.headers.get("filename") for item in envelope.items[1:]] == ["Spiel-Ü.log", "UEMinidump.dmp"]


def test_names_end_at_their_terminator() -> None:
    """A name in a NUL-padded buffer ends at its first NUL: bytes past it (uninitialized memory) are dropped."""
    raw = header(1) + struct.pack("<i", 0) + fstring(b"a.log\0junk\0\0") + fstring(b"line\n") + header(1)
    assert read_archive(zlib.compress(raw), LIMIT, 10) == [ArchiveFile("a.log", b"line\n")]


def test_a_huge_name_is_cut() -> None:
    """A name of 10 MB is cut to its first 1024 bytes (UE's names are at most 260 characters)."""
    name = b"n" * 10_000_000
    raw = header(1) + struct.pack("<i", 0) + fstring(name) + fstring(b"data") + header(1)
    assert read_archive(zlib.compress(raw), LIMIT, 10) == [ArchiveFile("n" * 1024, b"data")]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"", 400, "empty unreal crash report"),
        (b"PK\x03\x04 a zip, not a crash report", 400, "not a valid zlib stream"),
        (crash(("a.log", b"x" * 5000))[:-40], 400, "ends early"),
        (zlib.compress(b"ab"), 400, "no header"),
        (zlib.compress(header(0)[:-2]), 400, "truncated"),
        (zlib.compress(header(0) + header(0)), 400, "holds no files"),
        # symbolic's issue 476: a file count that can't be true
        (zlib.compress(b"\0" * 12 + b"\xff\xff\xff\x40"), 400, "can't fit"),
        (zlib.compress(header(1) + b"\0" * 4 + fstring(b"a\0") + b"\xff\xff\xff\x7f" + header(1)), 400, "truncated"),
        (zlib.compress(header(1) + b"\0" * 4 + fstring(b"a\0") + b"\xf0\xff\xff\xff" + header(1)), 400, "negative"),
        (zlib.compress(header(1) + b"\0" * 4 + b"\xff\xff\xff\x7f" + b"\0" * 16 + header(1)), 400, "truncated"),
        (zlib.compress(b"CR1" + header(1) + b"\0" * 4 + fstring(b"a\0") + fstring(b"") + b"junk"), 400, "trailing"),
        (crash(("CrashContext.runtime-xml", b"<FGenericCrashContext><Runtime")), 400, "not well-formed XML"),
        (crash(("CrashContext.runtime-xml", b'<?xml version="1.0" encoding="UF-8"?><a/>')), 400, "encoding"),
        (crash(("CrashContext.runtime-xml", b'<?xml version="1.0" encoding="utf-32"?><a/>')), 400, "encoding"),
        (crash(("CrashContext.runtime-xml", context_xml(game="<__sentry>{nope</__sentry>"))), 400, "not JSON"),
        (crash(("CrashContext.runtime-xml", context_xml(game="<__sentry>[1]</__sentry>"))), 400, "JSON object"),
    ],
)
def test_corrupt_archives_are_400_with_a_detail(body: bytes, status: int, detail: str) -> None:
    """Each way an archive can be broken is answered with a status and a detail that says what is wrong."""
    error = fails(body)
    assert error.status == status
    assert detail in error.detail, error.detail


def test_a_decompression_bomb_stops_at_the_limit() -> None:
    """256 MiB of zeros (a 256 KiB body) is refused with 413 once past the limit, without inflating the rest."""
    bomb = zlib.compressobj(9)
    body = b"".join([bomb.compress(b"\0" * (64 << 20)) for _ in range(4)] + [bomb.flush()])
    started = time.perf_counter()
    error = fails(body, limit=1 << 20)
    assert error.status == 413 and "limits.max_decompressed_size" in error.detail
    assert time.perf_counter() - started < 1


def test_too_many_files_is_413() -> None:
    """More files than accepted is 413 (a crash has four or so)."""
    error = fails(crash(*((f"f{i}.txt", b"") for i in range(5))), max_files=4)
    assert error.status == 413 and "5 files" in error.detail


def test_entity_declarations_are_refused() -> None:
    """A context that declares entities (a billion laughs) is 400, never expanded."""
    laughs = '<!DOCTYPE l [<!ENTITY a "haha">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    xml = f'<?xml version="1.0"?>{laughs}]><FGenericCrashContext><GameData><x>&j;</x></GameData></FGenericCrashContext>'
    error = fails(crash(("CrashContext.runtime-xml", xml.encode())))
    assert error.status == 400 and "entities" in error.detail


def test_a_deeply_nested_context_is_read() -> None:
    """30,000 nested elements neither recurse nor hide the properties around them."""
    nested = "<n>" * 30_000 + "</n>" * 30_000
    xml = context_xml(runtime=f"<GameName>UE4-Deep</GameName><Deep>{nested}</Deep>", game="<Level>3</Level>")
    event = event_of(expand(("CrashContext.runtime-xml", xml)))
    assert event["contexts"]["unreal"]["game_name"] == "UE4-Deep"
    assert event["contexts"]["game"] == {"Level": "3"}


# The event


def test_the_windows_crash_event() -> None:
    """The Windows fixture as Relay expands it: message, user, device/os/gpu, level, sdk, the `unreal` context
    and the log's last lines; the files as attachments."""
    envelope = expand_unreal(fixture("unreal_crash"), LIMIT)
    event = event_of(envelope)
    assert event["event_id"] == envelope.event_id and re.fullmatch(r"[0-9a-f]{32}", event["event_id"])
    assert event["logentry"]["formatted"].startswith("Assertion failed: false [File:C:\\Users\\bruno\\")
    assert event["user"] == {"username": "bruno", "id": "6b5ef42f48669c4d7dfe11b7f59bb6ac"}
    contexts = event["contexts"]
    assert contexts["device"] == {"type": "device", "memory_size": 17112477696}
    assert contexts["os"] == {"type": "os", "raw_description": "Windows 10"}
    assert contexts["gpu"] == {"type": "gpu", "name": "NVIDIA GeForce GTX 1080"}
    assert event["level"] == "error"  # IsAssert
    assert event["sdk"] == {"name": "unreal.crashreporter", "version": "1.0"}
    assert event["platform"] == "native"
    unreal = contexts["unreal"]
    assert unreal["crash_guid"] == "UE4CC-Windows-379993BB42BD8FBED67986857D8844B5_0000"
    assert unreal["engine_version"] == "4.20.3-4369336+++UE4+Release-4.20"
    assert unreal["memory_stats_total_phsysical_gb"] == 16 and unreal["time_of_crash"] == 636764289988050000
    assert unreal["custom"]["PlatformFullName"] == "Win64 [Windows 10  64b]"
    for moved in ("username", "error_message", "memory_stats_total_physical", "misc_os_version_major", "modules"):
        assert moved not in unreal
    crumbs = event["breadcrumbs"]["values"]
    assert len(crumbs) == MAX_BREADCRUMBS
    assert crumbs[-1] == {
        "timestamp": 1540832198.0,
        "category": "LogWindows",
        "message": "Windows GetLastError: The operation completed successfully. (0)",
    }
    assert [
        (i.headers["filename"], i.headers["attachment_type"], i.headers["content_type"]) for i in envelope.items[1:]
    ] == [  # the crash context is merged into the event (scrubbed there), not forwarded as its XML
        ("CrashReportClient.ini", "event.attachment", "text/plain"),
        ("MyProject.log", "event.attachment", "text/plain"),
        ("UE4Minidump.dmp", "event.minidump", "application/x-dmp"),
    ]
    assert envelope.items[3].payload == read_archive(fixture("unreal_crash"), LIMIT, 100)[3].data


def test_the_mac_crash_and_its_user_report() -> None:
    """The Mac fixture: the Apple crash report typed as such, and the player's description as a user report."""
    envelope = expand_unreal(fixture("unreal_crash_apple"), LIMIT)
    event = event_of(envelope)
    assert envelope.items[1].type == "user_report"
    assert envelope.items[1].json() == {
        "event_id": event["event_id"],
        "name": "bruno",
        "email": "",
        "comments": "asdsadasd",
    }
    assert "user_description" not in event["contexts"]["unreal"]
    assert "os" not in event["contexts"]  # an empty Misc.OSVersionMajor fills nothing
    types = {i.headers["filename"]: i.headers["attachment_type"] for i in envelope.items[2:]}
    assert types == {
        "CrashReportClient.ini": "event.attachment",
        "minidump.dmp": "event.applecrashreport",
        "info.txt": "event.attachment",
        "YetAnotherMac.log": "event.attachment",
        "Diagnostics.txt": "event.attachment",
    }


def test_the_user_id_parameter() -> None:
    """CrashReportClient's `UserID` (login, Epic account and machine ids): user id over LoginId, and two tags."""
    event = event_of(expand_unreal(fixture("unreal_crash"), LIMIT, USER_ID))
    assert event["user"]["id"] == "ebff51ef3c4878627823eebd9ff40eb4"
    assert event["tags"] == [
        ["epic_account_id", "2e7d369327054a448be6c8d3601213cb"],
        ["machine_id", "C52DC39D-DAF3-5E36-A8D3-BF5F53A5D38F"],
    ]
    assert "tags" not in event_of(expand(("a.log", b"x\n"), user_id="||"))


RHI_CONTEXT = context_xml(
    runtime="<UserName>jdoe</UserName><MemoryStats.TotalPhysical>6896832512</MemoryStats.TotalPhysical>"
    "<Misc.OSVersionMajor>Windows 11</Misc.OSVersionMajor><Misc.OSVersionMinor />"
    "<Misc.PrimaryGPUBrand>Parallels Display Adapter</Misc.PrimaryGPUBrand>"
    "<ErrorMessage>Access violation - code c0000005</ErrorMessage><CrashVersion>3</CrashVersion>"
    "<MemoryStats.TotalVirtual>140737488224256</MemoryStats.TotalVirtual><CrashReportClientVersion>1.0"
    "</CrashReportClientVersion><Modules>C:\\Game\\Game.exe</Modules>",
    engine="<RHI.RHIName>D3D12</RHI.RHIName><RHI.AdapterName>NVIDIA GeForce RTX 4060</RHI.AdapterName>"
    "<RHI.UserDriverVersion>551.52</RHI.UserDriverVersion><RHI.FeatureLevel>SM5</RHI.FeatureLevel>"
    "<RHI.GPUVendor>NVIDIA</RHI.GPUVendor><RHI.DeviceId>28E0</RHI.DeviceId>",
)


def test_engine_data_fills_the_gpu_context() -> None:
    """The RHI engine data fills the gpu context (the adapter name over Misc.PrimaryGPUBrand, which then stays
    in the `unreal` context)."""
    event = event_of(expand(("CrashContext.runtime-xml", RHI_CONTEXT)))
    assert event["contexts"]["gpu"] == {
        "type": "gpu",
        "name": "NVIDIA GeForce RTX 4060",
        "id": "28E0",
        "graphics_shader_level": "SM5",
        "vendor_name": "NVIDIA",
        "version": "551.52",
        "api_type": "D3D12",
    }
    assert event["contexts"]["unreal"] == {
        "misc_primary_gpu_brand": "Parallels Display Adapter",
        "memory_stats_total_virtual": 140737488224256,
        "custom": {"CrashVersion": "3"},
    }
    assert "level" not in event


def test_the_events_own_values_are_kept() -> None:
    """Values the event already has (here from `__sentry` in GameData) win over the crash context's."""
    sentry = {
        "event_id": "0" * 32,
        "release": "game@2.1",
        "logentry": {"formatted": "own message"},
        "user": {"username": "own-user"},
        "sdk": {"name": "sentry.unreal", "version": "1.2.3"},
        "level": "fatal",
        "contexts": {
            "device": {"type": "device", "memory_size": 1},
            "os": {"type": "os", "raw_description": "own os"},
            "gpu": {"type": "gpu", "name": "own gpu", "api_type": "own api"},
        },
    }
    game = "<__sentry>" + orjson.dumps(sentry).decode().replace("&", "&amp;").replace("<", "&lt;") + "</__sentry>"
    xml = RHI_CONTEXT.replace(b"<GameData></GameData>", f"<GameData>{game}<Map>Arena</Map></GameData>".encode())
    envelope = expand(("CrashContext.runtime-xml", xml))
    event = event_of(envelope)
    assert event["event_id"] == envelope.event_id != "0" * 32  # Relay gives the report its own id
    assert event["release"] == "game@2.1"
    assert event["logentry"] == {"formatted": "own message"}
    assert event["user"] == {"username": "own-user"}
    assert event["sdk"] == {"name": "sentry.unreal", "version": "1.2.3"}
    assert event["level"] == "fatal"
    assert event["contexts"]["device"]["memory_size"] == 1
    assert event["contexts"]["os"]["raw_description"] == "own os"
    assert event["contexts"]["gpu"]["name"] == "own gpu" and event["contexts"]["gpu"]["api_type"] == "own api"
    assert event["contexts"]["gpu"]["vendor_name"] == "NVIDIA"
    assert event["contexts"]["game"] == {"Map": "Arena"}
    assert event["contexts"]["unreal"]["crash_reporter_client_version"] == "1.0"  # the sdk didn't take it


@pytest.mark.parametrize(
    ("properties", "level"),
    [
        ("<IsAssert>true</IsAssert><IsEnsure>true</IsEnsure>", "error"),
        ("<IsAssert>false</IsAssert><IsEnsure>true</IsEnsure>", "warning"),
        ("<IsAssert>1</IsAssert><IsEnsure>false</IsEnsure>", None),  # Rust reads only `true` and `false`
    ],
)
def test_level_from_assert_and_ensure(properties: str, level: str | None) -> None:
    """An assert is an error, an ensure a warning; anything else leaves the level to Sentry."""
    event = event_of(expand(("CrashContext.runtime-xml", context_xml(runtime=properties))))
    assert event.get("level") == level


def test_login_id_is_the_user_id_when_there_is_none() -> None:
    """LoginId becomes the user id when the event and the `UserID` parameter have none."""
    files = ("CrashContext.runtime-xml", context_xml(runtime="<LoginId>SOME_ID</LoginId>"))
    assert event_of(expand(files))["user"] == {"id": "SOME_ID"}
    assert event_of(expand(files, user_id=""))["user"] == {"id": "SOME_ID"}
    assert event_of(expand(files, user_id="header-id"))["user"] == {"id": "header-id"}


def test_property_values_are_typed_as_rust_reads_them() -> None:
    """Numbers and booleans are read as Rust's `FromStr` reads them: what it refuses is left out."""
    runtime = (
        "<ProcessId>+12</ProcessId><SecondsSinceStart> 3</SecondsSinceStart><LanguageLCID>-5</LanguageLCID>"
        "<Misc.NumberOfCores>-1</Misc.NumberOfCores><TimeOfCrash>18446744073709551616</TimeOfCrash>"
        "<MemoryStats.PageSize>000000000000000000000004096</MemoryStats.PageSize><IsUE4Release>True</IsUE4Release>"
        "<CrashType>Crash</CrashType><CrashType></CrashType><Odd>a &amp; b<i>inner</i> c</Odd>"
    )
    context = parse_context(context_xml(runtime=runtime))
    assert context.runtime == {
        "process_id": 12,
        "language_lcid": -5,
        "memory_stats_page_size": 4096,
        "custom": {"Odd": "a & b c"},
    }


def test_sentry_native_files_become_the_event() -> None:
    """sentry-native's MessagePack event and breadcrumbs are the event (merged, not forwarded); a broken one is
    skipped and the crash kept."""
    native = {"release": "native@1", "user": {"email": "player@example.com"}}
    crumb = msgpack.packb({"timestamp": "2026-01-01T00:00:00Z", "message": "menu opened"})
    envelope = expand(
        ("__sentry-event", msgpack.packb(native)), ("__sentry-breadcrumb1", crumb), ("UEMinidump.dmp", MINIDUMP)
    )
    event = event_of(envelope)
    assert event["release"] == "native@1" and event["user"] == {"email": "player@example.com"}
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["menu opened"]
    assert [i.headers.get("filename") for i in envelope.items] == [None, "UEMinidump.dmp"]
    broken = expand(("__sentry-event", b"\xc1\xc1"), ("UEMinidump.dmp", MINIDUMP))
    assert event_of(broken)["platform"] == "native" and len(broken.items) == 2


# The log


def test_log_lines_become_breadcrumbs() -> None:
    """Each line after the header: its UTC time (milliseconds dropped), its component and its message."""
    log = (
        b"Log file open, 10/29/18 17:56:37\r\n"
        b"[2018.10.29-16.56.38:332][  0]LogGameplayTags: Display: UGameplayTagsManager::DoneAddingNativeTags\r\n"
        b"[2018.10.29-16.56.39:332][  0]LogStats: ConstructGameplayTagTree: ImportINI prefixes -  0.000 s\r\n"
    )
    event = event_of(expand(("Game.log", log)))
    assert event["breadcrumbs"] == {
        "values": [
            {
                "timestamp": 1540832198.0,
                "category": "LogGameplayTags",
                "message": "Display: UGameplayTagsManager::DoneAddingNativeTags",
            },
            {
                "timestamp": 1540832199.0,
                "category": "LogStats",
                "message": "ConstructGameplayTagTree: ImportINI prefixes -  0.000 s",
            },
        ]
    }
    assert "platform" not in event and "contexts" not in event  # no native crash, no context


def test_lines_without_a_time_take_the_next_ones_or_the_headers() -> None:
    """A line without a time of its own takes the nearest later line's, or the header's (local, taken as UTC)."""
    log = b"\xef\xbb\xbfLog file open, 12/13/18 15:54:53\nLogInit: first\n[2018.12.13-14.55.00:000][  0]LogA: b\nc"
    entries = log_entries(log, 40)
    assert [(e.timestamp, e.component, e.message) for e in entries] == [
        (1544712900, "LogInit", "first"),
        (1544712900, "LogA", "b"),
        (1544716493, None, "c"),  # 2018-12-13 15:54:53, from the header
    ]
    assert [e.timestamp for e in log_entries(b"Log file open, 12/13/18 99:99:99\nLogWindows: x\n", 40)] == [None]
    assert log_entries(b"", 40) == [] and log_entries(b"Log file open, 12/13/18 15:54:53\n", 40) == []


def test_only_the_last_lines_are_read_and_long_lines_are_cut() -> None:
    """A 50 MB log costs only its last lines; a huge line is cut; bytes that aren't UTF-8 don't lose the crash."""
    big = b"Log file open, 12/13/18 15:54:53\n" + b"LogSpam: filler\n" * 3_000_000 + b"LogEnd: \xff" + b"z" * 10**6
    started = time.perf_counter()
    entries = log_entries(big, 3)
    assert time.perf_counter() - started < 1
    assert [e.component for e in entries] == ["LogSpam", "LogSpam", "LogEnd"]
    assert entries[-1].message.startswith("\ufffdzzz") and len(entries[-1].message) == 8192


# Robustness

# Digits of every size, past the 4300 Python's int() reads too.
_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=12) | st.integers(4301, 6000).map(lambda n: "7" * n)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.binary(max_size=80)
        | st.builds(
            lambda fields, rest: ("[{}.{}.{}-{}.{}.{}:{}][ {}]".format(*fields) + rest).encode(),
            st.lists(_DIGITS | st.sampled_from(["2018", "10", "29", "0", "60", "99"]), min_size=8, max_size=8),
            st.text(max_size=40),
        ),
        max_size=12,
    ),
    limit=st.integers(0, 50),
)
def test_any_log_is_read(lines: list[bytes], limit: int) -> None:
    """Any log, with times of any size in any field, gives at most `limit` entries and never raises."""
    entries = log_entries(b"\n".join(lines), limit)
    assert len(entries) <= limit
    assert all(entry.timestamp is None or isinstance(entry.timestamp, int) for entry in entries)


def _valid_raw() -> bytes:
    """An uncompressed archive with a context, a log and a minidump, to mutate."""
    files = (
        ("CrashContext.runtime-xml", RHI_CONTEXT),
        ("Game.log", b"Log file open, 12/13/18 15:54:53\n[2018.12.13-14.55.00:000][  0]LogA: b\n"),
        ("UEMinidump.dmp", MINIDUMP),
    )
    return zlib.decompress(crash(*files))


VALID_RAW = _valid_raw()


def _expands_or_refuses(body: bytes) -> None:
    """Expanding `body` gives an envelope whose event is an object, or a 400/413 with a detail."""
    try:
        envelope = expand_unreal(body, 1 << 20, "a|b|c", 8)
    except HttpError as exc:
        assert exc.status in (400, 413) and exc.detail
    else:
        orjson.loads(envelope.serialize().split(b"\n", 1)[0])
        assert isinstance(event_of(envelope), dict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bodies_only_ever_raise_http_errors(body: bytes) -> None:
    """Random bytes, compressed or not, are an envelope or a 400/413: never another exception."""
    _expands_or_refuses(body)
    _expands_or_refuses(zlib.compress(body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID_RAW) - 1), st.integers(0, 255), st.sampled_from(["set", "insert", "cut"])),
        min_size=1,
        max_size=6,
    ),
    cut_compressed=st.integers(0, 64),
)
def test_mutated_archives_only_ever_raise_http_errors(edits: list[tuple[int, int, str]], cut_compressed: int) -> None:
    """A real-looking archive with bytes changed, inserted or cut (lengths, counts, names, XML, log) is an
    envelope or a 400/413, and so is its compressed form cut short."""
    raw = bytearray(VALID_RAW)
    for position, value, how in edits:
        position %= max(len(raw), 1)
        if how == "set" and raw:
            raw[position] = value
        elif how == "insert":
            raw.insert(position, value)
        else:
            del raw[position : position + value]
    body = zlib.compress(bytes(raw))
    _expands_or_refuses(body)
    _expands_or_refuses(body[: max(len(body) - cut_compressed, 0)])


def _mutated(data: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    """`data` with each (position, bytes) written over it."""
    out = bytearray(data)
    if not edits:
        return data
    for position, chunk in edits:
        out[position % len(out) : position % len(out) + len(chunk)] = chunk
    return bytes(out)


_XML_BITS = st.sampled_from([b"<", b">", b"/", b"&", b";", b'"', b"<!", b"UF-8", b"utf-32", b"&#0;", b"\0", b"\xff"])


@settings(max_examples=200, deadline=None)
@given(
    context=st.binary(max_size=600)
    | st.text(max_size=300).map(lambda t: context_xml(runtime=t))
    | st.builds(
        lambda encoding, edits: _mutated(RHI_CONTEXT.replace(b"UTF-8", encoding), edits),
        st.sampled_from([b"UTF-8", b"UF-8", b"utf-32", b"utf-16", b"latin-1", b"base64", b"cp1252", b""]),
        st.lists(st.tuples(st.integers(0, 2000), _XML_BITS | st.binary(max_size=4)), max_size=5),
    )
)
def test_any_context_file_only_ever_raises_http_errors(context: bytes) -> None:
    """Whatever the context file holds (noise, odd text, a real context with XML syntax or its encoding
    changed), the answer is an envelope or a 400."""
    _expands_or_refuses(crash(("CrashContext.runtime-xml", context), ("x.log", context)))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_FIELDS = ["logentry", "message", "user", "contexts", "tags", "breadcrumbs", "level", "sdk", "event_id", "x"]


@settings(max_examples=150, deadline=None)
@given(
    event=st.dictionaries(st.sampled_from(_FIELDS), _JSON | st.dictionaries(st.sampled_from(_FIELDS), _JSON)),
    user_id=st.none() | st.text(alphabet="ab|", max_size=6),
)
def test_any_sentry_event_takes_the_crash_context(event: dict[str, Any], user_id: str | None) -> None:
    """Whatever shape the `__sentry` event's fields have, the context, log and `UserID` merge into it."""
    game = "<__sentry>" + orjson.dumps(event).decode().replace("&", "&amp;").replace("<", "&lt;") + "</__sentry>"
    xml = RHI_CONTEXT.replace(b"<GameData></GameData>", f"<GameData>{game}</GameData>".encode())
    log = b"Log file open, 12/13/18 15:54:53\n[2018.12.13-14.55.00:000][  0]LogA: b\n"
    merged = event_of(expand(("CrashContext.runtime-xml", xml), ("a.log", log), user_id=user_id))
    assert isinstance(merged["contexts"]["unreal"], dict)
    assert merged["breadcrumbs"]["values"][-1]["message"] == "b"


async def test_a_large_archive_is_expanded_off_the_event_loop() -> None:
    """Past 64 KiB the archive is expanded on a worker thread, with the same result."""
    payload = random.Random(7).randbytes(100_000)  # incompressible
    body = crash(("UEMinidump.dmp", MINIDUMP + payload))
    assert len(body) > 64 * 1024
    envelope = await unreal_to_envelope(body, LIMIT)
    assert envelope.items[1].payload == MINIDUMP + payload
    with pytest.raises(HttpError):
        await unreal_to_envelope(body[:-100], LIMIT)


# Through the relay


async def test_the_expanded_crash_is_scrubbed_like_any_event(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The expanded envelope goes through the pipeline: personal data in the context, the GameData, the log and
    the user report is scrubbed before it leaves."""
    projects = projects_yaml(upstream.url, extra="    forward_unscannable: true")  # the minidump still goes
    client = await make_relay(rules="[secrets, pii]", projects=projects)
    state = state_of(client)
    xml = context_xml(
        runtime="<UserName>jdoe</UserName><UserDescription>mail me: crash.victim@example.com</UserDescription>"
        "<ErrorMessage>token sk_live_4eC39HqLyjWDarjtT1zdp7dc rejected</ErrorMessage>",
        game="<Contact>player.one@example.org</Contact>",
    )
    log = b"Log file open, 12/13/18 15:54:53\n[2018.12.13-14.55.00:000][  0]LogNet: login bob@example.net\n"
    envelope = expand(("CrashContext.runtime-xml", xml), ("Game.log", log), ("UEMinidump.dmp", MINIDUMP))
    auth = Auth(KEY)
    await state.ingest.accept(envelope, PROJECT, state.projects.authorize(PROJECT, auth), auth)
    await upstream.wait_for(1)
    forwarded = upstream.received[0].envelope
    assert forwarded.event_id == envelope.event_id
    assert "event" in [i.type for i in forwarded.items]
    assert any(i.headers.get("attachment_type") == "event.minidump" for i in forwarded.items)
    wire = forwarded.serialize()
    for secret in (b"crash.victim@example.com", b"4eC39HqLyjWDarjtT1zdp7dc", b"player.one@example.org", b"bob@example"):
        assert secret not in wire


async def test_unreal_endpoint(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`POST /api/<project>/unreal/<key>/` answers 200 with the event id as a hyphenated UUID (as Relay does) and
    forwards the event with the crash's files."""
    client = await make_relay()
    resp = await client.post(
        f"/api/{PROJECT}/unreal/{KEY}/",
        params={"UserID": USER_ID},
        data=fixture("unreal_crash"),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status == 200, await resp.text()
    text = await resp.text()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert envelope.event_id == uuid.UUID(text).hex
    event = event_of(envelope)
    assert event["contexts"]["unreal"]["crash_guid"] == "UE4CC-Windows-379993BB42BD8FBED67986857D8844B5_0000"
    assert event["user"]["id"] == "ebff51ef3c4878627823eebd9ff40eb4"
    assert "UE4Minidump.dmp" in [i.headers.get("filename") for i in envelope.items]
    resp = await client.post(f"/api/{PROJECT}/unreal/{KEY}/", data=b"not an archive")
    assert resp.status == 400 and "zlib" in (await resp.json())["detail"]


async def test_unreal_endpoint_never_answers_429(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Over an error quota a crash report is still answered 200 with its id (the crash reporter retries a 429),
    and counted as rate limited; a key in the request as well as the path is 401."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    quotas:
      - {{id: crashes, categories: [error], scope: key, limit: 0, window: 1h}}
"""
    client = await make_relay(projects=projects)
    resp = await client.post(f"/api/{PROJECT}/unreal/{KEY}/", data=fixture("unreal_crash"))
    assert resp.status == 200, await resp.text()
    assert re.fullmatch(r"[0-9a-f-]{36}", await resp.text())
    assert "X-Sentry-Rate-Limits" in resp.headers
    resp = await client.post(f"/api/{PROJECT}/unreal/{KEY}/?sentry_key={KEY}", data=fixture("unreal_crash"))
    assert resp.status == 401
