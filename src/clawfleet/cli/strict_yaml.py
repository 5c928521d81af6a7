"""The YAML loader of the CLI: ``safe_load``, refusing what ``safe_load`` lets through.

- A key twice in one mapping: PyYAML keeps the last one, so a manifest could say ``kind`` twice
  and a reader see the other one. Refused, naming the key's path.
- Aliases: PyYAML shares an aliased node instead of copying it, so a "billion laughs" file loads
  as a small graph that ``apply -f`` then expanded while encoding it as JSON, until it died of a
  MemoryError. Each document is measured as if its aliases were expanded, and refused past
  ``MAX_NODES`` nodes or ``MAX_SCALAR_CHARS`` characters of scalars; an alias inside the node it
  names (a loop) is refused too.
- Nesting past ``MAX_DEPTH``, before the recursive composer hits Python's recursion limit.

Every refusal is a ``yaml.MarkedYAMLError`` with the line of the node at fault, so the caller
reports it like any other YAML error: file, line, column and problem.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode

# Far above any manifest or task data (the server takes 4 MiB bodies by default), far below
# what exhausts memory.
MAX_NODES = 200_000
MAX_SCALAR_CHARS = 16 * 1024 * 1024
MAX_DEPTH = 100

MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """Use as ``yaml.load(text, Loader=StrictLoader)`` (or ``load_all``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []  # a segment per node being composed ("" where none)
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node): (nodes, characters) expanded

    def compose_document(self) -> Node | None:
        self._path, self._sizes = [], {}
        node: Node | None = super().compose_document()
        self._sizes = {}
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self._next_event()
            node: Node | None = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # its anchor is still being composed
                raise ComposerError(
                    None, None, f"alias *{event.anchor} is inside the node it names (a loop)",
                    event.start_mark,
                )  # fmt: skip
            return node
        if len(self._path) >= MAX_DEPTH:
            problem = f"nested deeper than {MAX_DEPTH} levels"
            raise ComposerError(None, None, problem, self._next_event().start_mark)
        self._path.append(_segment(index))
        try:
            node = super().compose_node(parent, index)
        finally:
            self._path.pop()
        if node is not None:
            self._measure(node)
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:  # the stubs have it wrong
        node: MappingNode = super().compose_mapping_node(anchor)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue  # merged keys may be overridden; a complex key is refused later
            key = self.construct_object(key_node)
            if key in seen:
                where = ".".join(s for s in [*self._path, str(key)] if s)
                problem = f"key {key!r} appears twice in its mapping (at {where})"
                raise ComposerError(None, None, problem, key_node.start_mark)
            seen.add(key)
        return node

    def _next_event(self) -> Any:  # PyYAML's stubs type events too loosely to use them
        return self.peek_event()  # type: ignore[no-untyped-call]

    def _measure(self, node: Node) -> None:
        if isinstance(node, ScalarNode):
            nodes, chars = 1, len(node.value)
        else:
            assert isinstance(node, CollectionNode)
            children = (
                [n for pair in node.value for n in pair]
                if isinstance(node, MappingNode)
                else node.value
            )
            sizes = [self._sizes[id(child)] for child in children]
            nodes = 1 + sum(n for n, _ in sizes)
            chars = sum(c for _, c in sizes)
        if nodes > MAX_NODES or chars > MAX_SCALAR_CHARS:
            problem = (
                f"this node expands to more than {MAX_NODES} nodes or {MAX_SCALAR_CHARS} "
                "characters (through aliases?)"
            )
            raise ComposerError(None, None, problem, node.start_mark)
        self._sizes[id(node)] = (nodes, chars)


def _segment(index: Any) -> str:
    """The path segment of a node composed at ``index`` of its parent (PyYAML passes a
    sequence's index, a mapping value's key node, or None for a key or the root)."""
    if isinstance(index, int):
        return str(index)
    if isinstance(index, ScalarNode):
        return str(index.value)
    return ""


def load(text: str) -> Any:
    """The one document in ``text``."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader, made stricter


def load_all(text: str) -> list[Any]:
    """Every document in ``text``."""
    return list(yaml.load_all(text, Loader=StrictLoader))
