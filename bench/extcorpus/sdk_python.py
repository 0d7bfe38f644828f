"""Replaying scenarios through the real sentry-python SDK.

Each scenario is a WSGI request to an app wrapped in the SDK's own `SentryWsgiMiddleware`, so `request`
(url, query string, headers, env) and the transaction come from the SDK. Inside the app the scenario's scope
data, breadcrumbs and logs are set, db spans run, and an exception is raised through generated functions
(their locals are the frame variables) or a message is captured. As in bench/corpus.py the SDK's
client-side EventScrubber is switched off, so payloads reach the relay raw.
"""

from __future__ import annotations

import io
import json
import linecache
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

APP_FILE = "/srv/app/shop/handlers.py"
ITEM_TYPES = ("event", "transaction", "log")


class _Holder:
    items: list[tuple[str, dict[str, Any]]] = []


def _init() -> None:
    import sentry_sdk
    from sentry_sdk.scrubber import EventScrubber
    from sentry_sdk.transport import Transport

    class MemoryTransport(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                if item.type in ITEM_TYPES:
                    _Holder.items.append((item.type, json.loads(item.payload.get_bytes())))

    class PassThrough(EventScrubber):
        def scrub_event(self, event: Any) -> None:
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sentry_sdk.init(
            dsn="http://public@127.0.0.1:9/1",
            transport=MemoryTransport(),
            send_default_pii=True,
            include_local_variables=True,
            max_request_body_size="always",
            traces_sample_rate=1.0,
            enable_logs=True,
            release="shop-backend@4.12.0",
            environment="production",
            server_name="web-1",
            event_scrubber=PassThrough(),
            default_integrations=True,
        )
    logging.getLogger("sentry_sdk.errors").setLevel(logging.CRITICAL)


def _raiser(exc: dict[str, Any]) -> Callable[[], None]:
    """Nested generated functions; the innermost holds the scenario's locals and raises."""
    names = [k for k in exc.get("vars", {}) if k.isidentifier()]
    frames = exc["functions"]
    lines = [
        "class PaymentError(Exception): pass",
        "class ValidationError(Exception): pass",
        "class IntegrityError(Exception): pass",
    ]
    for depth, fn in enumerate(frames):
        lines.append(f"def {fn}():")
        if depth + 1 < len(frames):
            lines.append(f"    return {frames[depth + 1]}()")
        else:
            # Module globals (not locals) carry the values in, so only the named locals hold them.
            lines += [f"    {name} = _VALUES[{i}]" for i, name in enumerate(names)]
            lines.append("    raise _ERROR(_MESSAGE)")
    source = "\n".join(lines) + "\n"
    linecache.cache[APP_FILE] = (len(source), None, source.splitlines(True), APP_FILE)
    namespace: dict[str, Any] = {"__name__": "shop.handlers"}
    exec(compile(source, APP_FILE, "exec"), namespace)
    errors = {"ValueError": ValueError, "LookupError": LookupError, "RuntimeError": RuntimeError}
    namespace["_ERROR"] = errors.get(exc["type"]) or namespace[exc["type"]]
    namespace["_MESSAGE"] = exc["value"]
    namespace["_VALUES"] = [exc["vars"][k] for k in names]
    entry: Callable[[], None] = namespace[frames[0]]
    return entry


def _environ(request: dict[str, Any]) -> dict[str, Any]:
    body = (request.get("body") or "").encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.get("method", "GET"),
        # WSGI carries the decoded path as latin-1 text, as servers pass it.
        "PATH_INFO": unquote(request["path"]).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": request.get("query", ""),
        "SERVER_NAME": "shop.example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.3.17",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "shop.example.com",
    }
    for name, value in request.get("headers", {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _strip_harness(payload: dict[str, Any]) -> dict[str, Any]:
    """Frames of this module are the harness, not the app: their locals (the scenario) are dropped."""
    for exc in (payload.get("exception") or {}).get("values") or []:
        for frame in (exc.get("stacktrace") or {}).get("frames") or []:
            if frame.get("abs_path") == __file__:
                frame.pop("vars", None)
    return payload


def _set_scope(scenario: dict[str, Any]) -> None:
    import sentry_sdk

    for field, value in scenario["user"].items():
        sentry_sdk.get_isolation_scope().set_user({**(sentry_sdk.get_isolation_scope()._user or {}), field: value})
    for key, value in scenario["tags"].items():
        sentry_sdk.set_tag(key, value)
    for key, value in scenario["extra"].items():
        sentry_sdk.set_extra(key, value)
    for key, value in scenario["contexts"].items():
        sentry_sdk.set_context(key, value)
    for crumb in scenario["breadcrumbs"]:
        sentry_sdk.add_breadcrumb(**crumb)
    for log in scenario["logs"]:
        level = {"warn": "warning"}.get(log["level"], log["level"])
        getattr(sentry_sdk.logger, level)(
            log["body"].replace("{", "{{").replace("}", "}}"), attributes=log.get("attributes") or {}
        )
    for span in scenario["spans"]:
        with sentry_sdk.start_span(op=span["op"], name=span["description"]):
            pass


def _app(scenario: dict[str, Any]) -> Callable[..., Any]:
    import sentry_sdk

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        _set_scope(scenario)
        if "exception" in scenario:
            _raiser(scenario["exception"])()
        sentry_sdk.capture_message(scenario["message"], level="error")
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"error"]

    return app


def capture(scenarios: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(scenario id, item type, payload) for every event, transaction and log item the SDK sends."""
    import sentry_sdk
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    _init()
    for scenario in scenarios:
        _Holder.items = []
        wrapped = SentryWsgiMiddleware(_app(scenario))
        with sentry_sdk.isolation_scope():
            try:
                response = wrapped(_environ(scenario["request"]), lambda *a, **k: None)
                for _ in response:
                    pass
                getattr(response, "close", lambda: None)()
            except Exception:  # the middleware reports the exception and re-raises it, as under a server
                pass
        sentry_sdk.flush()
        for item_type, payload in _Holder.items:
            yield scenario["id"], item_type, _strip_harness(payload)
    sentry_sdk.get_client().close()
