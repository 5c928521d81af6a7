"""Quantities: any accepted value parses exactly, and quota arithmetic on the largest values
(replicas x quantity, summed over many agents) stays finite; any refused value says why."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clawfleet.domain.quantities import (
    MAX_FRACTION_DIGITS,
    MAX_INTEGER_DIGITS,
    MAX_QUANTITY,
    parse_quantity,
    quantity_problem,
    read_quantity,
)

SUFFIXES = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"]

accepted_shape = st.builds(
    lambda whole, fraction, suffix: whole + (f".{fraction}" if fraction else "") + suffix,
    st.from_regex(rf"[0-9]{{1,{MAX_INTEGER_DIGITS}}}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(rf"[0-9]{{1,{MAX_FRACTION_DIGITS}}}", fullmatch=True)),
    st.sampled_from(SUFFIXES),
)


@given(accepted_shape)
def test_a_quantity_in_the_grammar_parses_exactly_or_is_too_large(text: str) -> None:
    problem = quantity_problem(text)
    if problem is not None:
        assert "larger than the maximum" in problem
        with pytest.raises(ValueError, match="maximum"):
            parse_quantity(text)
        return
    value = parse_quantity(text)
    assert value.is_finite() and Decimal(0) <= value <= MAX_QUANTITY
    # 1000 replicas of it, in 100,000 agents: the largest sum a quota check makes
    total = value * 1000 * 100_000 + value * 0
    assert total.is_finite() and total >= value


@given(st.text(max_size=60))
def test_any_other_text_is_refused_with_the_reason(text: str) -> None:
    if quantity_problem(text) is None:
        assert parse_quantity(text) <= MAX_QUANTITY
    else:
        with pytest.raises(ValueError, match="quantity"):
            parse_quantity(text)


@pytest.mark.parametrize(
    "text", ["9" * 400, "1e3", "NaN", "inf", "-1", "2\n", " 2", "1.", ".5", "1.0000000001", "2Pi"]
)
def test_hostile_quantities_are_refused(text: str) -> None:
    assert quantity_problem(text) is not None


@given(st.one_of(st.none(), st.integers(), st.text(max_size=500), st.floats(), st.booleans()))
def test_a_stored_quantity_reads_back_within_bounds_whatever_it_is(stored: object) -> None:
    value = read_quantity(stored)
    assert value.is_finite() and Decimal(0) <= value <= MAX_QUANTITY


def test_stored_quantities_of_400_digits_count_as_the_maximum() -> None:
    assert read_quantity("9" * 400) == MAX_QUANTITY
    assert read_quantity(10**400) == MAX_QUANTITY
    assert read_quantity("500m") == Decimal("0.5")
    assert read_quantity("2Gi") == 2 * 2**30
    assert read_quantity(None) == read_quantity("") == 0
