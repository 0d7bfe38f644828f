"""Structured logs: one JSON object per line, never an event payload."""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from typing import Any

import orjson

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as `{"ts", "level", "logger", "msg", ...fields}`."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line per record."""
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Send the relay's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


# The user part of a URL (`https://user:password@host`, a DSN's key): never written to a log.
_URL_USER = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]{0,20}://)[^/\s@]{1,512}@")


def masked(text: str) -> str:
    """`text` with the user part of every URL in it replaced (`https://[Filtered]@host`)."""
    return _URL_USER.sub(r"\1[Filtered]@", text) if "@" in text else text


def log_event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log a message with structured fields (ids, sizes, reasons; never payloads); credentials in URLs are masked."""
    if logger.isEnabledFor(level):
        for name, value in fields.items():
            if isinstance(value, str) and "@" in value:
                fields[name] = masked(value)
        logger.log(level, message, extra=fields)


def log_failure(logger: logging.Logger, message: str, exc: BaseException, **fields: Any) -> None:
    """Log an unexpected exception by its type and where it was raised (the last frames' files and lines), never
    its message or a traceback's text: either can quote the payload being handled."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    where = " < ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" for frame in reversed(frames))
    log_event(logger, logging.ERROR, message, error=type(exc).__name__, where=where, **fields)
