"""Forwarding: upstreams, backoff, and the batch forwarder."""

from .backoff import backoff_delay
from .forwarder import Forwarder
from .upstream import FileUpstream, HttpUpstream, Upstream, UpstreamResponse, UpstreamRouter

__all__ = [
    "FileUpstream",
    "Forwarder",
    "HttpUpstream",
    "Upstream",
    "UpstreamResponse",
    "UpstreamRouter",
    "backoff_delay",
]
