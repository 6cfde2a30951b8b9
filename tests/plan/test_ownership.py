"""restrict(): what foreign state on a device blocks, and why."""

from __future__ import annotations

from silonet.plan import GatewayState, LogicalSwitch
from silonet.plan.ownership import DeviceFacts, restrict

DESIRED = GatewayState(
    {5000: LogicalSwitch(5000, "a", frozenset({"198.18.0.2"})), 5001: LogicalSwitch(5001, "b")},
    {("p1", 100): 5000, ("p1", 101): 5001, ("p2", 100): 5000, ("p9", 1): 5000},
    {(5001, "02:00:00:00:00:01"): "198.18.0.2"},
)


def test_nothing_foreign_keeps_everything_but_missing_ports() -> None:
    eff, failures = restrict(DESIRED, DeviceFacts(ports=frozenset({"p1", "p2"})))
    assert failures == {("p9", 1): "port 'p9' does not exist on the device"}
    assert eff.bindings == {k: v for k, v in DESIRED.bindings.items() if k != ("p9", 1)}
    assert eff.logical_switches == DESIRED.logical_switches


def test_foreign_binding_blocks_only_that_port_vlan() -> None:
    eff, failures = restrict(DESIRED, DeviceFacts(foreign_bindings={("p2", 100): "theirs"}))
    assert failures == {("p2", 100): "port 'p2' VLAN 100 is bound to foreign logical switch 'theirs'"}
    assert ("p1", 100) in eff.bindings and ("p2", 100) not in eff.bindings


def test_foreign_vni_or_name_blocks_the_whole_logical_switch() -> None:
    eff, failures = restrict(DESIRED, DeviceFacts(foreign_vnis={5001: "theirs"}, foreign_names=frozenset({"a"})))
    assert eff.logical_switches == {} and eff.bindings == {} and eff.remote_macs == {}
    assert failures[("p1", 101)] == "VNI 5001 is held by foreign logical switch 'theirs'"
    assert "name 'a' is taken" in failures[("p1", 100)]


def _no_vlan_100_on_p2(state: GatewayState) -> dict[tuple[str, int], str]:
    return {k: "p2 cannot carry VLAN 100 here" for k in state.bindings if k == ("p2", 100)}


def _no_vni_5001(state: GatewayState) -> dict[tuple[str, int], str]:
    return {k: "VNI 5001 is too much for this platform" for k, vni in state.bindings.items() if vni == 5001}


def test_a_refused_binding_fails_alone_and_the_rest_is_kept() -> None:
    eff, failures = restrict(DESIRED, DeviceFacts(refuse=_no_vlan_100_on_p2))
    assert failures == {("p2", 100): "p2 cannot carry VLAN 100 here"}
    assert eff.bindings == {k: v for k, v in DESIRED.bindings.items() if k != ("p2", 100)}
    assert eff.logical_switches == DESIRED.logical_switches and eff.remote_macs == DESIRED.remote_macs


def test_a_switch_whose_every_binding_is_refused_goes_with_its_macs() -> None:
    eff, failures = restrict(DESIRED, DeviceFacts(refuse=_no_vni_5001))
    assert failures == {("p1", 101): "VNI 5001 is too much for this platform"}
    assert set(eff.logical_switches) == {5000} and eff.remote_macs == {}


def test_refuse_is_asked_about_what_foreign_state_left_only() -> None:
    asked: list[GatewayState] = []

    def refuse(state: GatewayState) -> dict[tuple[str, int], str]:
        asked.append(state)
        return _no_vlan_100_on_p2(state)

    facts = DeviceFacts(ports=frozenset({"p1", "p2"}), foreign_bindings={("p2", 100): "theirs"},
                        foreign_vnis={5001: "theirs"}, refuse=refuse)
    eff, failures = restrict(DESIRED, facts)
    assert asked == [GatewayState({5000: DESIRED.logical_switches[5000]}, {("p1", 100): 5000})]
    assert "foreign logical switch 'theirs'" in failures[("p2", 100)]  # the first reason stands
    assert eff.bindings == {("p1", 100): 5000}


def test_a_switch_whose_bindings_all_failed_is_not_kept_for_the_check_to_miss() -> None:
    """NX-OS (found in review): VNI 5001's only binding is on a port the device lacks; kept as a
    bare switch, it would take the translated VLAN VNI 5000 holds, and the check, which judges
    bindings, would never see it. With a check, such a switch leaves with its bindings."""
    asked: list[GatewayState] = []

    def refuse(state: GatewayState) -> dict[tuple[str, int], str]:
        asked.append(state)
        return {}

    desired = GatewayState(DESIRED.logical_switches, {("p1", 100): 5000, ("p9", 101): 5001})
    eff, failures = restrict(desired, DeviceFacts(ports=frozenset({"p1"}), refuse=refuse))
    assert set(eff.logical_switches) == {5000} and set(asked[0].logical_switches) == {5000}
    assert failures == {("p9", 101): "port 'p9' does not exist on the device"}
    without_check, _ = restrict(desired, DeviceFacts(ports=frozenset({"p1"})))
    assert set(without_check.logical_switches) == {5000, 5001}  # hardware_vtep keeps it, as before


def test_a_port_the_device_says_is_someone_elses_fails_with_the_devices_reason() -> None:
    """A port that exists but is set up for something else (a Junos access port, a LAG member)
    fails its bindings with why, not as a port that does not exist."""
    desired = GatewayState({1: LogicalSwitch(1, "n")}, {("p1", 10): 1, ("p2", 10): 1})
    facts = DeviceFacts(ports=frozenset({"p2"}), unusable={"p1": "it is an access port of VLAN v10"})
    effective, failures = restrict(desired, facts)
    assert failures == {("p1", 10): "port 'p1' cannot take silonet's VLANs: it is an access port of VLAN v10"}
    assert effective.bindings == {("p2", 10): 1}


def test_one_remote_vtep_list_per_device_keeps_what_others_use() -> None:
    """On a platform with one remote-VTEP list for every VNI (ALAXALA AX), silonet's VNIs read back
    the whole list: it must want the remote VTEPs foreign VNIs use too, or it would remove them."""
    desired = GatewayState({1: LogicalSwitch(1, "n", frozenset({"198.18.0.2"}))}, {("p1", 10): 1})
    facts = DeviceFacts(flood_per_vtep=True, foreign_flood=frozenset({"198.18.0.9"}))
    effective, _ = restrict(desired, facts)
    assert effective.logical_switches[1].flood == {"198.18.0.2", "198.18.0.9"}
    alone, _ = restrict(desired, DeviceFacts(foreign_flood=frozenset({"198.18.0.9"})))  # per-VNI lists: untouched
    assert alone.logical_switches[1].flood == {"198.18.0.2"}
