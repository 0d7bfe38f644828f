"""The ceiling: the least an aiohttp server must do per envelope, to compare the relay against.

    python bench/ceiling.py --port N

It reads the body, parses the envelope header and every item payload with orjson, and answers
`{"id": <event_id>}`, as the relay's endpoint does. No auth, no scrubbing, no spool. It runs in its
own process with the relay's core pinning, so relay events/s ÷ ceiling events/s says how much of
one core's HTTP capacity the relay's work leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import orjson
from aiohttp import web


def parse_envelope(body: bytes) -> str | None:
    """Parse the header and each item (header and payload); the event id, if any."""
    end = body.find(b"\n")
    header = orjson.loads(body[: end if end >= 0 else None])
    pos = len(body) if end < 0 else end + 1
    while pos < len(body):
        end = body.find(b"\n", pos)
        if end < 0:
            end = len(body)
        line = body[pos:end]
        pos = end + 1
        if not line.strip():
            continue
        item = orjson.loads(line)
        length = item.get("length")
        if isinstance(length, int):
            payload = body[pos : pos + length]
            pos += length + 1
        else:
            end = body.find(b"\n", pos)
            end = len(body) if end < 0 else end
            payload, pos = body[pos:end], end + 1
        orjson.loads(payload)
    event_id = header.get("event_id")
    return event_id if isinstance(event_id, str) else None


async def handle_envelope(request: web.Request) -> web.Response:
    """Read, parse, answer with the event id."""
    event_id = parse_envelope(await request.read())
    return web.Response(body=orjson.dumps({"id": event_id}), content_type="application/json")


async def handle_ready(request: web.Request) -> web.Response:
    """Readiness, polled by the benchmark before it starts."""
    return web.Response(text="ok")


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:port until SIGTERM or SIGINT."""
    app = web.Application(client_max_size=20 * 1024**2, handler_args={"auto_decompress": False})
    app.router.add_post(r"/api/{project_id}/envelope{slash:/?}", handle_envelope)
    app.router.add_get("/readyz", handle_ready)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
