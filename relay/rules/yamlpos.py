"""YAML that remembers where things are written: line and column of every mapping, key, value and list item."""

from __future__ import annotations

from typing import Any

import yaml

Position = tuple[int, int]  # 1-based line and column


class LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers where every mapping, key, value and list item starts."""


def mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class LineDict(dict[str, Any]):
    line: int = 0
    pos: Position = (1, 1)
    key_pos: dict[str, Position]
    value_pos: dict[str, Position]
    repeated: list[tuple[str, Position, Position]]  # (key, where written again, where first written)


class LineList(list[Any]):
    lines: list[int]
    positions: list[Position]


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    first: dict[str, Position] = {}
    repeated = []
    for key_node, _ in node.value:  # before merge keys (<<) are flattened in: repeats there are intended
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in first:
                repeated.append((str(key_node.value), mark(key_node), first[key_node.value]))
            first.setdefault(key_node.value, mark(key_node))
    mapping = LineDict({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.pos = mark(node)
    mapping.line = mapping.pos[0]
    mapping.key_pos = {str(k.value): mark(k) for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    mapping.value_pos = {str(k.value): mark(v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    mapping.repeated = repeated
    return mapping


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode) -> list[Any]:
    items = LineList(loader.construct_sequence(node, deep=True))
    items.positions = [mark(child) for child in node.value]
    items.lines = [line for line, _ in items.positions]
    return items


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def position_of(raw: Any, key: str | None = None, index: int | None = None) -> Position:
    """Where `raw[key][index]`, `raw[key]` or `raw` itself is written."""
    if not isinstance(raw, LineDict):
        return (1, 1)
    if key is None or key not in raw:
        return raw.pos
    value = raw[key]
    if index is not None and isinstance(value, LineList) and index < len(value.positions):
        return value.positions[index]
    return raw.value_pos.get(key, raw.pos)


def key_position(raw: Any, key: str) -> Position:
    """Where a mapping's key (not its value) is written."""
    return raw.key_pos.get(key, raw.pos) if isinstance(raw, LineDict) else (1, 1)


def item_position(items: Any, index: int) -> Position:
    positions = getattr(items, "positions", [])
    return positions[index] if index < len(positions) else (1, 1)


__all__ = ["LineDict", "LineList", "LineLoader", "Position", "item_position", "key_position", "mark", "position_of"]
