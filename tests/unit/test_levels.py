from hypothesis import given
from hypothesis import strategies as st

from app.domain.levels import Progress, level_for_xp, xp_for_level, xp_to_next


def test_known_points_of_the_curve() -> None:
    assert [xp_for_level(n) for n in (0, 1, 2, 5, 10)] == [0, 100, 255, 1150, 4675]


@given(st.integers(min_value=0, max_value=5000))
def test_level_thresholds(level: int) -> None:
    assert xp_for_level(level + 1) - xp_for_level(level) == xp_to_next(level)
    assert level_for_xp(xp_for_level(level)) == level
    assert level_for_xp(xp_for_level(level + 1) - 1) == level


@given(st.integers(min_value=0, max_value=10**12))
def test_progress_adds_up(xp: int) -> None:
    p = Progress.of(xp)
    assert p.into_level + p.needed == xp_to_next(p.level)
    assert p.into_level >= 0 and p.needed > 0
