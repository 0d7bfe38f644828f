"""Inbound filters: which events a project doesn't want, decided before anything is spent on them."""

from __future__ import annotations

import ipaddress
import re
from fnmatch import fnmatchcase

from ..config import FiltersConfig
from ..envelope.event import EventView

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


def matching_filter(filters: FiltersConfig, category: str, event: EventView) -> str | None:
    """The name of the first filter that drops this event, or None to keep it."""
    if filters.releases and _any(event.text("release"), filters.releases):
        return "releases"
    if filters.environments and _any(event.text("environment"), filters.environments):
        return "environments"
    if category == "transaction":
        if filters.transactions and _any(event.text("transaction"), filters.transactions):
            return "transactions"
    else:
        if filters.exception_types and any(_any(t, filters.exception_types) for t in event.exception_types()):
            return "exception_types"
        if filters.messages and any(_any(m, filters.messages, fold=True) for m in event.messages()):
            return "messages"
        if filters.browser_extensions and _from_extension(event):
            return "browser_extensions"
    if filters.localhost and _from_localhost(event):
        return "localhost"
    if filters.web_crawlers and _from_crawler(event):
        return "web_crawlers"
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
               for host in event.hosts())  # fmt: skip


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
    agent = event.header("user-agent")
    return agent is not None and _CRAWLERS.search(agent) is not None


__all__ = ["matching_filter"]
