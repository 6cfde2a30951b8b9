"""A gateway pair in the lab on the real kernel and real OVS: ``silonet lab fault`` takes gateways
down and up, and the pair fails over (anycast address and gratuitous ARP, the dual-homed ToR's
uplink) with no configuration pushed to any gateway.

One small lab (prefix slp, index 21: never in the way of the demo sn/0 or another test's lab)
comes up once per module: a pair silo (gw-a, gw-b, pair pp) with one dual-homed ToR (h500 on
VLAN 500), and an unpaired gateway gw-u with one untagged host hu. The network is configured by
hand with vtep-ctl, as a manager would (no silonet manager here): one logical switch bound on
both members and on gw-u, flooding to the anycast address on gw-u and to gw-u on both members.
The tests run in order and share the lab; the last one takes it down with a gateway faulted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from silonet.cli.lab import lab_app
from silonet.lab import GatewaySpec, Group, Host, Lab, LabError, LabTopology, Silo, Tor
from silonet.lab import build as lab_build
from tests.conftest import fresh_lab

PREFIX, INDEX = "slp", 21
ANYCAST, GW_U_VTEP = "198.18.42.2", "198.18.42.1"
VNI = 5500
OVS_TOOLS = ("ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-vswitchd", "ovs-ofctl", "ovs-appctl", "vtep-ctl")
TOPO = LabTopology("pairs", (GatewaySpec("gw-u", "su"), GatewaySpec("gw-a", "sp", pair="pp"),
                             GatewaySpec("gw-b", "sp", pair="pp")), (
    Silo("sp", "paas", (Group("gp", (Tor("pp", "p1", (Host("h500", 500, "203.0.113.1"),), "pp-tor"),)),)),
    Silo("su", "kvm", (Group("gu", (Tor("gw-u", "p1", (Host("hu", 0, "203.0.113.3"),)),)),)),
))
H500, HU = "203.0.113.1", "203.0.113.3"
FAILOVER_BOUND = 5.0  # the bound for traffic to come back after the active member fails
seen: dict[str, str] = {}  # failover times, printed at the end


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = [t for t in OVS_TOOLS if shutil.which(t) is None]
    missing += [f for f in lab_build.FILES if not Path(f).exists()]
    return f"needs Open vSwitch; missing: {', '.join(missing)}" if missing else None


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _pings_within(lab: Lab, src: str, dst: str, seconds: float) -> float | None:
    """Seconds until a ping from ``src`` is answered, polled, or None past ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if lab.ping(src, dst, count=1, timeout=0.3):
            return time.monotonic() - started
    return None


def _addresses(lab: Lab, gateway: str) -> list[str]:
    out = lab.gateway_exec(gateway, ["ip", "-j", "-4", "addr", "show", "dev", "br-ul"], check=True).stdout
    return [a["local"] for i in json.loads(out or "[]") for a in i.get("addr_info", [])]


def _gateways(lab: Lab) -> dict[str, dict]:
    return {g["name"]: g for g in lab.status()["gateways"]}


def _times(result: dict, started: float) -> str:
    return (f"fault {result['ms']:.0f} ms (failover step {result['failover']['ms']:.0f} ms), "
            f"first ping answered {(time.monotonic() - started) * 1000:.0f} ms after the fault began")


def _fault(lab: Lab, gateway: str, action: str) -> dict:
    """Through the CLI, as an operator would; its JSON answer."""
    cli = CliRunner().invoke(lab_app, ["fault", gateway, action, "--json", "--prefix", PREFIX,
                                       "--dir", str(lab.base_dir)])
    assert cli.exit_code == 0, cli.output
    return json.loads(cli.output)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    the_lab = fresh_lab(PREFIX, INDEX)
    try:
        the_lab.up(TOPO)
        for gw, port, vlan, flood in (("gw-a", "p1", "500", GW_U_VTEP), ("gw-b", "p1", "500", GW_U_VTEP),
                                      ("gw-u", "p1", "0", ANYCAST)):
            the_lab.vtep_ctl(gw, "add-ls", "net", "--", "set", "Logical_Switch", "net", f"tunnel_key={VNI}")
            the_lab.vtep_ctl(gw, "bind-ls", gw, port, vlan, "net")
            the_lab.vtep_ctl(gw, "add-mcast-remote", "net", "unknown-dst", flood)
        yield the_lab
    finally:
        if seen:
            print("\nfailover: " + "; ".join(f"{k}: {v}" for k, v in seen.items()))
        the_lab.down()


@pytest.mark.root
@pytest.mark.ovs
def test_pair_is_built_active_and_standby(lab: Lab) -> None:
    status = lab.status()
    gws = {g["name"]: g for g in status["gateways"]}
    assert {n: (g["pair"], g["active"], g["down"], g["vtep_ip"]) for n, g in gws.items()} == {
        "gw-u": (None, None, False, GW_U_VTEP), "gw-a": ("pp", True, False, ANYCAST),
        "gw-b": ("pp", False, False, ANYCAST)}
    assert all(all(g["daemons"].values()) for g in gws.values())
    (tor,) = status["dual_homed_tors"]
    assert tor["netns"] == f"{PREFIX}-pp-tor" and tor["active"] == "gw-a" and all(tor["daemons"].values())
    assert _addresses(lab, "gw-a") == [ANYCAST] and _addresses(lab, "gw-b") == []
    macs = {gw: lab.ovs_vsctl(gw, "get", "Interface", "br-ul", "mac_in_use").strip().strip('"')
            for gw in ("gw-a", "gw-b")}
    assert macs == {"gw-a": "02:aa:c6:12:2a:02", "gw-b": "02:aa:c6:12:2a:02"}, "one pair MAC"
    tor_links = lab.gateway_exec("gw-a", ["ip", "-n", tor["netns"], "-j", "link", "show"], check=True).stdout
    state = {i["ifname"]: i["operstate"] for i in json.loads(tor_links)}
    assert state["upa"] == "UP" and state["upb"] == "DOWN", state
    h500 = next(h for s in status["silos"] for h in s["hosts"] if h["name"] == "h500")
    assert (h500["gateway"], h500["tor"], h500["vlan"], h500["interface_group"]) == ("gw-a", "pp-tor", 500, "gp")
    assert lab.vtep_ctl("gw-b", "get", "Physical_Switch", "gw-b", "tunnel_ips").strip() == f'["{ANYCAST}"]'
    table = CliRunner().invoke(lab_app, ["status", "--prefix", PREFIX, "--dir", str(lab.base_dir)])
    assert table.exit_code == 0 and "pp standby" in table.output and "pp active" in table.output, table.output


