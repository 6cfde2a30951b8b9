"""The state-change log (``reconcile/transitions.py``): one line per change of a gateway's state,
none per retry; WARNING for trouble, INFO for recovery."""

from __future__ import annotations

import logging

import pytest

from silonet.reconcile.transitions import REASONS_PER_FAILURE, Transitions
from silonet.store.repo import Observation

REFUSED = "ssh 127.0.0.1:1: [Errno 111] Connect call failed"


def failed(reason: str = REFUSED, reachable: bool = False) -> Observation:
    return Observation(reachable=reachable, realized_generation=None, error=reason)


def realized(generation: int = 3) -> Observation:
    return Observation(reachable=True, realized_generation=generation, error=None)


def said(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "silonet.gateway" and r.levelno >= level]


def test_an_unreachable_gateway_is_one_warning_over_many_retries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="silonet.gateway")
    t = Transitions()
    for _ in range(20):
        t.observe("gw-a", failed())
    assert said(caplog, logging.DEBUG) == [("WARNING", f"gateway gw-a unreachable: {REFUSED}")]


def test_recovery_is_one_info_line_with_what_it_had(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="silonet.gateway")
    t = Transitions()
    t.observe("gw-a", failed())
    for generation in (3, 3, 4):
        t.observe("gw-a", realized(generation))
    assert said(caplog) == [
        ("WARNING", f"gateway gw-a unreachable: {REFUSED}"),
        ("INFO", f"gateway gw-a recovered: reachable, realized at generation 3 (it had failed: {REFUSED})"),
    ]


def test_first_realization_is_info_and_a_later_failure_warns_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="silonet.gateway")
    t = Transitions()
    t.observe("gw-a", Observation(reachable=False, realized_generation=None, error=None))  # nothing to say
    t.observe("gw-a", realized(1))
    t.observe("gw-a", failed("device refused: % Invalid input", reachable=True))
    t.observe("gw-a", failed("device refused: % Invalid input", reachable=True))
    t.observe("gw-a", failed("ssh 127.0.0.1:1: connection lost"))  # reachable -> unreachable
    t.observe("gw-a", failed("ssh 127.0.0.1:1: connection lost"))
    t.observe("gw-a", failed("device refused: % Invalid input", reachable=True))  # unreachable -> reachable
    assert said(caplog) == [
        ("INFO", "gateway gw-a reachable, realized at generation 1"),
        ("WARNING", "gateway gw-a failed: device refused: % Invalid input"),
        ("WARNING", "gateway gw-a unreachable: ssh 127.0.0.1:1: connection lost"),
        ("WARNING", "gateway gw-a reachable again, still failing: device refused: % Invalid input"),
    ]


def test_a_new_reason_warns_a_bounded_number_of_times(caplog: pytest.LogCaptureFixture) -> None:
    """A reason that alternates or carries a counter cannot become a line per retry."""
    caplog.set_level(logging.INFO, logger="silonet.gateway")
    t = Transitions()
    for i in range(10):
        t.observe("gw-a", failed(f"read-back differs (and {i} more)", reachable=True))
        t.observe("gw-a", failed("read-back differs (and 0 more)", reachable=True))
    warnings = said(caplog, logging.WARNING)
    assert len(warnings) == REASONS_PER_FAILURE
    assert warnings[0] == ("WARNING", "gateway gw-a failed: read-back differs (and 0 more)")
    assert warnings[1] == ("WARNING", "gateway gw-a still failing, now: read-back differs (and 1 more)")


def test_gateways_are_apart_and_a_forgotten_one_starts_afresh(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="silonet.gateway")
    t = Transitions()
    t.observe("gw-a", failed())
    t.observe("gw-b", failed())
    t.observe("gw-a", failed())
    t.forget("gw-a")
    t.observe("gw-a", failed())
    assert [m for _, m in said(caplog)] == [f"gateway {g} unreachable: {REFUSED}" for g in ("gw-a", "gw-b", "gw-a")]


def test_a_held_pass_ends_a_failure_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """observe or maintenance mode: the operator chose it; the next failure and realization are told."""
    caplog.set_level(logging.INFO, logger="silonet.gateway")
    t = Transitions()
    t.observe("gw-a", failed())
    t.observe("gw-a", Observation(reachable=None, realized_generation=None, error=None, held=True))
    t.observe("gw-a", failed())
    t.observe("gw-a", Observation(reachable=True, realized_generation=None, error=None, held=True))
    t.observe("gw-a", realized(5))
    assert said(caplog) == [("WARNING", f"gateway gw-a unreachable: {REFUSED}")] * 2 + [
        ("INFO", "gateway gw-a reachable, realized at generation 5")]
