"""Load YAML config into frozen dataclasses, reporting every problem with file and key path."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import regex
import yaml

from ..errors import ConfigError
from ..units import parse_duration
from .dsn import parse_dsn
from .filters import read_filters, read_fingerprints
from .model import (
    DEFAULT_RULES,
    AdminConfig,
    BatchConfig,
    Config,
    FiltersConfig,
    LimitsConfig,
    ListenConfig,
    LogConfig,
    OutageConfig,
    ProjectConfig,
    QueueConfig,
    RetryConfig,
    ScrubConfig,
    SpoolConfig,
    TunnelConfig,
    UnknownProjects,
    UpstreamConfig,
)
from .ratelimit import read_ratelimit
from .values import (
    boolean,
    choice,
    float_min,
    int_range,
    key_list,
    one_of,
    phone_regions,
    positive_duration,
    positive_size,
    string,
    string_list,
    upstream_url,
)
from .volume import read_outcomes, read_quotas, read_sampling

T = TypeVar("T")

_ENV_REF = regex.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_MISSING = object()


def default_config_path() -> str:
    """`$RELAY_CONFIG`, else `relay.yml` in the working directory."""
    return os.environ.get("RELAY_CONFIG") or "relay.yml"


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute `${VAR}` and validate a config file; raise ConfigError listing all problems."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read config file: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: config file is not UTF-8 text (byte {exc.start})"]) from exc
    return parse_config(text, source, os.environ if env is None else env)


def parse_config(text: str, source: str, env: Mapping[str, str]) -> Config:
    """Validate config text; `source` names the file in every problem."""
    reader = _Reader(source, env)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ConfigError([f"{source}{where}: invalid YAML: {exc}"]) from exc
    config = reader.config(raw if raw is not None else {})
    if not reader.problems:
        reader.problems.extend(check_rules(config, Path(source).parent))
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def check_rules(config: Config, base: Path) -> list[str]:
    """Load every rule pack the config names; problems name the config key and the rule file."""
    from ..rules.loader import RuleError, load_pack
    from ..rules.model import ActionType

    problems: list[str] = []
    lists = [("rules", config.rules)] + [
        (f"projects[{i}].rules", p.rules) for i, p in enumerate(config.projects) if p.rules is not None
    ]
    for where, names in lists:
        for index, name in enumerate(names):
            try:
                pack = load_pack(name, base)
            except RuleError as exc:
                problems.extend(f"{config.source}: {where}[{index}]: {p}" for p in exc.problems)
                continue
            if not config.scrub.hash_key:
                for rule in pack.rules:
                    if rule.action.type is ActionType.HASH:
                        problems.append(
                            f"{config.source}: scrub.hash_key: required because rule {rule.id} "
                            f"({rule.source}:{rule.line}) uses action hash; set it to ${{RELAY_HASH_KEY}}"
                        )
    return problems


_TUNNEL_PATH = regex.compile(r"(?:/[A-Za-z0-9._~-]+)+/?")
# Paths outside /api/ that the relay serves itself (a tunnel there would shadow them, or they it).
_RESERVED_PATHS = ("/healthz", "/readyz", "/metrics")


def tunnel_path_value(value: Any) -> str:
    """`tunnel.path`: an absolute path of plain segments, clear of `/api/` and the relay's own paths."""
    if not isinstance(value, str) or not _TUNNEL_PATH.fullmatch(value):
        raise ValueError(f"expected a path like /tunnel (letters, digits and . _ ~ - between slashes), got {value!r}")
    lowered = value.lower().rstrip("/")
    if lowered == "/api" or lowered.startswith("/api/"):
        raise ValueError(f"must not be under /api/, where the Sentry endpoints are, got {value!r}")
    if lowered in _RESERVED_PATHS:
        raise ValueError(f"must not be one of the relay's own paths ({', '.join(_RESERVED_PATHS)}), got {value!r}")
    return value


