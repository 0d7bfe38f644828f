"""Inbound filters: which events a project doesn't want, decided before anything is spent on them."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from fnmatch import fnmatchcase

from ..config import FiltersConfig
from ..envelope.event import EventView
from .fields import header, hosts
from .guard import rule_failed

logger = logging.getLogger("relay.filter")

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_EXTENSION_SCHEMES = (
    "chrome-extension://",
    "moz-extension://",
    "safari-extension://",
    "safari-web-extension://",
    "ms-browser-extension://",
    "chrome://",
    "resource://",
    "webkit-masked-url://",
)
# Errors that browser extensions and injected third-party scripts are known to cause.
_EXTENSION_NOISE = re.compile(
    r"top\.GLOBALS|originalCreateNotification|canvas\.contentDocument|MyApp_RemoveAllHighlights|"
    r"tt\.epicplay\.com|Can't find variable: ZiteReader|jigsaw is not defined|ComboSearch is not defined|"
    r"loading\.retry\.widdit\.com|atomicFindClose|fb_xd_fragment|bmi_SafeAddOnload|EBCallBackMessageReceived|"
    r"_gCrWeb|conduitPage|__firefox__|plugin\.js|127\.0\.0\.1:4001/isrunning|"
    r"webkit-masked-url|Non-Error promise rejection captured with value: Object Not Found Matching Id"
)
_CRAWLERS = re.compile(
    r"bot\b|bot/|spider|crawl|slurp|mediapartners-google|adsbot|googlebot|bingbot|yandex|baiduspider|"
    r"duckduckbot|facebookexternalhit|facebot|twitterbot|linkedinbot|embedly|quora link preview|"
    r"showyoubot|outbrain|pinterest|applebot|ahrefs|semrush|mj12bot|petalbot|bytespider|gptbot|claudebot|"
    r"ccbot|perplexitybot|amazonbot|dotbot|rogerbot|seznambot|sogou|exabot|ia_archiver|headlesschrome|"
    r"phantomjs|lighthouse|pingdom|uptimerobot|statuscake|site24x7|datadog synthetics|newrelicpinger",
    re.IGNORECASE,
)


# The filters in the order they are tried: name (the `FiltersConfig` field that turns it on), whether it
# reads transactions (True), everything else (False) or both (None), and its test.
_FILTERS: tuple[tuple[str, bool | None, Callable[[FiltersConfig, EventView], bool]], ...] = (
    ("releases", None, lambda f, e: _any(e.text("release"), f.releases)),
    ("environments", None, lambda f, e: _any(e.text("environment"), f.environments)),
    ("transactions", True, lambda f, e: _any(e.text("transaction"), f.transactions)),
    ("exception_types", False, lambda f, e: any(_any(t, f.exception_types) for t in e.exception_types())),
    ("messages", False, lambda f, e: any(_any(m, f.messages, fold=True) for m in e.messages())),
    ("browser_extensions", False, lambda f, e: _from_extension(e)),
    ("localhost", None, lambda f, e: _from_localhost(e)),
    ("web_crawlers", None, lambda f, e: _from_crawler(e)),
)


def matching_filter(filters: FiltersConfig, category: str, event: EventView) -> str | None:
    """The name of the first filter that drops this event, or None to keep it.

    A filter that raises on malformed event data doesn't match (logged by name and exception type).
    """
    is_transaction = category == "transaction"
    for name, transactions, test in _FILTERS:
        if not getattr(filters, name) or (transactions is not None and transactions != is_transaction):
            continue
        try:
            if test(filters, event):
                return name
        except Exception as exc:
            rule_failed(logger, "filters", name, exc)
    return None


def _any(value: str | None, patterns: tuple[str, ...], *, fold: bool = False) -> bool:
    if value is None:
        return False
    if fold:
        value = value.lower()
        return any(fnmatchcase(value, p.lower()) for p in patterns)
    return any(fnmatchcase(value, p) for p in patterns)


def _from_localhost(event: EventView) -> bool:
    ip = event.user_ip()
    if ip is not None and _is_loopback(ip):
        return True
    return any(host.lower() in _LOCAL_HOSTS or host.lower().endswith(".localhost") or _is_loopback(host)
               for host in hosts(event))  # fmt: skip


def _is_loopback(value: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip("[]")).is_loopback
    except ValueError:
        return False


def _from_extension(event: EventView) -> bool:
    for frame in event.frames():
        for key in ("abs_path", "filename", "module"):
            value = frame.get(key)
            if isinstance(value, str) and value.startswith(_EXTENSION_SCHEMES):
                return True
    return any(_EXTENSION_NOISE.search(message) for message in event.messages())


def _from_crawler(event: EventView) -> bool:
    agent = header(event, "user-agent")
    return agent is not None and _CRAWLERS.search(agent) is not None


__all__ = ["matching_filter"]
