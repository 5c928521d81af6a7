"""Label selectors: parse the Kubernetes syntax and match label maps.

Grammar (comma means AND): ``key=value``, ``key==value``, ``key!=value``, ``key``, ``!key``,
``key in (a,b)``, ``key notin (a,b)``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clawfleet.core.errors import FieldError, InvalidSelector
from clawfleet.domain.names import label_key_problem, label_value_problem


class Op(enum.Enum):
    EQ = "="
    NE = "!="
    IN = "in"
    NOTIN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!"


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op is Op.EXISTS:
            return present
        if self.op is Op.NOT_EXISTS:
            return not present
        if self.op in (Op.EQ, Op.IN):
            return present and value in self.values
        return not present or value not in self.values


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)


_SET_RE = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^()]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return terms


def _bad(text: str, why: str) -> InvalidSelector:
    return InvalidSelector(
        f"invalid label selector {text!r}: {why}",
        [FieldError("labelSelector", why, "invalid-selector")],
    )


def _check(text: str, key: str, values: tuple[str, ...]) -> None:
    if problem := label_key_problem(key):
        raise _bad(text, f"key {key!r} {problem}")
    for value in values:
        if problem := label_value_problem(value):
            raise _bad(text, f"value {value!r} {problem}")


def _parse_term(text: str, term: str) -> Requirement:
    if match := _SET_RE.match(term):
        key, word, raw = match.groups()
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise _bad(text, f"'{key} {word} ()' needs at least one value")
        _check(text, key, values)
        return Requirement(key, Op.IN if word == "in" else Op.NOTIN, values)
    if match := _EQ_RE.match(term):
        key, sign, value = match.groups()
        _check(text, key, (value,))
        return Requirement(key, Op.NE if sign == "!=" else Op.EQ, (value,))
    if match := _EXISTS_RE.match(term):
        bang, key = match.groups()
        _check(text, key, ())
        return Requirement(key, Op.NOT_EXISTS if bang else Op.EXISTS)
    raise _bad(text, f"cannot parse {term.strip()!r}")


def parse_selector(text: str | None) -> Selector:
    """Parse a selector string; empty or None selects everything."""
    if text is None or not text.strip():
        return Selector()
    if len(text) > 4096:
        raise _bad(text[:40] + "...", "longer than 4096 characters")
    terms = _split_terms(text)
    if any(not term.strip() for term in terms):
        raise _bad(text, "empty term (stray comma?)")
    return Selector(tuple(_parse_term(text, term) for term in terms))
