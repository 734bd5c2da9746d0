from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import validation
from app.domain.case_search import parse_day, parse_state
from app.domain.errors import (
    InvalidAmount,
    InvalidDuration,
    InvalidId,
    InvalidInput,
    InvalidReason,
)
from app.domain.types import CaseState


@given(st.integers(min_value=1, max_value=1000))
def test_amount_accepts_whole_numbers_in_range(value: int) -> None:
    assert validation.amount(value, 1000) == value


@given(
    st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=1001),
        st.floats(),
        st.text(),
        st.booleans(),
        st.none(),
    )
)
def test_amount_refuses_the_rest(value: object) -> None:
    with pytest.raises(InvalidAmount):
        validation.amount(value, 1000)


@pytest.mark.parametrize("value", [0, -1, 2**63, True, "1", 1.0, None])
def test_snowflake_refuses(value: object) -> None:
    with pytest.raises(InvalidId):
        validation.snowflake(value)


def test_reason_rules() -> None:
    assert validation.reason("  spam  ", required=True) == "spam"
    assert validation.reason(None, required=False) == ""
    assert validation.reason("é" * 1024, required=True) == "é" * 1024
    for bad in ("", "   ", "x" * 1025, "nul\x00byte", 5):
        with pytest.raises(InvalidReason):
            validation.reason(bad, required=True)


def test_duration_rules() -> None:
    cap = timedelta(days=28)
    assert validation.duration(cap, cap) == cap
    for bad in (timedelta(0), -cap, cap + timedelta(seconds=1), 60, None):
        with pytest.raises(InvalidDuration):
            validation.duration(bad, cap)


def test_text_from_discord_is_cleaned_and_clipped_not_refused() -> None:
    clean = validation.clean_text
    assert clean("spam\x00 by\x07 hand\n\tok ") == "spam by hand\n\tok"
    assert clean(None) == "" and clean("\x00") == ""
    long = clean("x" * 5000)
    assert len(long) == validation.MAX_REASON and long.endswith("…")
    assert validation.reason(long, required=True) == long  # storable as it is


def test_case_search_days_and_states_are_read_strictly() -> None:
    assert parse_day("2026-11-30", "to", days=1) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_day("", "from") is None and parse_state(None) is None
    assert parse_state(" Pardoned ") is CaseState.PARDONED
    for bad in ("30/11/2026", "2026-02-30", "yesterday", "٢٠٢٦-١١-٠١", "9" * 500):
        with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
            parse_day(bad, "from")
    with pytest.raises(InvalidInput, match="use one of active, expired, pardoned"):
        parse_state("activ")
