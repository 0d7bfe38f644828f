"""A fake Sentry upstream run as a process on its own host: answers 200 and reports each envelope's event id.

    python upstream_host.py --host 10.77.0.2 --port 8000

Prints one JSON line when it listens (`{"listening": ...}`), then one per envelope received:
`{"id": <event id or null>, "t": <time.monotonic()>, "peer": <sender's address>}`. CLOCK_MONOTONIC is the same
in every network namespace of the machine, so the test compares these times with its own.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

import orjson
from aiohttp import web


def report(record: dict[str, object]) -> None:
    """One JSON line on stdout, flushed at once."""
    sys.stdout.write(orjson.dumps(record).decode() + "\n")
    sys.stdout.flush()


async def receive(request: web.Request) -> web.Response:
    """Record the envelope's event id (aiohttp has undone the gzip Content-Encoding) and accept it."""
    body = await request.read()
    header = body.split(b"\n", 1)[0]
    try:
        event_id = orjson.loads(header).get("event_id")
    except orjson.JSONDecodeError:
        event_id = None
    report({"id": event_id, "t": time.monotonic(), "peer": request.remote})
    return web.json_response({})


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/api/{project}/envelope/", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    report({"listening": f"{host}:{port}"})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
