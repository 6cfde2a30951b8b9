"""The status rule (plan/status.py) over every mix of gateway states: exhaustively for three
gateways and every choice of which are the attachment's own, and with hypothesis for more."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from silonet.plan.status import (
    CONNECTING,
    EXIT_CODES,
    HOLDING_MODES,
    NO_LEASE,
    NO_RECONCILER,
    Seen,
    counted,
    gateway_status,
    may_pend,
    record_state,
    summarize,
)
from silonet.service.schemas import AttachmentStatus

GATEWAY_STATES = ("pending", "realized", "held", "failed")


@dataclass(frozen=True)
class Rec:
    realized_generation: int
    last_error: str | None = None
    reachable: bool | None = True
    owner: str | None = "replica-1"


def seen(states: tuple[str, ...]) -> list[Seen]:
    return [Seen(f"gw{i}", s, None if s == "realized" else f"why-{i}") for i, s in enumerate(states)]  # type: ignore[arg-type]


def expected(states: tuple[str, ...], own: set[str] | None) -> str:
    """The README's table, read independently of the code's order of checks."""
    mine = [s for i, s in enumerate(states) if own is None or f"gw{i}" in own]
    peers = [] if own is None else [s for i, s in enumerate(states) if f"gw{i}" not in own]
    if "failed" in mine:
        return "failed"
    if "held" in mine:
        return "held"
    if "pending" in mine:
        return "pending"
    if "failed" in peers or "held" in peers:
        return "degraded"
    return "pending" if "pending" in peers else "realized"


def check(states: tuple[str, ...], own: set[str] | None) -> None:
    entries = seen(states)
    verdict = summarize(entries, own)
    assert verdict.status == expected(states, own), (states, own, verdict)
    reason = verdict.reason or ""
    if verdict.status == "realized":
        assert verdict.reason is None and verdict.gateways == ()
        return
    # every gateway behind the status is named, with its reason; no other one
    behind = {e.gateway for e in entries if e.gateway in verdict.gateways}
    for e in entries:
        if e.gateway in behind:
            assert repr(e.gateway) in reason and (e.reason or "") in reason, (states, own, reason)
        else:
            assert repr(e.gateway) not in reason, (states, own, reason)
    if verdict.status == "failed":  # every failing gateway, own and peers
        assert behind == {e.gateway for e in entries if e.status == "failed"}
    elif verdict.status == "degraded":
        assert behind == {e.gateway for e in entries if e.status in ("failed", "held")}
        assert behind.isdisjoint(own or ())
        assert reason.startswith("forwards on its own gateways")
    else:
        assert {e.status for e in entries if e.gateway in behind} == {verdict.status}


@pytest.mark.parametrize("states", list(itertools.product(GATEWAY_STATES, repeat=3)))
def test_every_mix_of_three_gateways_and_every_own_set(states: tuple[str, ...]) -> None:
    names = [f"gw{i}" for i in range(3)]
    for k in range(1, 4):
        for own in itertools.combinations(names, k):
            check(states, set(own))
    check(states, None)


@given(st.lists(st.sampled_from(GATEWAY_STATES), min_size=1, max_size=12), st.data())
def test_any_number_of_gateways(states: list[str], data: st.DataObject) -> None:
    names = [f"gw{i}" for i in range(len(states))]
    own = data.draw(st.sets(st.sampled_from(names), min_size=1) | st.none())
    check(tuple(states), own)


@given(st.lists(st.sampled_from(GATEWAY_STATES), min_size=2, max_size=8))
def test_a_tenant_reads_that_sites_are_unreachable_not_which(states: list[str]) -> None:
    entries = seen(tuple(states))
    own = {"gw0"}
    admin, tenant = summarize(entries, own), summarize(entries, own, tenant=True)
    assert admin.status == tenant.status
    if tenant.status == "degraded":
        down = len(admin.gateways)
        assert f"some sites of the network are unreachable ({down} of {len(states) - 1} other gateways)" in (
            tenant.reason or "")
        assert not any(repr(e.gateway) in (tenant.reason or "") or (e.reason or "-") in (tenant.reason or "")
                       for e in entries if e.gateway not in own)


def test_own_none_is_never_degraded_and_quarantine_fails() -> None:
    for states in itertools.product(GATEWAY_STATES, repeat=3):
        assert summarize(seen(states)).status != "degraded"
        assert summarize(seen(states), {"gw0"}, quarantined="network name is quarantined").status == "failed"
    assert summarize([]).status == "realized"


def test_one_reason_for_many_gateways_names_them_together() -> None:
    entries = [Seen("a", "failed", "boom"), Seen("b", "failed", "boom"), Seen("c", "failed", "other")]
    assert summarize(entries).reason == "gateways 'a', 'b': boom; gateway 'c': other"


@given(realized=st.integers(0, 5), generation=st.integers(0, 5), error=st.none() | st.just("E"),
       reachable=st.none() | st.booleans(), owner=st.none() | st.just("r1"), binding=st.none() | st.just("B"),
       mode=st.sampled_from(["enforce", "observe", "maintenance"]))
def test_gateway_status(realized: int, generation: int, error: str | None, reachable: bool | None,
                        owner: str | None, binding: str | None, mode: str) -> None:
    rec = Rec(realized, error, reachable, owner)
    status, reason = gateway_status(rec, generation, binding, mode)
    if binding:
        assert (status, reason) == ("failed", "B")
    elif mode in HOLDING_MODES:
        assert status == "held" and mode in (reason or "")
    elif reachable is False:  # what an unreachable device holds is not known, whatever it reached before
        assert status == "failed" and reason == (error or "unreachable")
    elif realized >= generation:
        assert (status, reason) == ("realized", None)
    elif error:
        assert (status, reason) == ("failed", "E")
    else:
        assert status == "pending"
        assert reason == (NO_RECONCILER if owner is None and reachable is None else NO_LEASE if owner is None
                          else CONNECTING if reachable is None else f"reconciling (generation {realized} reached, "
                                                                    f"{generation} wanted)")


@given(realized=st.integers(0, 5), generation=st.integers(0, 5), error=st.none() | st.just("E"),
       reachable=st.none() | st.booleans())
def test_may_pend_is_where_the_rule_says_pending(realized: int, generation: int, error: str | None,
                                                 reachable: bool | None) -> None:
    """The listing asks lease owners only where ``may_pend``: exactly where the owner is needed."""
    rec = Rec(realized, error, reachable)
    assert may_pend(rec, generation) == (gateway_status(rec, generation)[0] == "pending")


def test_a_gateways_own_state() -> None:
    assert record_state(3, 3, None) == "realized" and record_state(3, 4, "E") == "realized"
    assert record_state(4, 3, "E") == "failed" and record_state(4, 3, None) == "pending"
    assert record_state(4, 3, None, decommissioning=True) == "decommissioning"


def test_no_record_is_pending_for_want_of_a_reconciler() -> None:
    assert gateway_status(None, 3) == ("pending", NO_RECONCILER)
    assert gateway_status(None, 3, "port p1 is down") == ("failed", "port p1 is down")


def test_exit_codes_cover_every_status() -> None:
    assert set(EXIT_CODES) == set(AttachmentStatus.__args__)
    assert (EXIT_CODES["realized"], EXIT_CODES["failed"], EXIT_CODES["degraded"], EXIT_CODES["held"],
            EXIT_CODES["pending"]) == (0, 1, 3, 3, 4)


def test_counted_says_how_many_of_how_many() -> None:
    entries = [Seen("a", "failed", "x"), Seen("b", "realized"), Seen("c", "failed", "y"), Seen("d", "realized"),
               Seen("e", "realized")]
    assert counted(summarize(entries), 5) == "failed on 2 of 5 gateway(s): gateway 'a': x; gateway 'c': y"
    assert counted(summarize(entries[1:2]), 1) == "realized on 1 gateway(s)"
