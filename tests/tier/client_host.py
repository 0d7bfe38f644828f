"""Clients on a host of their own: error and transaction envelopes round-robin to the replicas, and a watch on
each replica's /metrics.

    python client_host.py --replica a=http://10.77.0.11:3000 --replica b=... --project 42 --key <public key>
        [--errors-per-second 30] [--transactions-per-second 45] [--scrape-interval 0.1]

It waits until every replica's /readyz answers 200, then sends at a steady rate (each envelope has a fresh event
id and is sent on schedule, whatever the earlier ones are waiting for) and scrapes the replicas, until a line
`stop` arrives on stdin; then it lets the envelopes in flight finish and goes on scraping until stdin closes.
Like a load balancer's health-blind round robin, and unlike an SDK, it ignores 429's Retry-After: every envelope
asks the quota again. Everything is reported as JSON lines on stdout, times from time.monotonic():

    {"ev": "ready", "t": ...}
    {"ev": "sent", "id": ..., "kind": "error"|"transaction", "replica": "a", "status": 200 | 429 | "<error>",
     "t0": <sent>, "t": <answered>}
    {"ev": "metrics", "replica": "a", "t": ..., "backend_up": 1.0, "spool_entries": 0.0, "outage": 0.0,
     "backend_errors": 0.0, "quota_accepted": 0.0, "quota_refused": 0.0}
    {"ev": "stopped", "t": ..., "sent": <envelopes>}
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import uuid

import aiohttp
import orjson

GAUGES = {
    "backend_up": ("relay_ratelimit_backend_up", ""),
    "spool_entries": ("relay_spool_entries", ""),
    "outage": ("relay_upstream_outage", ""),
    "backend_errors": ("relay_ratelimit_backend_errors_total", ""),
    "quota_accepted": ("relay_quota_units_total", 'result="accepted"'),
    "quota_refused": ("relay_quota_units_total", 'result="refused"'),
}


def report(record: dict[str, object]) -> None:
    """One JSON line on stdout, flushed at once."""
    sys.stdout.write(orjson.dumps(record).decode() + "\n")
    sys.stdout.flush()


def metric(text: str, name: str, labels: str = "") -> float:
    """The sum of a metric's samples (whose labels contain `labels`) in a Prometheus exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", re.M)
    return sum(float(m.group(2)) for m in pattern.finditer(text) if labels in (m.group(1) or ""))


def envelope(kind: str, event_id: str, key: str, project: int) -> bytes:
    """One error event or one transaction, with its event id in the envelope header."""
    now = time.time()
    if kind == "error":
        payload: dict[str, object] = {"event_id": event_id, "level": "error", "message": f"tier test {event_id[:8]}"}
        item_type = "event"
    else:
        trace = {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "op": "http.server"}
        payload = {
            "event_id": event_id,
            "type": "transaction",
            "transaction": "/checkout",
            "spans": [],
            "start_timestamp": now - 0.05,
            "timestamp": now,
            "contexts": {"trace": trace},
        }
        item_type = "transaction"
    body = orjson.dumps(payload)
    header = {"event_id": event_id, "dsn": f"http://{key}@relay/{project}", "sent_at": now}
    item = {"type": item_type, "length": len(body)}
    return b"\n".join([orjson.dumps(header), orjson.dumps(item), body]) + b"\n"


class Clients:
    """The senders and the scraper, sharing one connection pool."""

    def __init__(self, replicas: dict[str, str], project: int, key: str) -> None:
        self.replicas = replicas
        self.project = project
        self.key = key
        self.sending = True
        self.sends: set[asyncio.Task[None]] = set()
        self.count = 0
        timeout = aiohttp.ClientTimeout(total=10)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), timeout=timeout)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll every replica's /readyz until it answers 200."""
        deadline = time.monotonic() + timeout
        for name, url in self.replicas.items():
            while True:
                try:
                    async with self.session.get(f"{url}/readyz") as answer:
                        if answer.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"replica {name} at {url} never became ready")
                await asyncio.sleep(0.05)
        report({"ev": "ready", "t": time.monotonic()})

    async def send_at(self, kind: str, rate: float, offset: int) -> None:
        """Send `rate` envelopes of one kind a second, round-robin from replica number `offset`, until stopped."""
        names = list(self.replicas)
        started = time.monotonic()
        index = 0
        while self.sending:
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            if not self.sending:
                break
            task = asyncio.create_task(self.send_one(kind, names[(index + offset) % len(names)]))
            self.sends.add(task)
            task.add_done_callback(self.sends.discard)
            index += 1

    async def send_one(self, kind: str, replica: str) -> None:
        """POST one envelope with a fresh event id and report the answer."""
        event_id = uuid.uuid4().hex
        body = envelope(kind, event_id, self.key, self.project)
        headers = {
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={self.key}, sentry_client=tier-test/1.0",
            "Content-Type": "application/x-sentry-envelope",
        }
        sent = time.monotonic()
        status: int | str
        try:
            url = f"{self.replicas[replica]}/api/{self.project}/envelope/"
            async with self.session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        self.count += 1
        report(
            {
                "ev": "sent",
                "id": event_id,
                "kind": kind,
                "replica": replica,
                "status": status,
                "t0": sent,
                "t": time.monotonic(),
            }
        )

    async def scrape(self, interval: float) -> None:
        """Report each replica's quota and spool gauges every `interval` seconds."""
        while True:
            started = time.monotonic()
            await asyncio.gather(*(self.scrape_one(name) for name in self.replicas))
            await asyncio.sleep(max(0.0, started + interval - time.monotonic()))

    async def scrape_one(self, name: str) -> None:
        """One replica's gauges (nothing is reported when /metrics doesn't answer)."""
        try:
            async with self.session.get(f"{self.replicas[name]}/metrics") as answer:
                text = await answer.text()
        except (aiohttp.ClientError, TimeoutError):
            return
        record: dict[str, object] = {"ev": "metrics", "replica": name, "t": time.monotonic()}
        for field, (metric_name, labels) in GAUGES.items():
            record[field] = metric(text, metric_name, labels)
        report(record)


async def run(args: argparse.Namespace) -> None:
    """Wait for the replicas, send and scrape until told to stop, scrape until stdin closes."""
    replicas = dict(pair.split("=", 1) for pair in args.replica)
    clients = Clients(replicas, args.project, args.key)
    stdin = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        await clients.wait_ready()
        scraper = asyncio.create_task(clients.scrape(args.scrape_interval))
        senders = [
            asyncio.create_task(clients.send_at("error", args.errors_per_second, 0)),
            asyncio.create_task(clients.send_at("transaction", args.transactions_per_second, 1)),
        ]
        while line := await stdin.readline():
            if line.strip() == b"stop" and clients.sending:
                clients.sending = False
                await asyncio.gather(*senders)
                await asyncio.gather(*list(clients.sends))
                report({"ev": "stopped", "t": time.monotonic(), "sent": clients.count})
        scraper.cancel()
    finally:
        await clients.session.close()


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replica", action="append", required=True, help="name=base URL")
    parser.add_argument("--project", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--errors-per-second", type=float, default=30.0)
    parser.add_argument("--transactions-per-second", type=float, default=45.0)
    parser.add_argument("--scrape-interval", type=float, default=0.1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
