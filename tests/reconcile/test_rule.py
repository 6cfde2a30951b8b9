"""The recorder's rule over many attachments (``reconcile/rule.py``) says what ``plan/status.py``
says of each attachment alone, with every carrier as an entry: whatever the records (behind, ahead,
failed, unreachable, held, no record), binding errors, redundant pairs, generations, and the
gateways' modes in the intent (what ``Manager._attachment_out`` reads, whatever a record says)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from silonet.plan.status import TENANT_GATEWAY_ERROR, Seen, gateway_status, summarize
from silonet.reconcile.rule import Watched, judge
from silonet.store.repo import Realization

GATEWAYS = [f"gw{i}" for i in range(8)]


def alone(real: dict[str, Realization], w: Watched) -> tuple:
    """The rule for one attachment as written in plan/status.py: one entry per carrier."""
    seen = []
    for gw in w.gateways:
        r = real.get(gw)
        error = next((e for p in w.ports.get(gw, ()) if r and (e := r.binding_error(p, w.vlan))), None)
        status, reason = gateway_status(r, w.generation, error, w.modes[gw])
        seen.append(Seen(gw, status, reason, w.pairs.get(gw)))
    hidden = [Seen(e.gateway, e.status, TENANT_GATEWAY_ERROR if (r := real.get(e.gateway)) and r.last_error
                   and e.reason == r.last_error else e.reason, e.pair) for e in seen]
    return summarize(seen, w.own), summarize(hidden, w.own, tenant=True)


@st.composite
def records(draw: st.DrawFn) -> Realization | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    return Realization(
        "", 9, draw(st.integers(0, 9)), draw(st.sampled_from([None, None, "device said no", "port p1 is gone"])), None,
        draw(st.sampled_from([True, True, None, False])), owner=draw(st.sampled_from(["me", None])),
        mode=draw(st.sampled_from(["enforce", "enforce", "enforce", "observe", "maintenance"])),
        binding_errors=draw(st.sampled_from([None, {}, {"p1/100": "port p1 is gone"}, {"p2/101": "vlan taken"}])))


@st.composite
def fabrics(draw: st.DrawFn) -> tuple[dict[str, Realization], list[Watched]]:
    real = {}
    for gw in GATEWAYS:
        r = draw(records())
        if r is not None:
            real[gw] = replace(r, gateway=gw)
    pairs = {gw: draw(st.sampled_from([None, None, None, "pa", "pb"])) for gw in GATEWAYS}
    # the intent's modes: mostly what the record says, sometimes moved on since (or no record yet)
    modes = {gw: real[gw].mode if gw in real and draw(st.integers(0, 3)) else
             draw(st.sampled_from(["enforce", "enforce", "observe", "maintenance"])) for gw in GATEWAYS}
    watch = []
    for n in range(draw(st.integers(1, 3))):
        carriers = tuple(sorted(draw(st.sets(st.sampled_from(GATEWAYS), min_size=1))))
        for j in range(draw(st.integers(1, 4))):
            # own gateways are carriers, but the rule must not rely on it; nor on ports of own gateways only
            own = frozenset(draw(st.sets(st.sampled_from(GATEWAYS if draw(st.booleans()) else carriers), min_size=1)))
            ported = own | draw(st.sets(st.sampled_from(carriers), max_size=2))
            ports = {gw: draw(st.sampled_from([("p1",), ("p2",), ("p1", "p2")])) for gw in ported}
            watch.append(Watched(f"n{n}", "t", 5000 + n, f"grp{j}", draw(st.sampled_from([100, 101])),
                                 draw(st.integers(0, 10)), own, carriers, ports,
                                 {g: pairs[g] for g in carriers}, {g: modes[g] for g in carriers}))
    return real, watch


@settings(max_examples=400, deadline=None)
@given(fabrics())
def test_judge_says_what_the_rule_says_of_each_attachment(fabric: tuple) -> None:
    real, watch = fabric
    judged = judge(real, watch)
    for w in watch:
        _w, admin, tenant = judged.verdicts[(w.network, w.group, w.vlan)]
        assert (admin, tenant) == alone(real, w), w


def test_a_port_of_a_peer_with_a_binding_error_is_named_with_the_own_gateways_failure() -> None:
    """Ports of peers are not what ``watched`` makes, but the rule must say what it says alone."""
    real = {"a": Realization("a", 9, 0, "refused", None, False, owner="me"),
            "b": Realization("b", 9, 9, None, None, True, owner="me", binding_errors={"p1/100": "port p1 is gone"})}
    for own in ({"a"}, {"b"}):
        w = Watched("n", "t", 5000, "g", 100, 9, frozenset(own), ("a", "b"), {"a": ("p1",), "b": ("p1",)},
                    {"a": None, "b": None}, {"a": "enforce", "b": "enforce"})
        assert judge(real, [w]).verdicts[("n", "g", 100)][1:] == alone(real, w)


def test_a_gateway_is_judged_in_its_intent_mode_record_or_none() -> None:
    """A gateway put in maintenance before the reconciler recorded anything for it (no record): held,
    as the API's status of the attachment says (it was judged pending, in enforce mode); one back in
    enforce whose record still says maintenance counts by its generations again."""
    real = {"b": Realization("b", 9, 9, None, None, True, owner="me", mode="enforce"),
            "c": Realization("c", 9, 3, None, None, True, owner="me", mode="maintenance")}
    modes = {"a": "maintenance", "b": "enforce", "c": "enforce"}
    for own, status in (("a", "held"), ("b", "degraded"), ("c", "pending")):  # b: its peer a is held
        w = Watched("n", "t", 5000, "g", 100, 9, frozenset({own}), ("a", "b", "c"), {},
                    {"a": None, "b": None, "c": None}, modes)
        admin, tenant = judge(real, [w]).verdicts[("n", "g", 100)][1:]
        assert (admin, tenant) == alone(real, w)
        assert admin.status == status, (own, admin)


def test_attachments_whose_own_gateways_all_realized_share_a_verdict_only_with_as_many_peers() -> None:
    """Once its own gateways realized a change, an attachment's verdict names peers only, so the
    attachments of a network share it (mid-converge, 20 groups judged the same 100 peers 20 times);
    the tenant's reads how many other gateways there are, which the size of the own group decides."""
    real = {g: Realization(g, 9, 9, None, None, True, owner="me") for g in "abc"}
    real["d"] = Realization("d", 9, 0, "refused", None, False, owner="me")  # a peer down: degraded
    real["e"] = Realization("e", 9, 3, None, None, True, owner="me")  # a peer behind
    carriers = tuple("abcde")
    watch = [Watched("n", "t", 5000, group, 100, 9, frozenset(own), carriers, {}, dict.fromkeys(carriers),
                     dict.fromkeys(carriers, "enforce")) for group, own in (("g1", "a"), ("g2", "bc"), ("g3", "b"))]
    judged = judge(real, watch)
    for w in watch:
        assert judged.verdicts[("n", w.group, 100)][1:] == alone(real, w)
    tenants = {w.group: judged.verdicts[("n", w.group, 100)][2].reason for w in watch}
    assert "1 of 4 other gateways" in tenants["g1"] and "1 of 3 other gateways" in tenants["g2"]
    assert judged.verdicts[("n", "g1", 100)][1] is judged.verdicts[("n", "g3", 100)][1]  # one verdict for both
