"""One compiled Scrubber per distinct list of rule packs, built once at start-up."""

from __future__ import annotations

from pathlib import Path

from ..config import Config, ProjectConfig
from ..rules.loader import load_pack
from ..rules.model import Rule, RulePack
from .engine import Scrubber


class ScrubberRegistry:
    """Finds the scrubber for a project; projects with the same packs share one (and its caches)."""

    def __init__(self, config: Config, base: Path | None = None) -> None:
        self._config = config
        base = base if base is not None else Path(config.source).parent
        self._packs: dict[str, RulePack] = {}
        self._by_rules: dict[tuple[str, ...], Scrubber] = {}
        key = config.scrub.hash_key.encode()
        for names in {config.rules, *(p.rules for p in config.projects if p.rules is not None)}:
            rules: list[Rule] = []
            for name in names:
                pack = self._packs.get(name)
                if pack is None:
                    pack = self._packs[name] = load_pack(name, base)
                rules.extend(pack.rules)
            self._by_rules[names] = Scrubber(rules, key, config.scrub.timeout)

    def for_project(self, project: ProjectConfig | None) -> Scrubber:
        """The scrubber for a project (the default rules for unknown projects)."""
        return self._by_rules[self._config.rules_for(project)]

    def packs(self) -> list[RulePack]:
        """Every loaded pack."""
        return list(self._packs.values())
