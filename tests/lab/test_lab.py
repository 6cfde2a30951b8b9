"""The lab on the real kernel and real OVS: the paper topology comes up once per module
(prefix slt, index 7: never in the way of a demo lab sn/0), is checked from the outside
(namespaces, ovsdb over the management network, pings), and always comes down again.

The unmarked tests at the top are pure (topology rules, names, preflight messages)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from silonet.cli.lab import lab_app
from silonet.lab import GatewaySpec, Group, Host, Lab, LabError, LabTopology, Silo, Tor, load_topology, paper_topology
from silonet.lab import build as lab_build
from silonet.service.topology import parse_topology
from tests.conftest import fresh_lab

PREFIX, INDEX = "slt", 7
MGMT, UNDERLAY = "198.18.15", "198.18.14"
OVS_TOOLS = ("ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-vswitchd", "ovs-ofctl", "vtep-ctl")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    import shutil

    missing = [t for t in OVS_TOOLS if shutil.which(t) is None]
    missing += [f for f in lab_build.FILES if not Path(f).exists()]
    return f"needs Open vSwitch; missing: {', '.join(missing)}" if missing else None


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _root_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _retry_ping(lab: Lab, src: str, dst: str, seconds: float = 15.0) -> bool:
    """ovs-vtep polls about once a second: a fresh binding forwards within a few seconds."""
    deadline = time.monotonic() + seconds
    for _ in range(30):
        if lab.ping(src, dst, count=1, timeout=1.0):
            return True
        if time.monotonic() > deadline:
            break
    return False


# ------------------------------------------------------------------ pure checks
def test_paper_topology_shape() -> None:
    topo = paper_topology().resolved()
    assert len(topo.gateways) == 7 and len(topo.silos) == 5
    assert topo.pairs() == {"paas": ("gw-pa", "gw-pb")}
    hosts = topo.hosts()
    assert len(hosts) == 18
    per_vlan = Counter((g.name, h.vlan) for _, g, _, h in hosts)
    assert per_vlan[("paas", 500)] == per_vlan[("paas", 501)] == 1, "one host per VLAN behind the pair"
    assert min(n for (grp, _), n in per_vlan.items() if grp != "paas") >= 2, per_vlan
    assert LabTopology.from_dict(topo.to_dict()) == topo


def test_topology_yaml_round_trip_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "lab.yaml"
    f.write_text(yaml.safe_dump(paper_topology().to_dict()))
    assert load_topology(f) == paper_topology()
    small = {"name": "s", "gateways": [{"name": "g1"}], "silos": [{"name": "s1", "kind": "kvm", "groups": [
        {"name": "grp", "tors": [{"gateway": "g1", "port": "p1", "hosts": [{"name": "h1"}, {"name": "h2"}]}]}]}]}
    f.write_text(yaml.safe_dump(small))
    resolved = load_topology(f).resolved()
    assert [h.ip for *_, h in resolved.hosts()] == ["203.0.113.1", "203.0.113.2"]
    bad = [
        ({**small, "gateways": [{"name": "g2"}]}, "gateway 'g1' is not in the topology"),
        ({**small, "extra": 1}, "unknown field(s) extra"),
        ({**small, "silos": [{**small["silos"][0], "kind": "mainframe"}]}, "kind 'mainframe'"),
    ]
    for data, message in bad:
        f.write_text(yaml.safe_dump(data))
        with pytest.raises(LabError, match=re.escape(message)):
            load_topology(f)
    with pytest.raises(LabError, match=re.escape("must be a host address in 203.0.113.0/24")):
        LabTopology("x", (GatewaySpec("g1"),), (Silo("s", "kvm", (Group("g", (Tor("g1", "p1", (
            Host("h1", 0, "192.0.2.1"),)),)),)),)).validate()


def test_inventory_without_a_running_lab_parses(tmp_path: Path) -> None:
    inv = Lab(PREFIX, INDEX, tmp_path).inventory(paper_topology())
    topo = parse_topology(yaml.safe_dump(inv), "inventory")
    assert not topo.networks
    gw_va = next(g for g in topo.gateways if g.name == "gw-va")
    assert gw_va.vtep_ip == f"{UNDERLAY}.1" and gw_va.management.address == f"tcp:{MGMT}.1:6640"
    assert [(p.name, p.switchback) for p in gw_va.ports] == [("p1", False), ("p2", False), ("p48", True)]


def test_preflight_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_build.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        lab_build.check_host()
    monkeypatch.setattr(lab_build.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab_build, "which", lambda cmd: None if cmd == "vtep-ctl" else "/usr/bin/" + cmd)
    with pytest.raises(LabError, match=r"vtep-ctl \(apt-get install openvswitch-vtep\)"):
        lab_build.check_host()


def test_bad_prefix_and_index() -> None:
    with pytest.raises(LabError, match="prefix"):
        Lab("toolong")
    with pytest.raises(LabError, match="index"):
        Lab("ok", 128)


# ------------------------------------------------------------------ the paper lab
@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    the_lab = fresh_lab(PREFIX, INDEX)
    try:
        started = time.monotonic()
        the_lab.up(paper_topology())
        the_lab.up_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield the_lab
    finally:
        the_lab.down()


@pytest.mark.root
@pytest.mark.ovs
def test_status_shape(lab: Lab) -> None:
    status = lab.status()
    assert status["phase"] == "up" and status["missing"] == []
    assert len(status["gateways"]) == 7
    for gw in status["gateways"]:
        assert set(gw) >= {"name", "netns", "ovsdb"}
        assert gw["ovsdb"].startswith(f"tcp:{MGMT}.") and gw["ovsdb"].endswith(":6640")
        assert gw["netns"] == f"{PREFIX}-{gw['name']}" and all(gw["daemons"].values())
    hosts = [h for s in status["silos"] for h in s["hosts"]]
    assert len(hosts) == 18
    for s in status["silos"]:
        assert set(s) >= {"name", "kind", "hosts"}
    for h in hosts:
        assert set(h) >= {"name", "netns", "vlan", "ip", "interface_group"}
    assert Counter((h["interface_group"], h["vlan"]) for h in hosts if h["interface_group"] != "paas"
                   ).most_common()[-1][1] >= 2
    assert {h["vlan"] for h in hosts if h["interface_group"] == "bm"} == {0}
    assert len({h["ip"] for h in hosts}) == 18
    paired = {g["name"]: (g["pair"], g["active"], g["down"]) for g in status["gateways"] if g["pair"]}
    assert paired == {"gw-pa": ("paas", True, False), "gw-pb": ("paas", False, False)}
    assert {h["name"]: h["gateway"] for h in hosts if h["interface_group"] == "paas"} == {
        "pa500a": "gw-pa", "pa501a": "gw-pa"}
    assert Lab.is_up(PREFIX, lab.base_dir)
    # A new process reads the same status from the state file; so does the CLI.
    code = (f"import json; from silonet.lab import Lab; "
            f"print(json.dumps(Lab({PREFIX!r}, 0, {str(lab.base_dir)!r}).status()))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(other.stdout) == json.loads(json.dumps(status))
    cli = CliRunner().invoke(lab_app, ["status", "--json", "--prefix", PREFIX, "--dir", str(lab.base_dir)])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["gateways"] == json.loads(json.dumps(status["gateways"]))


@pytest.mark.root
@pytest.mark.ovs
def test_inventory_parses(lab: Lab) -> None:
    cli = CliRunner().invoke(lab_app, ["inventory", "--prefix", PREFIX, "--dir", str(lab.base_dir)])
    assert cli.exit_code == 0, cli.output
    topo = parse_topology(cli.output, "lab inventory")
    assert yaml.safe_load(cli.output) == lab.inventory()
    assert not topo.networks and len(topo.gateways) == 7 and len(topo.silos) == 5
    groups = {g.name: g for g in topo.interface_groups}
    assert set(groups) == {"vsa", "vsb", "kvm1", "kvm2", "bm", "paas"}
    assert {(r.gateway, r.port) for r in groups["paas"].members} == {("gw-pa", "p1"), ("gw-pb", "p1")}
    assert [(r.gateway, r.port) for r in groups["vsa"].switchback] == [("gw-va", "p48")]
    assert {(r.gateway, r.port) for r in groups["vsb"].members} == {("gw-vb1", "p1"), ("gw-vb2", "p1")}
    assert all(g.capacity == 4096 for g in topo.gateways)


@pytest.mark.root
@pytest.mark.ovs
def test_ovsdb_answers_on_the_management_network(lab: Lab) -> None:
    for gw in lab.status()["gateways"]:
        out = subprocess.run(["vtep-ctl", f"--db={gw['ovsdb']}", "--timeout=5", "list-ps"],
                             capture_output=True, text=True, timeout=15, check=True).stdout
        assert out.split() == [gw["name"]]
        tunnel = subprocess.run(["vtep-ctl", f"--db={gw['ovsdb']}", "--timeout=5", "get", "Physical_Switch",
                                 gw["name"], "tunnel_ips"], capture_output=True, text=True, timeout=15,
                                check=True).stdout
        assert gw["vtep_ip"] in tunnel and gw["vtep_ip"].startswith(f"{UNDERLAY}.")


@pytest.mark.root
@pytest.mark.ovs
def test_local_l2_and_vlan_isolation(lab: Lab) -> None:
    assert lab.ping("k1300a", "203.0.113.32"), "same ToR, same VLAN"
    assert lab.ping("bm0a", "203.0.113.42"), "same ToR, untagged"
    assert lab.ping("va100a", "203.0.113.12"), "two racks through the switch-back bridge"
    assert not lab.ping("k1300a", "203.0.113.33", timeout=0.5), "same ToR, other VLAN"
    assert not lab.ping("vb200a", "203.0.113.22", timeout=0.5), "other gateway, nothing bound yet"


@pytest.mark.root
@pytest.mark.ovs
def test_switchback_plumbing(lab: Lab) -> None:
    assert lab.vtep_ctl("gw-va", "list-ports", "gw-va").split() == ["p48"]
    assert lab.ovs_vsctl("gw-va", "port-to-br", "p1").strip() == "sb1"
    assert lab.ovs_vsctl("gw-va", "port-to-br", "p2").strip() == "sb1"
    assert lab.ovs_vsctl("gw-va", "port-to-br", "p48").strip() == "gw-va"
    assert lab.vtep_ctl("gw-kvm", "list-ports", "gw-kvm").split() == ["p1", "p2"]
    mtu = lab.ovs_vsctl("gw-va", "--columns=name,mtu", "--format=csv", "--no-headings", "list", "Interface")
    mtus = dict(line.split(",") for line in mtu.splitlines())
    del mtus["vtep_bfd"]  # ovs-vtep's BFD bridge, off the data path
    assert all(int(m) >= 9000 for m in mtus.values()), mtus


@pytest.mark.root
@pytest.mark.ovs
def test_ovsdb_restart_keeps_vtep_data(lab: Lab) -> None:
    """gw-kvm restarts here; the hand-bound network below then proves it is whole again."""
    lab.vtep_ctl("gw-kvm", "add-ls", "keepme", "--", "set", "Logical_Switch", "keepme", "tunnel_key=4242")
    before = lab.status()["gateways"][3]["daemons"]
    assert lab.kill_daemon("gw-kvm", "ovsdb-server")
    during = lab.status()["gateways"][3]["daemons"]
    assert during["ovsdb-server"] is None and during["ovs-vtep"] is None, "ovs-vtep is held while its db is down"
    assert during["ovs-vswitchd"] == before["ovs-vswitchd"]
    assert not lab.kill_daemon("gw-kvm", "ovsdb-server"), "already stopped"
    assert lab.start_daemon("gw-kvm", "ovsdb-server") != before["ovsdb-server"]
    after = lab.status()["gateways"][3]["daemons"]
    assert all(after.values()) and after["ovs-vtep"] != before["ovs-vtep"]
    assert "keepme" in lab.vtep_ctl("gw-kvm", "list-ls").split()
    assert lab.vtep_ctl("gw-kvm", "list-ps").split() == ["gw-kvm"]
    lab.vtep_ctl("gw-kvm", "del-ls", "keepme")
    assert lab.ping("k1300a", "203.0.113.32"), "the ToR in the same vswitchd forwards again"
    with pytest.raises(LabError, match="unknown daemon"):
        lab.kill_daemon("gw-kvm", "sshd")


@pytest.mark.root
@pytest.mark.ovs
def test_hand_bound_network_crosses_silos(lab: Lab) -> None:
    """A network by hand, like bind-recipe.sh: va VLAN 100 (on the switch-back p48), kvm1
    VLAN 300 and bare-metal untagged, one VNI, source-node replication to every peer."""
    vtep = {g["name"]: g["vtep_ip"] for g in lab.status()["gateways"]}
    binds = {"gw-va": ("p48", "100"), "gw-kvm": ("p1", "300"), "gw-bm": ("p1", "0")}
    for gw, (port, vlan) in binds.items():
        lab.vtep_ctl(gw, "add-ls", "net5000", "--", "set", "Logical_Switch", "net5000", "tunnel_key=5000",
                     "replication_mode=source_node")
        lab.vtep_ctl(gw, "bind-ls", gw, port, vlan, "net5000")
        for peer in binds:
            if peer != gw:
                lab.vtep_ctl(gw, "add-mcast-remote", "net5000", "unknown-dst", vtep[peer])
    assert _retry_ping(lab, "va100a", "203.0.113.31"), "vsphere-a VLAN 100 -> kvm1 VLAN 300"
    assert _retry_ping(lab, "va100b", "203.0.113.41"), "vsphere-a rack 2 -> bare metal untagged"
    assert _retry_ping(lab, "k1300b", "203.0.113.42"), "kvm1 VLAN 300 -> bare metal untagged"
    jumbo = lab.host_exec("va100a", ["ping", "-c", "1", "-M", "do", "-s", "8972", "-W", "2", "203.0.113.31"])
    assert jumbo.returncode == 0, "9000-byte frames cross VXLAN whole: " + jumbo.stdout
    assert not lab.ping("k2300a", "203.0.113.41", timeout=0.5), "kvm2 VLAN 300 is another domain, not bound"
    assert not lab.ping("va101a", "203.0.113.41", timeout=0.5), "vsphere-a VLAN 101 is not bound"


@pytest.mark.root
@pytest.mark.ovs
def test_down_removes_everything_and_repeats(lab: Lab) -> None:
    pids = [pid for g in lab.status()["gateways"] for pid in g["daemons"].values()]
    ours = {ns for ns in _netns() if ns.startswith(f"{PREFIX}-")}
    assert len(ours) == 1 + 7 + 1 + 18  # underlay, gateways, the dual-homed ToR, hosts
    started = time.monotonic()
    assert lab.down() == []
    down_seconds = time.monotonic() - started
    print(f"\nlab up {lab.up_seconds:.1f} s, down {down_seconds:.1f} s")  # type: ignore[attr-defined]
    assert not {ns for ns in _netns() if ns.startswith(f"{PREFIX}-")}
    assert not {link for link in _root_links() if link.startswith(f"{PREFIX}m")}
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _proc_state(p)]
    assert not lab.exists() and not Lab.is_up(PREFIX, lab.base_dir) and not lab.dir.exists()
    assert lab.down() == []
    cli = CliRunner().invoke(lab_app, ["down", "--prefix", PREFIX, "--dir", str(lab.base_dir)])
    assert cli.exit_code == 0 and "nothing to do" in cli.output


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.root
@pytest.mark.ovs
def test_down_after_a_half_built_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs after the module's lab is down (same prefix and index, other directory)."""
    if reason := _missing():
        pytest.skip(reason)
    topo = LabTopology("tiny", (GatewaySpec("g1"),), (Silo("s", "kvm", (Group("g", (Tor("g1", "p1", (
        Host("h1", 10), Host("h2", 10))),)),)),))
    real_host = lab_build._host
    calls: list[str] = []

    def fail_second(gw, h, state):  # type: ignore[no-untyped-def]
        calls.append(h.name)
        if len(calls) == 2:
            raise LabError("injected failure")
        real_host(gw, h, state)

    monkeypatch.setattr(lab_build, "_host", fail_second)
    half = Lab(PREFIX, INDEX, tmp_path)
    with pytest.raises(LabError, match="run `silonet lab down`"):
        half.up(topo)
    assert half.exists() and not Lab.is_up(PREFIX, tmp_path)
    assert {f"{PREFIX}-ul", f"{PREFIX}-g1", f"{PREFIX}-h1"} <= _netns()
    with pytest.raises(LabError, match="half-built"):
        half.up(topo)
    # A process the lab did not start keeps its namespace alive: down says so, and does not kill it.
    sleeper = subprocess.Popen(half.host_argv("h1", ["sleep", "30"]))
    try:
        time.sleep(0.2)
        notes = Lab(PREFIX, 0, tmp_path).down()  # a fresh object: everything comes from the state file
        assert len(notes) == 1 and f"{PREFIX}-h1" in notes[0] and str(sleeper.pid) in notes[0], notes
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    assert not {ns for ns in _netns() if ns.startswith(f"{PREFIX}-")}
    assert not {link for link in _root_links() if link.startswith(f"{PREFIX}m")}
    assert not half.exists()
