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
    quiet_protocol_errors()


class _ProtocolErrors(logging.Filter):
    """aiohttp's own error records, made safe: its exception text and traceback quote the request (a malformed
    header line with the relay key or a cookie), and its message names the client's address.

    - A client's malformed request (aiohttp's HttpProcessingError: a bad header, a bad request line) is the
      client's error, not the relay's: logged at DEBUG as its status and the exception's type only.
    - Anything else is an error, logged as `log_failure` logs one: its type and where it was raised.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        from aiohttp.http_exceptions import HttpProcessingError

        fields = record.__dict__
        fields["error"] = type(exc).__name__
        record.exc_info, record.exc_text, record.args = None, None, ()
        if isinstance(exc, HttpProcessingError):
            record.msg = "malformed HTTP request refused"
            fields["status"] = exc.code
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        record.msg = "error handling an HTTP request"
        fields["where"] = _where(exc)
        return True


def quiet_protocol_errors() -> None:
    """Put aiohttp's server loggers' error records through _ProtocolErrors (once)."""
    for name in ("aiohttp.server", "aiohttp.web"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _ProtocolErrors) for f in target.filters):
            target.addFilter(_ProtocolErrors())


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
    log_event(logger, logging.ERROR, message, error=type(exc).__name__, where=_where(exc), **fields)


def _where(exc: BaseException) -> str:
    """Where an exception was raised: the last frames' files and lines, innermost first."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    return " < ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" for frame in reversed(frames))