class _Reader:
    """Walks the YAML tree with a key path, collecting problems instead of stopping at the first."""

    def __init__(self, source: str, env: Mapping[str, str]) -> None:
        self.source = source
        self.env = env
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    # -- generic helpers --------------------------------------------------

    def substitute(self, value: Any, path: str) -> Any:
        """Replace `${VAR}` / `${VAR:-default}` in strings, lists included; `$$` is a literal `$`."""
        if isinstance(value, list):
            return [self.substitute(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value

        def replace(match: regex.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            found = self.env.get(name)
            if found is not None and (found or default is None):
                return found
            if default is not None:
                return str(default)
            self.problem(path, f"environment variable {name} is not set (use ${{{name}:-default}})")
            return ""

        return _ENV_REF.sub(replace, value)

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        """Check that `value` is a mapping with only `allowed` keys."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.problem(where, f"unknown key; valid keys are: {', '.join(allowed)}")
        return {k: v for k, v in value.items() if k in allowed}

    def field(self, data: dict[str, Any], path: str, key: str, parse: Callable[[Any], T], default: T) -> T:
        """Parse `data[key]` (after env substitution) or return the default."""
        raw = data.get(key, _MISSING)
        if raw is _MISSING:
            return default
        where = f"{path}.{key}" if path else key
        try:
            return parse(self.substitute(raw, where))
        except (TypeError, ValueError) as exc:
            self.problem(where, str(exc))
            return default

    # -- sections ---------------------------------------------------------

    def config(self, raw: Any) -> Config:
        data = self.mapping(
            raw,
            "",
            (
                "listen",
                "upstream",
                "projects",
                "unknown_projects",
                "shutdown_timeout",
                "workers",
                "core_dumps",
                "limits",
                "queue",
                "spool",
                "log",
                "rules",
                "scrub",
                "ratelimit",
                "outcomes",
                "admin",
                "tunnel",
                "filters",
                "fingerprints",
            ),
        )
        upstream = self.upstream(data.get("upstream"), "upstream")
        return Config(
            listen=self.listen(data.get("listen"), "listen"),
            upstream=upstream,
            projects=self.projects(data.get("projects"), "projects"),
            unknown_projects=self.field(data, "", "unknown_projects", choice(UnknownProjects), UnknownProjects.REJECT),
            shutdown_timeout=self.field(data, "", "shutdown_timeout", parse_duration, 10.0),
            workers=self.field(data, "", "workers", int_range(1, 1024), 1),
            core_dumps=self.field(data, "", "core_dumps", boolean, False),
            limits=self.limits(data.get("limits"), "limits"),
            queue=self.queue(data.get("queue"), "queue"),
            spool=self.spool(data.get("spool"), "spool"),
            log=self.log(data.get("log"), "log"),
            rules=self.field(data, "", "rules", string_list, DEFAULT_RULES),
            scrub=self.scrub(data.get("scrub"), "scrub"),
            ratelimit=read_ratelimit(self, data.get("ratelimit"), "ratelimit"),
            outcomes=read_outcomes(self, data.get("outcomes"), "outcomes"),
            admin=self.admin(data.get("admin"), "admin"),
            tunnel=self.tunnel(data.get("tunnel"), "tunnel"),
            filters=read_filters(self, data.get("filters"), "filters") or FiltersConfig(),
            fingerprints=read_fingerprints(self, data.get("fingerprints"), "fingerprints") or (),
            source=self.source,
        )

    def scrub(self, raw: Any, path: str) -> ScrubConfig:
        data = self.mapping(
            raw, path, ("hash_key", "timeout", "audit_log", "reload_interval", "phone_regions", "identity_keys")
        )
        d = ScrubConfig()
        return ScrubConfig(
            hash_key=self.field(data, path, "hash_key", string, d.hash_key),
            timeout=self.field(data, path, "timeout", positive_duration, d.timeout),
            audit_log=self.field(data, path, "audit_log", string, d.audit_log),
            reload_interval=self.field(data, path, "reload_interval", parse_duration, d.reload_interval),
            phone_regions=self.field(data, path, "phone_regions", phone_regions, d.phone_regions),
            identity_keys=self.field(data, path, "identity_keys", string_list, d.identity_keys),
        )

    def admin(self, raw: Any, path: str) -> AdminConfig:
        data = self.mapping(raw, path, ("enabled", "host", "port"))
        d = AdminConfig()
        return AdminConfig(
            enabled=self.field(data, path, "enabled", boolean, d.enabled),
            host=self.field(data, path, "host", string, d.host),
            port=self.field(data, path, "port", int_range(0, 65535), d.port),
        )

    def tunnel(self, raw: Any, path: str) -> TunnelConfig | None:
        if raw is None:
            return None
        data = self.mapping(raw, path, ("path",))
        if isinstance(raw, dict) and "path" not in data:
            self.problem(f"{path}.path", "is required: the path the browser SDK's tunnel option names, like /tunnel")
        tunnel_path = self.field(data, path, "path", tunnel_path_value, None)
        return TunnelConfig(tunnel_path) if tunnel_path is not None else None

    def listen(self, raw: Any, path: str) -> ListenConfig:
        data = self.mapping(raw, path, ("host", "port", "idle_timeout", "body_timeout", "max_connections"))
        d = ListenConfig()
        return ListenConfig(
            host=self.field(data, path, "host", string, d.host),
            port=self.field(data, path, "port", int_range(0, 65535), d.port),
            idle_timeout=self.field(data, path, "idle_timeout", positive_duration, d.idle_timeout),
            body_timeout=self.field(data, path, "body_timeout", positive_duration, d.body_timeout),
            max_connections=self.field(data, path, "max_connections", int_range(1, 10**6), d.max_connections),
        )

    def upstream(self, raw: Any, path: str) -> UpstreamConfig:
        data = self.mapping(
            raw,
            path,
            (
                "url",
                "timeout",
                "connect_timeout",
                "concurrency",
                "compression",
                "max_rate_limit",
                "retry",
                "batch",
                "outage",
            ),
        )
        d = UpstreamConfig()
        return UpstreamConfig(
            url=self.field(data, path, "url", upstream_url, d.url),
            timeout=self.field(data, path, "timeout", positive_duration, d.timeout),
            connect_timeout=self.field(data, path, "connect_timeout", positive_duration, d.connect_timeout),
            concurrency=self.field(data, path, "concurrency", int_range(1, 1024), d.concurrency),
            **self.compression(data.get("compression"), f"{path}.compression"),
            max_rate_limit=self.field(data, path, "max_rate_limit", positive_duration, d.max_rate_limit),
            retry=self.retry(data.get("retry"), f"{path}.retry"),
            batch=self.batch(data.get("batch"), f"{path}.batch"),
            outage=self.outage(data.get("outage"), f"{path}.outage"),
        )

    def compression(self, raw: Any, path: str) -> dict[str, Any]:
        """`compression: gzip`, or `compression: {encoding: zstd, level: 3, min_size: 1KiB}`."""
        d = UpstreamConfig()
        if isinstance(raw, dict):
            data, where, key = self.mapping(raw, path, ("encoding", "level", "min_size")), path, "encoding"
        else:  # the plain form: its problems name `upstream.compression` itself
            data, where, key = ({} if raw is None else {"compression": raw}), path.rsplit(".", 1)[0], "compression"
        encoding = self.field(data, where, key, one_of("gzip", "zstd", "none"), d.compression)
        level = self.field(data, path, "level", int_range(1, 22), d.compression_level)
        if encoding == "gzip" and level > 9:
            self.problem(f"{path}.level", f"gzip levels are 1-9, got {level}")
        min_size = self.field(data, path, "min_size", positive_size, d.compression_min_size)
        return {"compression": encoding, "compression_level": level, "compression_min_size": min_size}

    def retry(self, raw: Any, path: str) -> RetryConfig:
        data = self.mapping(raw, path, ("initial", "max", "multiplier", "max_elapsed"))
        d = RetryConfig()
        config = RetryConfig(
            initial=self.field(data, path, "initial", positive_duration, d.initial),
            max=self.field(data, path, "max", positive_duration, d.max),
            multiplier=self.field(data, path, "multiplier", float_min(1.0), d.multiplier),
            max_elapsed=self.field(data, path, "max_elapsed", parse_duration, d.max_elapsed),
        )
        if config.max < config.initial:
            self.problem(f"{path}.max", "must be at least retry.initial")
        return config

    def batch(self, raw: Any, path: str) -> BatchConfig:
        data = self.mapping(raw, path, ("max_envelopes", "linger"))
        d = BatchConfig()
        return BatchConfig(
            max_envelopes=self.field(data, path, "max_envelopes", int_range(1, 10_000), d.max_envelopes),
            linger=self.field(data, path, "linger", parse_duration, d.linger),
        )

    def projects(self, raw: Any, path: str) -> tuple[ProjectConfig, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem(path, f"expected a list of projects, got {type(raw).__name__}")
            return ()
        projects: list[ProjectConfig] = []
        seen_ids: dict[int, int] = {}
        for index, item in enumerate(raw):
            where = f"{path}[{index}]"
            project = self.project(item, where)
            if project is None or project.id == 0:  # invalid: already reported
                continue
            if project.id in seen_ids:
                self.problem(f"{where}.id", f"duplicate project id {project.id} (also {path}[{seen_ids[project.id]}])")
            seen_ids[project.id] = index
            projects.append(project)
        return tuple(projects)

    def project(self, raw: Any, path: str) -> ProjectConfig | None:
        data = self.mapping(
            raw,
            path,
            (
                "id",
                "keys",
                "upstream_dsn",
                "disabled",
                "allowed_origins",
                "rules",
                "forward_unscannable",
                "quotas",
                "sampling",
                "filters",
                "fingerprints",
            ),
        )
        if "id" not in data:
            self.problem(f"{path}.id", "is required")
        project_id = self.field(data, path, "id", int_range(1, 2**63 - 1), 0)
        no_keys: tuple[str, ...] = ()
        keys = self.field(data, path, "keys", key_list, no_keys)
        if "keys" not in data:
            self.problem(f"{path}.keys", "is required: list the public keys the relay accepts for this project")
        return ProjectConfig(
            id=project_id,
            keys=keys,
            upstream_dsn=self.field(data, path, "upstream_dsn", parse_dsn, None),
            disabled=self.field(data, path, "disabled", boolean, False),
            allowed_origins=self.field(data, path, "allowed_origins", string_list, ("*",)),
            rules=self.field(data, path, "rules", string_list, None),
            forward_unscannable=self.field(data, path, "forward_unscannable", boolean, False),
            quotas=read_quotas(self, data.get("quotas"), f"{path}.quotas"),
            sampling=read_sampling(self, data.get("sampling"), f"{path}.sampling"),
            filters=read_filters(self, data.get("filters"), f"{path}.filters"),
            fingerprints=read_fingerprints(self, data.get("fingerprints"), f"{path}.fingerprints"),
        )

    def limits(self, raw: Any, path: str) -> LimitsConfig:
        names = (
            "max_body_size",
            "max_decompressed_size",
            "max_envelope_size",
            "max_event_size",
            "max_attachment_size",
            "max_inflight_bytes",
        )
        data = self.mapping(raw, path, (*names, "max_envelope_items"))
        d = LimitsConfig()
        return LimitsConfig(
            **{name: self.field(data, path, name, positive_size, getattr(d, name)) for name in names},
            max_envelope_items=self.field(data, path, "max_envelope_items", int_range(1, 10**6), d.max_envelope_items),
        )

    def queue(self, raw: Any, path: str) -> QueueConfig:
        data = self.mapping(raw, path, ("max_envelopes", "max_bytes"))
        d = QueueConfig()
        return QueueConfig(
            max_envelopes=self.field(data, path, "max_envelopes", int_range(1, 10**9), d.max_envelopes),
            max_bytes=self.field(data, path, "max_bytes", positive_size, d.max_bytes),
        )

    def spool(self, raw: Any, path: str) -> SpoolConfig:
        data = self.mapping(raw, path, ("backend", "path", "max_disk", "max_age", "fsync"))
        d = SpoolConfig()
        return SpoolConfig(
            backend=self.field(data, path, "backend", one_of("sqlite", "memory"), d.backend),
            path=self.field(data, path, "path", string, d.path),
            max_disk=self.field(data, path, "max_disk", positive_size, d.max_disk),
            max_age=self.field(data, path, "max_age", parse_duration, d.max_age),
            fsync=self.field(data, path, "fsync", boolean, d.fsync),
        )

    def outage(self, raw: Any, path: str) -> OutageConfig:
        data = self.mapping(raw, path, ("after_failures", "probe_max"))
        d = OutageConfig()
        return OutageConfig(
            after_failures=self.field(data, path, "after_failures", int_range(1, 10_000), d.after_failures),
            probe_max=self.field(data, path, "probe_max", positive_duration, d.probe_max),
        )

    def log(self, raw: Any, path: str) -> LogConfig:
        data = self.mapping(raw, path, ("level", "format"))
        d = LogConfig()
        return LogConfig(
            level=self.field(data, path, "level", one_of("debug", "info", "warning", "error"), d.level),
            format=self.field(data, path, "format", one_of("json", "text"), d.format),
        )