@pytest.mark.root
@pytest.mark.ovs
def test_ping_across_the_pair(lab: Lab) -> None:
    assert _pings_within(lab, "hu", H500, 20.0) is not None, "ovs-vtep polls its database about once a second"
    assert lab.ping("h500", HU)


@pytest.mark.root
@pytest.mark.ovs
def test_active_member_fails_over(lab: Lab) -> None:
    started = time.monotonic()
    result = _fault(lab, "gw-a", "down")
    back = _pings_within(lab, "hu", H500, FAILOVER_BOUND - (time.monotonic() - started))
    assert back is not None, f"traffic not back within {FAILOVER_BOUND} s of the failure: {result}"
    seen["gw-a down"] = _times(result, started)
    assert result["failover"]["from"] == "gw-a" and result["failover"]["to"] == "gw-b" and result["active"] == "gw-b"
    assert _addresses(lab, "gw-b") == [ANYCAST]
    gws = _gateways(lab)
    assert gws["gw-a"]["down"] and not any(gws["gw-a"]["daemons"].values())
    assert gws["gw-b"]["active"] and not gws["gw-a"]["active"]
    assert lab.ping("h500", HU), "from the dual-homed ToR's side too"
    with pytest.raises(LabError, match="already down"):
        lab.fault("gw-a", "down")


@pytest.mark.root
@pytest.mark.ovs
def test_member_comes_back_as_standby_with_its_database(lab: Lab) -> None:
    result = _fault(lab, "gw-a", "up")
    assert result["failover"] is None and result["active"] == "gw-b" and result["down"] == []
    gws = _gateways(lab)
    assert all(gws["gw-a"]["daemons"].values()) and not gws["gw-a"]["down"] and gws["gw-a"]["active"] is False
    assert lab.vtep_ctl("gw-a", "list-bindings", "gw-a", "p1").split() == ["0500", "net"], "vtep.db kept"
    assert lab.vtep_ctl("gw-a", "list-remote-macs", "net").split()[-1] == f"vxlan_over_ipv4/{GW_U_VTEP}"
    assert _addresses(lab, "gw-a") == [] and _addresses(lab, "gw-b") == [ANYCAST]
    assert lab.ping("hu", H500, count=3), "still through gw-b: no preemption"
    with pytest.raises(LabError, match="not down"):
        lab.fault("gw-a", "up")


@pytest.mark.root
@pytest.mark.ovs
def test_failing_back_and_a_whole_pair_down(lab: Lab) -> None:
    started = time.monotonic()
    result = lab.fault("gw-b", "down")
    assert result["failover"]["to"] == "gw-a"
    assert _pings_within(lab, "hu", H500, FAILOVER_BOUND - (time.monotonic() - started)) is not None
    seen["gw-b down"] = _times(result, started)
    both = lab.fault("gw-a", "down")
    assert both["failover"] is None and both["active"] == "gw-a" and sorted(both["down"]) == ["gw-a", "gw-b"]
    assert not lab.ping("hu", H500, timeout=0.5), "no member left"
    # The member that boots first takes the pair over: its partner carries nothing (no preemption involved).
    back = lab.fault("gw-b", "up")
    assert back["failover"] == {"from": "gw-a", "to": "gw-b", "ms": back["failover"]["ms"]}
    assert _pings_within(lab, "hu", H500, 15.0) is not None
    assert lab.fault("gw-a", "up")["active"] == "gw-b"
    assert _addresses(lab, "gw-a") == []


@pytest.mark.root
@pytest.mark.ovs
def test_unpaired_gateway_down_and_up(lab: Lab) -> None:
    result = lab.fault("gw-u", "down")
    assert result["pair"] is None and result["failover"] is None and result["down"] == ["gw-u"]
    assert not lab.ping("h500", HU, timeout=0.5), "its ToR (in its ovs-vswitchd) and its VTEP are gone"
    link = lab.gateway_exec("gw-u", ["ip", "-j", "link", "show", "dev", "ul0"], check=True).stdout
    assert json.loads(link)[0]["operstate"] == "DOWN"
    lab.fault("gw-u", "up")
    assert all(_gateways(lab)["gw-u"]["daemons"].values())
    assert _addresses(lab, "gw-u") == [GW_U_VTEP], "the VTEP address is back on br-ul"
    assert _pings_within(lab, "h500", HU, 15.0) is not None


@pytest.mark.root
@pytest.mark.ovs
def test_down_with_a_gateway_faulted(lab: Lab) -> None:
    lab.fault("gw-b", "down")
    assert lab.down() == []
    assert not {ns for ns in _netns() if ns.startswith(f"{PREFIX}-")}
    assert not lab.exists()
