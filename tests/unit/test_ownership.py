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
