from __future__ import annotations

import pytest

from clawfleet.core.errors import InvalidSelector
from clawfleet.domain.selectors import Op, parse_selector

LABELS = {"team": "x", "tier": "1", "app.kubernetes.io/name": "web"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("team=x", True),
        ("team==x", True),
        ("team=y", False),
        ("team!=y", True),
        ("missing!=y", True),
        ("team", True),
        ("!team", False),
        ("!missing", True),
        ("team in (x, y)", True),
        ("team notin (x)", False),
        ("tier in (2,3)", False),
        ("team=x,tier=1", True),
        ("team=x,tier=2", False),
        ("app.kubernetes.io/name=web", True),
        (" team = x , tier ", True),
    ],
)
def test_selector_matching(text: str, matches: bool) -> None:
    assert parse_selector(text).matches(LABELS) is matches


def test_parsed_shape() -> None:
    selector = parse_selector("a in (1,2),!b")
    assert [(r.key, r.op, r.values) for r in selector.requirements] == [
        ("a", Op.IN, ("1", "2")),
        ("b", Op.NOT_EXISTS, ()),
    ]


@pytest.mark.parametrize(
    "text", ["team=(x", "a,,b", "a in ()", "=x", "bad key=x", "k=" + "v" * 64, "a b c", "x" * 5000]
)
def test_bad_selectors_are_rejected(text: str) -> None:
    with pytest.raises(InvalidSelector) as info:
        parse_selector(text)
    assert info.value.errors[0].path == "labelSelector"
