"""Idle gateways' contact refreshes fall on one grid, so the recorder writes many in one transaction."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from silonet.reconcile import worker
from silonet.reconcile.worker import REFRESH_CONTACT_S, REFRESH_GRID_S, refresh_at

moments = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)


@given(moments)
def test_a_refresh_is_due_on_the_grid_within_one_step_after_the_contact_period(last: float) -> None:
    due = refresh_at(last)
    steps = due / REFRESH_GRID_S
    assert math.isclose(steps, round(steps), abs_tol=1e-6), "on the grid"
    assert due >= last + REFRESH_CONTACT_S, "never before the contact period"
    assert due < last + REFRESH_CONTACT_S + REFRESH_GRID_S, "at most one grid step late"


@given(moments, st.floats(min_value=0.0, max_value=REFRESH_GRID_S * 0.999))
def test_gateways_written_within_one_step_refresh_together(last: float, later: float) -> None:
    """Two gateways last written less than one grid step apart are refreshed at the same moment
    or one step apart: the refreshes of a whole fabric come at one moment per step."""
    a, b = refresh_at(last), refresh_at(last + later)
    assert b - a in (0.0, REFRESH_GRID_S) or math.isclose(b - a, REFRESH_GRID_S)


def test_no_grid_means_exactly_the_contact_period(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(worker, "REFRESH_GRID_S", 0.0)
    assert refresh_at(12.25) == 12.25 + REFRESH_CONTACT_S
