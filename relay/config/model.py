"""The validated configuration: small frozen dataclasses, built by `load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ..scrub.detectors.phones import DEFAULT_REGIONS as PHONE_REGIONS
from ..scrub.identity import DEFAULT_KEYS as IDENTITY_KEYS
from .dsn import Dsn


class UnknownProjects(StrEnum):
    """What to do with a project id that is not in `projects`."""

    REJECT = "reject"
    FORWARD = "forward"


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """Where the ingest HTTP server listens."""

    host: str = "127.0.0.1"
    port: int = 3000
    # A connection that sends no complete request for this long is closed (idle keep-alive, slow headers).
    idle_timeout: float = 15.0
    # A request whose body stops arriving for this long gets 408 and its connection closed.
    body_timeout: float = 30.0
    # Connections open at once; past it new ones are closed as they arrive (each costs memory and a descriptor).
    max_connections: int = 2048


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Exponential backoff with full jitter for upstream sends."""

    initial: float = 0.5
    max: float = 60.0
    multiplier: float = 2.0
    max_elapsed: float = 0.0  # 0 means: retry for as long as the spool keeps it (spool.max_age)


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """How the forwarder drains its queue."""

    max_envelopes: int = 100
    linger: float = 0.002


@dataclass(frozen=True, slots=True)
class OutageConfig:
    """When to stop retrying every envelope and probe the upstream one at a time."""

    after_failures: int = 5  # consecutive failed sends that start outage mode
    probe_max: float = 30.0  # cap on the wait between probes


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """The default upstream and how the relay talks to it."""

    url: str = "https://sentry.io"
    timeout: float = 10.0
    connect_timeout: float = 5.0
    concurrency: int = 16
    compression: str = "gzip"  # gzip | zstd | none (the body encoding toward the upstream)
    compression_level: int = 0  # 0: the encoding's fast default (gzip 1, zstd 3)
    compression_min_size: int = 0  # smaller bodies go uncompressed
    max_rate_limit: float = 3600.0  # longest rate limit taken from the upstream; longer ones are cut to it
    retry: RetryConfig = field(default_factory=RetryConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    outage: OutageConfig = field(default_factory=OutageConfig)


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """`projects[].quotas[]`: Sentry's quota shape, plus an optional burst."""

    id: str
    categories: frozenset[str]  # empty: every category
    scope: str  # project | key
    limit: int
    window: int  # seconds
    burst: int | None = None
    reason_code: str | None = None

    def applies_to(self, category: str) -> bool:
        """Whether items of this category count against the quota."""
        return not self.categories or category in self.categories


@dataclass(frozen=True, slots=True)
class SamplingRule:
    """One ordered sampling rule: conditions (globs, all must hold) and the rate when they do."""

    id: str
    rate: float
    categories: frozenset[str] = frozenset()  # empty: errors and transactions alike
    level: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    release: tuple[str, ...] = ()
    exception_type: tuple[str, ...] = ()
    transaction: tuple[str, ...] = ()
    tags: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    """`projects[].sampling`: per-category rates and ordered rules (first match wins)."""

    rates: tuple[tuple[str, float], ...] = ()
    rules: tuple[SamplingRule, ...] = ()

    def rate_for(self, category: str) -> float | None:
        """The configured rate for a category, if any."""
        for name, rate in self.rates:
            if name == category:
                return rate
        return None


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """`ratelimit`: where quota counters live."""

    backend: str = "memory"  # memory | redis
    # redis://, rediss:// (TLS), unix://, or redis+sentinel:// / rediss+sentinel:// (hosts are the sentinels,
    # the path names the service): see `relay.config.ratelimit.parse_redis_url`
    url: str = "redis://127.0.0.1:6379/0"
    timeout: float = 0.05  # per Redis round trip; slower answers fall back to the local limiter
    key_prefix: str = "relay"
    reconnect: float = 5.0  # after a failure, how long to use the local limiter before trying Redis again
    cluster: bool = False  # `url` names one node (or the configuration endpoint) of a Redis Cluster
    username: str = ""  # ACL user; or in the url (not both)
    password: str = field(default="", repr=False)
    sentinel_username: str = ""  # for the sentinels themselves, if they require AUTH
    sentinel_password: str = field(default="", repr=False)
    tls_ca_file: str = ""  # rediss:// only: CA bundle that signed the server's certificate (default: system CAs)
    tls_cert_file: str = ""  # rediss:// only: client certificate, for servers with tls-auth-clients yes
    tls_key_file: str = ""


@dataclass(frozen=True, slots=True)
class OutcomesConfig:
    """`outcomes`: the relay's discards, reported upstream as client reports."""

    client_reports: bool = True
    interval: float = 30.0


@dataclass(frozen=True, slots=True)
class FiltersConfig:
    """`filters`: inbound filters; a matching event is dropped (outcome filtered, reason filter:<name>)."""

    exception_types: tuple[str, ...] = ()  # globs on exception types
    messages: tuple[str, ...] = ()  # globs on the message and exception values (case-insensitive)
    transactions: tuple[str, ...] = ()  # globs on transaction names (transactions only)
    releases: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    localhost: bool = False
    browser_extensions: bool = False
    web_crawlers: bool = False

    @property
    def active(self) -> bool:
        """Whether any filter is on."""
        return any(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class FingerprintMatcher:
    """One condition of a fingerprint rule: a Sentry matcher key, a glob, optionally negated."""

    key: str  # error.type, error.value, message, logger, level, stack.function, tags.<name>, ...
    pattern: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class FingerprintRule:
    """Sentry server-side fingerprinting, applied centrally: first match wins."""

    matchers: tuple[FingerprintMatcher, ...]
    fingerprint: tuple[str, ...]
    override: bool = False  # replace a fingerprint the SDK set (kept otherwise)
    source: str = ""  # where the rule came from, for messages


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """`admin`: a second listener for operators and compliance teams (the rule playground); off by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 3001


@dataclass(frozen=True, slots=True)
class TunnelConfig:
    """`tunnel`: the path where the browser SDK's `tunnel` option posts envelopes; off when absent."""

    path: str


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """One project the relay accepts events for."""

    id: int
    keys: tuple[str, ...]
    upstream_dsn: Dsn | None = None
    disabled: bool = False
    allowed_origins: tuple[str, ...] = ("*",)
    rules: tuple[str, ...] | None = None  # None: the top-level `rules` list
    forward_unscannable: bool = False  # forward attachments, minidumps and replays that can't be scrubbed
    quotas: tuple[QuotaConfig, ...] = ()
    sampling: SamplingConfig | None = None
    filters: FiltersConfig | None = None  # None: the top-level `filters`
    fingerprints: tuple[FingerprintRule, ...] | None = None  # None: the top-level `fingerprints`


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Size limits on what clients send; each breach is answered with 413."""

    max_body_size: int = 20 * 1024**2
    max_decompressed_size: int = 100 * 1024**2
    max_envelope_size: int = 100 * 1024**2
    max_event_size: int = 1024**2
    max_attachment_size: int = 100 * 1024**2
    # Items per envelope: an SDK sends a handful (up to 100 sessions); a tiny compressed body can hold 400,000.
    max_envelope_items: int = 1000
    # Bytes of request bodies (as read and as decompressed) held at once across requests; past it: 503.
    max_inflight_bytes: int = 160 * 1024**2


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """Bounds of the in-memory queue between ingest and forwarder."""

    max_envelopes: int = 10_000
    max_bytes: int = 256 * 1024**2


@dataclass(frozen=True, slots=True)
class ScrubConfig:
    """Settings of the scrubbing engine."""

    hash_key: str = ""  # HMAC key for the `hash` action; normally ${RELAY_HASH_KEY}
    timeout: float = 0.25  # per item; an item that takes longer is dropped (fail closed)
    audit_log: str = ""  # JSON lines of every redaction (path, rule, action; never a value); "" = off
    reload_interval: float = 2.0  # how often rule files are checked for changes; 0 = only on SIGHUP
    # regions whose national phone formats are recognized (ISO 3166 codes; international +... numbers always are)
    phone_regions: tuple[str, ...] = PHONE_REGIONS
    # key names whose values are the user's identity, replaced wherever else they occur; () = off
    identity_keys: tuple[str, ...] = IDENTITY_KEYS


DEFAULT_RULES = ("secrets", "pii")


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """Where accepted envelopes wait: on disk (SQLite, durable) or in memory."""

    backend: str = "sqlite"  # sqlite | memory
    path: str = "./spool"  # a directory; the database is <path>/spool.db
    max_disk: int = 1024**3
    max_age: float = 86400.0  # older entries are dropped with outcome expired
    fsync: bool = True  # false: a process crash loses nothing, an OS crash may lose the last moments


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Log level and format (JSON lines by default)."""

    level: str = "info"
    format: str = "json"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole relay configuration."""

    listen: ListenConfig = field(default_factory=ListenConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    projects: tuple[ProjectConfig, ...] = ()
    unknown_projects: UnknownProjects = UnknownProjects.REJECT
    shutdown_timeout: float = 10.0
    workers: int = 1  # processes sharing the listen port (`relay run --workers` overrides it)
    core_dumps: bool = False  # a crash's core file would hold unscrubbed payloads: off unless opted in
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    log: LogConfig = field(default_factory=LogConfig)
    rules: tuple[str, ...] = DEFAULT_RULES
    scrub: ScrubConfig = field(default_factory=ScrubConfig)
    ratelimit: RateLimitConfig = field(default_factory=RateLimitConfig)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    tunnel: TunnelConfig | None = None
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    fingerprints: tuple[FingerprintRule, ...] = ()
    source: str = "<defaults>"

    def rules_for(self, project: ProjectConfig | None) -> tuple[str, ...]:
        """The rule packs that apply to a project (unknown projects get the default list)."""
        if project is not None and project.rules is not None:
            return project.rules
        return self.rules

    def filters_for(self, project: ProjectConfig | None) -> FiltersConfig:
        """A project's filters, or the top-level default."""
        return project.filters if project is not None and project.filters is not None else self.filters

    def fingerprints_for(self, project: ProjectConfig | None) -> tuple[FingerprintRule, ...]:
        """A project's fingerprint rules, or the top-level default."""
        if project is not None and project.fingerprints is not None:
            return project.fingerprints
        return self.fingerprints

    def project(self, project_id: int) -> ProjectConfig | None:
        """Return the configured project with this id, if any."""
        for project in self.projects:
            if project.id == project_id:
                return project
        return None
