"""The status rule in observe and maintenance mode: a gateway's own state is ``held`` (whatever
its generations say, short of decommissioning), its attachments are held, and a held gateway
is never "pending" (a waiter asks nobody who holds its lease)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from silonet.plan.status import HOLDING_MODES, MODES, gateway_status, may_pend, record_state


@dataclass(frozen=True)
class Rec:
    realized_generation: int
    last_error: str | None = None
    reachable: bool | None = None
    owner: str | None = None


@pytest.mark.parametrize("mode", sorted(HOLDING_MODES))
@pytest.mark.parametrize(("desired", "realized", "error"), [(5, 5, None), (5, 3, None), (5, 3, "boom"), (0, 9, None)])
def test_a_held_gateway_is_held_whatever_its_generations(mode: str, desired: int, realized: int,
                                                          error: str | None) -> None:
    assert record_state(desired, realized, error, mode=mode) == "held"
    assert record_state(desired, realized, error, decommissioning=True, mode=mode) == "decommissioning"
    assert record_state(desired, realized, error) == ("realized" if realized >= desired else
                                                      "failed" if error else "pending")


@pytest.mark.parametrize("mode", MODES)
def test_held_attachments_and_the_pending_question(mode: str) -> None:
    behind = Rec(realized_generation=1, reachable=True, owner="r1")
    status, reason = gateway_status(behind, 2, None, mode)
    assert (status == "held") == (mode in HOLDING_MODES)
    assert may_pend(behind, 2, mode) == (mode == "enforce")
    if mode != "enforce":
        assert reason == f"in {mode} mode: silonet changes nothing there"
        # not contacted (maintenance): neither unreachable nor pending
        assert gateway_status(Rec(realized_generation=0), 2, None, mode)[0] == "held"
    # a binding error still names why the port cannot carry it
    assert gateway_status(behind, 2, "port 'p1' VLAN 2 is bound to foreign 'x'", mode)[0] == "failed"
