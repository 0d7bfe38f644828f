"""Upstreams: where envelope bytes are sent. HTTP to Sentry, or a JSON-lines file sink."""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson
from yarl import URL

from .. import __version__
from ..config import UpstreamConfig
from ..envelope import JSON_ITEM_TYPES, parse_envelope
from ..errors import EnvelopeError, UpstreamUnavailable
from ..routing import Target
from .compress import Compressor


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """What the upstream answered: the status and the headers the forwarder looks at."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


class Upstream(Protocol):
    """Sends one serialized envelope to a target."""

    async def start(self) -> None:
        """Open connections or files."""
        ...

    async def send(self, target: Target, body: bytes, client: str | None) -> UpstreamResponse:
        """Deliver the envelope; raise UpstreamUnavailable on network errors and timeouts."""
        ...

    async def close(self) -> None:
        """Release resources; idempotent."""
        ...


class HttpUpstream:
    """POSTs envelopes over a bounded pool of keep-alive connections, gzip-compressed."""

    def __init__(self, config: UpstreamConfig) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None
        self._compressor = Compressor(config.compression, config.compression_level, config.compression_min_size)

    async def start(self) -> None:
        """Create the connection pool."""
        connector = aiohttp.TCPConnector(
            limit=self._config.concurrency, keepalive_timeout=30, enable_cleanup_closed=True
        )
        timeout = aiohttp.ClientTimeout(total=self._config.timeout, sock_connect=self._config.connect_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=True,
            headers={"User-Agent": f"relay/{__version__}"},
        )

    async def send(self, target: Target, body: bytes, client: str | None) -> UpstreamResponse:
        """POST to the target's envelope endpoint with the upstream key in X-Sentry-Auth."""
        if self._session is None:
            raise UpstreamUnavailable("upstream session is not started")
        auth = (
            f"Sentry sentry_version=7, sentry_key={target.public_key}, sentry_client={client or f'relay/{__version__}'}"
        )
        headers = {"Content-Type": "application/x-sentry-envelope", "X-Sentry-Auth": auth}
        body, encoding = await self._compressor.compress(body)
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        try:
            async with self._session.post(_envelope_url(target), data=body, headers=headers) as response:
                await response.read()
                return UpstreamResponse(response.status, {k.lower(): v for k, v in response.headers.items()})
        except TimeoutError as exc:
            raise UpstreamUnavailable("timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._compressor.close()


@functools.lru_cache(maxsize=1024)
def _envelope_url(target: Target) -> URL:
    """The target's envelope endpoint, parsed once per target rather than on every send."""
    return URL(target.envelope_url)


class FileUpstream:
    """Appends each envelope as one JSON line: the offline sink for `file:///path.jsonl`."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        # file:///abs/path.jsonl is absolute; file://./rel/path.jsonl is relative to the working dir.
        host = "" if parts.netloc in ("", "localhost") else parts.netloc
        self.path = Path(unquote(host + parts.path))
        self._file: IO[bytes] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Open the file for appending, creating its directory."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")

    async def send(self, target: Target, body: bytes, client: str | None) -> UpstreamResponse:
        """Write `{"project", "public_key", "headers", "items"}`; JSON payloads stay JSON, others base64."""
        if self._file is None:
            raise UpstreamUnavailable("file sink is not open")
        line = orjson.dumps(_envelope_record(target, body)) + b"\n"
        async with self._lock:
            try:
                await asyncio.to_thread(self._write, line)
            except OSError as exc:
                raise UpstreamUnavailable(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        return UpstreamResponse(200)

    def _write(self, line: bytes) -> None:
        assert self._file is not None
        self._file.write(line)
        self._file.flush()

    async def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _envelope_record(target: Target, body: bytes) -> dict[str, Any]:
    try:
        envelope = parse_envelope(body)
    except EnvelopeError:
        return {"project": target.project_id, "public_key": target.public_key, "raw": base64.b64encode(body).decode()}
    items: list[dict[str, Any]] = []
    for item in envelope.items:
        record: dict[str, Any] = {"headers": item.headers}
        if item.type in JSON_ITEM_TYPES:
            try:
                record["payload"] = orjson.loads(item.payload)
            except orjson.JSONDecodeError:
                record["payload_base64"] = base64.b64encode(item.payload).decode()
        else:
            record["payload_base64"] = base64.b64encode(item.payload).decode()
        items.append(record)
    return {"project": target.project_id, "public_key": target.public_key, "headers": envelope.headers, "items": items}


class UpstreamRouter:
    """Sends to the file sink or over HTTP depending on the target's scheme."""

    def __init__(self, config: UpstreamConfig) -> None:
        self._http = HttpUpstream(config)
        self._files: dict[str, FileUpstream] = {}
        self._started = False

    async def start(self) -> None:
        """Start the HTTP pool; file sinks open on first use."""
        await self._http.start()
        self._started = True

    async def send(self, target: Target, body: bytes, client: str | None) -> UpstreamResponse:
        """Dispatch by URL scheme."""
        if target.base_url.startswith("file:"):
            sink = self._files.get(target.base_url)
            if sink is None:
                sink = FileUpstream(target.base_url)
                try:
                    await sink.start()
                except OSError as exc:
                    raise UpstreamUnavailable(f"cannot open {sink.path}: {exc.strerror or exc}") from exc
                self._files[target.base_url] = sink
            return await sink.send(target, body, client)
        return await self._http.send(target, body, client)

    async def close(self) -> None:
        """Close the pool and every file."""
        await self._http.close()
        for sink in self._files.values():
            await sink.close()
        self._files.clear()
