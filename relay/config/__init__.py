"""Configuration: the YAML file, validated into frozen dataclasses."""

from .dsn import Dsn, parse_dsn
from .loader import default_config_path, load_config, parse_config
from .model import (
    BatchConfig,
    Config,
    LimitsConfig,
    ListenConfig,
    LogConfig,
    OutageConfig,
    ProjectConfig,
    QueueConfig,
    RetryConfig,
    ScrubConfig,
    SpoolConfig,
    UnknownProjects,
    UpstreamConfig,
)

__all__ = [
    "BatchConfig",
    "Config",
    "Dsn",
    "LimitsConfig",
    "ListenConfig",
    "LogConfig",
    "OutageConfig",
    "ProjectConfig",
    "QueueConfig",
    "RetryConfig",
    "ScrubConfig",
    "SpoolConfig",
    "UnknownProjects",
    "UpstreamConfig",
    "default_config_path",
    "load_config",
    "parse_config",
    "parse_dsn",
]
