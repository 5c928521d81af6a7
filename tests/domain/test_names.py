from __future__ import annotations

import pytest

from clawfleet.domain.names import label_key_problem, label_value_problem, name_problem


@pytest.mark.parametrize("name", ["a", "reviewer", "a-1", "0", "x" * 63])
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "A", "a_b", "a.b", "-a", "a-", "../x", "a/b", "x" * 64, "ä", "a\nb", " a"]
)
def test_invalid_names(name: str) -> None:
    assert name_problem(name) is not None


def test_label_keys_and_values() -> None:
    assert label_key_problem("team") is None
    assert label_key_problem("example.com/team") is None
    assert label_key_problem("a/b/c") is not None
    assert label_key_problem("Bad Prefix/x") is not None
    assert label_key_problem("") is not None
    assert label_value_problem("") is None
    assert label_value_problem("v1.2_x-y") is None
    assert label_value_problem("-x") is not None
    assert label_value_problem("v" * 64) is not None
