"""One compiled Scrubber per distinct list of rule packs, built once at start-up (and on each reload)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config import Config, ProjectConfig
from ..rules.loader import RuleError, parse_pack, resolve_pack_path
from ..rules.model import Rule, RulePack
from .audit import Auditor, auditor_for
from .detectors import phones
from .engine import Scrubber


class ScrubberRegistry:
    """Finds the scrubber for a project; projects with the same packs share one (and its caches).

    A registry is immutable once built: a rule reload builds a new one and swaps it in whole, so an
    envelope is scrubbed by the old rules or the new ones, never a mix.
    """

    def __init__(
        self, config: Config, base: Path | None = None, texts: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        """Compile the packs `config` names; from `texts` (name -> (path, text)) instead of the files if given."""
        self._config = config
        base = base if base is not None else Path(config.source).parent
        self._packs: dict[str, RulePack] = {}
        self._paths: dict[str, Path] = {}
        self._texts: dict[str, tuple[str, str]] = {}
        self._by_rules: dict[tuple[str, ...], Scrubber] = {}
        self._auditors: dict[tuple[str, ...], Auditor | None] = {}
        key = config.scrub.hash_key.encode()
        phones.set_regions(config.scrub.phone_regions)  # process-wide, like the detectors it configures
        for names in {config.rules, *(p.rules for p in config.projects if p.rules is not None)}:
            rules: list[Rule] = []
            for name in names:
                pack = self._packs.get(name)
                if pack is None:
                    path, text = texts[name] if texts is not None else _read(name, base)
                    self._paths[name] = Path(path)
                    self._texts[name] = (path, text)
                    pack = self._packs[name] = parse_pack(text, path, default_name=Path(path).stem)
                rules.extend(pack.rules)
            self._by_rules[names] = Scrubber(rules, key, config.scrub.timeout, identity_keys=config.scrub.identity_keys)
            self._auditors[names] = auditor_for(rules, key, config.scrub.timeout)

    def for_project(self, project: ProjectConfig | None) -> Scrubber:
        """The scrubber for a project (the default rules for unknown projects)."""
        return self._by_rules[self._config.rules_for(project)]

    def auditor_for(self, project: ProjectConfig | None) -> Auditor | None:
        """The auditor for a project's audit-mode rules, if it has any."""
        return self._auditors[self._config.rules_for(project)]

    def packs(self) -> list[RulePack]:
        """Every loaded pack."""
        return list(self._packs.values())

    def paths(self) -> list[Path]:
        """The rule files behind the loaded packs (what a reload watches)."""
        return list(self._paths.values())

    @property
    def config(self) -> Config:
        """The config the packs were chosen by."""
        return self._config

    def texts(self) -> dict[str, tuple[str, str]]:
        """The rule files' texts as compiled here, so another process can build exactly these rules."""
        return dict(self._texts)


def _read(name: str, base: Path) -> tuple[str, str]:
    path = resolve_pack_path(name, base)
    try:
        return str(path), path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError([f"{path}: cannot read rule file: {exc}"]) from None
