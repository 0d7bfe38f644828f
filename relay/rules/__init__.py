"""Rule packs: the YAML format compliance teams edit, compiled into rules."""

from .loader import RuleError, load_pack, parse_pack, shipped_packs
from .model import Action, ActionType, Rule, RulePack, RuleTest
from .selectors import Selector, SelectorError

__all__ = [
    "Action",
    "ActionType",
    "Rule",
    "RuleError",
    "RulePack",
    "RuleTest",
    "Selector",
    "SelectorError",
    "load_pack",
    "parse_pack",
    "shipped_packs",
]
