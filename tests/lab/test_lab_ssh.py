"""The lab's gateways over real OpenSSH: ``Lab.up(..., driver="ssh")`` runs sshd in every gateway
namespace (key auth only; each host key in the inventory's ``management.host_key`` and in the
lab's known_hosts), and both OpenSSH's own client and silonet's SshDriver (vtepctl dialect)
reach each gateway's hardware_vtep database through it: the driver from the inventory alone,
or with the known_hosts file instead.

One small lab (prefix sls, index 8: never in the way of the demo sn/0, the e2e se/5 or the lab
tests slt/7) comes up once per module and always comes down. The unmarked tests are pure."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest
import yaml
from typer.testing import CliRunner

from silonet.cli.lab import lab_app
from silonet.config import secrets_dir
from silonet.drivers.base import Driver, registry, wait_connected
from silonet.drivers.ssh.driver import SshDriver
from silonet.lab import GatewaySpec, Group, Host, Lab, LabError, LabTopology, Silo, Tor, paper_topology
from silonet.lab import build as lab_build
from silonet.lab import daemons as lab_daemons
from silonet.lab import ssh as lab_ssh
from silonet.lab.layout import build_layout
from silonet.lab.state import StateFile
from silonet.model import Gateway, Management, rules
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.service.topology import parse_topology
from tests.conftest import fresh_lab

PREFIX, INDEX = "sls", 8
MGMT, UNDERLAY = "198.18.17", "198.18.16"
OVS_TOOLS = ("ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-vswitchd", "ovs-ofctl", "vtep-ctl")
VNI = 7001
SLEEP = 59.25  # a session's command, recognisable among the gateway namespace's processes

# Two silos, one gateway each: a VLAN-100 rack behind gw-a, untagged bare metal behind gw-b.
TOPO = LabTopology("ssh", (GatewaySpec("gw-a", "sa"), GatewaySpec("gw-b", "sb")), (
    Silo("sa", "kvm", (Group("ga", (Tor("gw-a", "p1", (Host("ha1", 100, "203.0.113.1"),)),)),)),
    Silo("sb", "baremetal", (Group("gb", (Tor("gw-b", "p1", (Host("hb1", 0, "203.0.113.3"),)),)),)),
))


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = [t for t in (*OVS_TOOLS, "ssh", "ssh-keygen") if shutil.which(t) is None]
    missing += [f for f in (*lab_build.FILES, lab_daemons.SSHD_BIN) if not Path(f).exists()]
    return f"needs Open vSwitch and OpenSSH; missing: {', '.join(missing)}" if missing else None


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _ssh(status: dict, ip: str, *command: str, known_hosts: str | None = None, options: tuple[str, ...] = (),
         env: dict[str, str] | None = None, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """OpenSSH's own client from the root namespace, with the lab's key and known_hosts only."""
    argv = ["ssh", "-F", "none", "-i", status["client_key"],
            "-o", f"UserKnownHostsFile={known_hosts or status['known_hosts']}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=5", *options, f"root@{ip}", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def _retry_ping(lab: Lab, src: str, dst: str, seconds: float = 15.0) -> bool:
    """ovs-vtep polls about once a second: a fresh binding forwards within a few seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lab.ping(src, dst, count=1, timeout=1.0):
            return True
    return False


async def _converge(driver: Driver, desired: GatewayState) -> GatewayState:
    """What a reconcile pass does: read, write the difference, and again while the device answers
    ``retry`` (after the ping, ovs-vtep learns MACs on the network being deleted)."""
    for _ in range(3):
        if not (await driver.apply(diff(desired, (await driver.read()).owned))).retry:
            return (await driver.read()).owned
    raise AssertionError(f"{driver.gateway.name}: the device kept changing")


# ------------------------------------------------------------------ pure checks
def test_inventory_per_driver_without_a_running_lab(tmp_path: Path) -> None:
    lab = Lab(PREFIX, INDEX, tmp_path)
    key = f"file:{secrets_dir() / f'lab-{PREFIX}' / 'id_ed25519'}"  # where credentials may point; a manager takes it
    ssh_inv = lab.inventory(paper_topology(), driver="ssh")
    for i, spec in enumerate(ssh_inv["gateways"]):  # management addresses by gateway order (a pair shares vtep_ip)
        assert spec["management"] == {"driver": "ssh", "dialect": "vtepctl", "address": f"root@{MGMT}.{i + 1}:22",
                                      "credentials": key}
    mixed = parse_topology(yaml.safe_dump(lab.inventory(paper_topology(), driver="mixed")), "mixed inventory")
    # alternating; the pair gw-pa/gw-pb takes its first member's driver
    assert [g.management.driver for g in mixed.gateways] == ["ovsdb", "ssh", "ovsdb", "ssh", "ovsdb", "ssh", "ssh"]
    for g in mixed.gateways:
        gw = g.entity()
        if gw.management.driver == "ssh":
            assert gw.management.dialect == "vtepctl" and gw.management.credentials == key
        else:
            assert gw.management.address.startswith(f"tcp:{MGMT}.") and gw.management.credentials is None
    assert lab.inventory(paper_topology()) == lab.inventory(paper_topology(), driver="ovsdb")
    cli = CliRunner().invoke(lab_app, ["inventory", "--prefix", PREFIX, "--index", str(INDEX), "--dir",
                                       str(tmp_path), "--topology", "paper", "--driver", "mixed"])
    assert cli.exit_code == 0, cli.output
    assert yaml.safe_load(cli.output) == lab.inventory(paper_topology(), driver="mixed")


def test_bad_driver_and_reserved_name_fail_before_anything(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="driver 'telnet' must be one of ovsdb, ssh, mixed"):
        Lab(PREFIX, INDEX, tmp_path).up(TOPO, driver="telnet")
    assert not (tmp_path / PREFIX).exists()
    cli = CliRunner().invoke(lab_app, ["up", "--prefix", PREFIX, "--index", str(INDEX), "--dir", str(tmp_path),
                                       "--driver", "telnet"])
    assert cli.exit_code != 0 and not (tmp_path / PREFIX).exists()
    named_ssh = LabTopology("x", (GatewaySpec("ssh"),), (Silo("s", "kvm", (Group("g", (Tor("ssh", "p1"),)),)),))
    build_layout(PREFIX, INDEX, tmp_path, named_ssh)  # fine with ovsdb: no ssh directory
    with pytest.raises(LabError, match="gateway name 'ssh' is taken"):
        build_layout(PREFIX, INDEX, tmp_path, named_ssh, "mixed")


def test_a_state_file_without_driver_is_an_ovsdb_lab(tmp_path: Path) -> None:
    """Labs built before the driver option (a demo lab left running) read as ovsdb labs."""
    state = StateFile(tmp_path / PREFIX / "lab.json")
    state.create(PREFIX, INDEX, TOPO.resolved().to_dict())
    del state.data["driver"]
    state.save()
    lab = Lab(PREFIX, 0, tmp_path)
    assert lab.driver == "ovsdb" and not lab.layout().ssh
    assert all(g["management"]["driver"] == "ovsdb" for g in lab.inventory()["gateways"])
    with pytest.raises(LabError, match=r"unknown daemon 'sshd'.*--driver ssh or mixed"):
        lab.kill_daemon("gw-a", "sshd")


def test_sshd_config_is_key_only_on_the_management_ip(tmp_path: Path) -> None:
    layout = build_layout(PREFIX, INDEX, tmp_path, TOPO.resolved(), "ssh")
    gw = layout.gateway("gw-b")
    conf = lab_ssh.sshd_config(gw, layout.authorized_keys).splitlines()
    for line in (f"ListenAddress {MGMT}.2:22", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                 "AuthenticationMethods publickey", "PermitRootLogin prohibit-password",
                 f'AuthorizedKeysFile "{layout.authorized_keys}"', f'PidFile "{gw.dir / "sshd.pid"}"',
                 f'HostKey "{gw.host_key}"'):
        assert line in conf
    setenv = next(line for line in conf if line.startswith("SetEnv "))
    assert f'"OVS_RUNDIR={gw.dir}"' in setenv and '"PATH=' in setenv
    assert lab_daemons.daemon_argv(gw, "sshd") == [lab_daemons.SSHD_BIN, "-f", str(gw.sshd_config), "-E",
                                                   str(gw.dir / "sshd.log")]


# ------------------------------------------------------------------ the ssh lab
@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if reason := _missing():
        pytest.skip(reason)
    the_lab = fresh_lab(PREFIX, INDEX)
    try:
        started = time.monotonic()
        the_lab.up(TOPO, driver="ssh")
        the_lab.up_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture
def status(lab: Lab) -> dict:
    return lab.status()


@pytest.mark.root
@pytest.mark.ovs
def test_status_keys_and_files(lab: Lab, status: dict) -> None:
    assert status["phase"] == "up" and status["driver"] == "ssh" and status["missing"] == []
    ssh_dir = lab.dir / "ssh"
    assert status["known_hosts"] == str(ssh_dir / "known_hosts")
    key = secrets_dir() / f"lab-{PREFIX}" / "id_ed25519"  # the lab's folder in the (tests') secrets directory
    assert status["client_key"] == str(key) and not (ssh_dir / "id_ed25519").exists()
    assert rules.credentials_violation(f"file:{key}", secrets_dir()) is None
    assert ssh_dir.stat().st_mode & 0o777 == 0o700 and key.parent.stat().st_mode & 0o777 == 0o700
    assert key.stat().st_mode & 0o777 == 0o600
    known = [line.split() for line in Path(status["known_hosts"]).read_text().splitlines()]
    for gw, entry in zip(status["gateways"], known, strict=True):
        assert gw["ssh"] == f"root@{gw['mgmt_ip']}:22" and gw["mgmt_ip"].startswith(f"{MGMT}.")
        assert gw["driver"] == "ssh" and set(gw["daemons"]) == {"ovsdb-server", "ovs-vswitchd", "ovs-vtep", "sshd"}
        assert all(gw["daemons"].values()), gw["daemons"]
        host_pub = (ssh_dir / f"ssh_host_{gw['name']}_ed25519.pub").read_text().split()[:2]
        assert entry == [gw["mgmt_ip"], *host_pub]
    assert json.loads(lab._state.path.read_text())["driver"] == "ssh"
    for gw in status["gateways"]:  # sshd listens on the management IP only
        listening = lab.gateway_exec(gw["name"], ["ss", "-H", "-t", "-l", "-n"], check=True).stdout.splitlines()
        assert [line.split()[3] for line in listening if line.split()[3].endswith(":22")] == [f"{gw['mgmt_ip']}:22"]
    cli = CliRunner().invoke(lab_app, ["status", "--json", "--prefix", PREFIX, "--dir", str(lab.base_dir)])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output) == json.loads(json.dumps(status))
    table = CliRunner().invoke(lab_app, ["status", "--prefix", PREFIX, "--dir", str(lab.base_dir)],
                               env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "driver ssh" in table.output and "root@198.18.17.1:22" in table.output


@pytest.mark.root
@pytest.mark.ovs
def test_openssh_client_runs_vtep_ctl_on_each_gateway(status: dict) -> None:
    for gw in status["gateways"]:
        proc = _ssh(status, gw["mgmt_ip"], "vtep-ctl", "list-ps")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [gw["name"]]
    env = _ssh(status, f"{MGMT}.2", 'echo "$OVS_RUNDIR|$PATH|$PYENV_ROOT"')
    assert env.stdout.strip() == f"{status['gateways'][1]['dir']}|{lab_ssh.SESSION_PATH}|", "no root profile"
    tunnel = _ssh(status, f"{MGMT}.2", "vtep-ctl get Physical_Switch gw-b tunnel_ips")
    assert tunnel.stdout.strip() == f'["{UNDERLAY}.2"]', tunnel.stderr


@pytest.mark.root
@pytest.mark.ovs
def test_wrong_or_unknown_host_key_is_refused(status: dict, tmp_path: Path) -> None:
    keys = {line.split()[0]: line.split(None, 1)[1] for line in Path(status["known_hosts"]).read_text().splitlines()}
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{MGMT}.1 {keys[f'{MGMT}.2']}\n")  # gw-b's key for gw-a's address
    proc = _ssh(status, f"{MGMT}.1", "vtep-ctl", "list-ps", known_hosts=str(wrong))
    assert proc.returncode == 255 and not proc.stdout
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr and "Host key verification failed" in proc.stderr
    wrong.write_text(f"{MGMT}.2 {keys[f'{MGMT}.2']}\n")  # nothing known about gw-a
    proc = _ssh(status, f"{MGMT}.1", "true", known_hosts=str(wrong))
    assert proc.returncode == 255 and "Host key verification failed" in proc.stderr


@pytest.mark.root
@pytest.mark.ovs
def test_password_authentication_is_refused(status: dict, tmp_path: Path) -> None:
    """A client willing to type a password (askpass forced, no key) is never asked for one: the
    server offers public keys only. asyncssh with a password gets PermissionDenied."""
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\ntouch {asked}\necho not-the-password\n")
    askpass.chmod(0o700)
    proc = _ssh(status, f"{MGMT}.1", "true",
                options=("-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-o",
                         "PreferredAuthentications=password,keyboard-interactive", "-o", "NumberOfPasswordPrompts=1"),
                env={"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
    assert proc.returncode == 255 and "Permission denied (publickey)" in proc.stderr, proc.stderr
    assert not asked.exists(), "the client was asked for a password"

    async def with_password() -> None:
        async with asyncssh.connect(f"{MGMT}.1", 22, username="root", password="root", client_keys=None,
                                    agent_path=None, known_hosts=status["known_hosts"], connect_timeout=5):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(with_password())


@pytest.mark.root
@pytest.mark.ovs
def test_inventory_parses_with_ssh_gateways(lab: Lab, status: dict) -> None:
    cli = CliRunner().invoke(lab_app, ["inventory", "--prefix", PREFIX, "--dir", str(lab.base_dir)])
    assert cli.exit_code == 0, cli.output
    assert yaml.safe_load(cli.output) == lab.inventory()
    topo = parse_topology(cli.output, "lab inventory")
    assert [g.name for g in topo.gateways] == ["gw-a", "gw-b"] and not topo.networks
    for g in topo.gateways:
        m = g.entity().management
        assert (m.driver, m.dialect) == ("ssh", "vtepctl")
        assert m.address == f"root@{g.vtep_ip.replace(UNDERLAY, MGMT)}:22"
        assert m.credentials == f"file:{status['client_key']}" and Path(status["client_key"]).is_absolute()
        host_pub = (lab.dir / "ssh" / f"ssh_host_{g.name}_ed25519.pub").read_text().split()[:2]
        assert m.host_key == " ".join(host_pub), "the gateway's own sshd host key"
    with pytest.raises(LabError, match="runs with driver ssh, not ovsdb"):
        lab.inventory(driver="ovsdb")


def _gateway(lab: Lab, name: str) -> Gateway:
    spec = next(g for g in parse_topology(yaml.safe_dump(lab.inventory())).gateways if g.name == name)
    return spec.entity()



@pytest.mark.root
@pytest.mark.ovs
def test_ssh_driver_applies_and_reads_back(lab: Lab, status: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """silonet's SshDriver (vtepctl over OpenSSH) on gw-a and the ovsdb driver on gw-b carry one VNI:
    the hosts behind them ping; then both are emptied again through the same drivers. The SSH
    gateway is reached from its inventory entry alone: no known_hosts file where the driver looks."""
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(lab.dir / "no-such-known_hosts"))
    vtep = {g["name"]: g["vtep_ip"] for g in status["gateways"]}
    gw_a = _gateway(lab, "gw-a")
    gw_b = _gateway(lab, "gw-b")
    gw_b = replace(gw_b, management=Management("ovsdb", f"tcp:{MGMT}.2:6640"))  # its OVSDB answers too
    desired = {
        "gw-a": GatewayState({VNI: LogicalSwitch(VNI, "net7001", frozenset({vtep["gw-b"]}))}, {("p1", 100): VNI}),
        "gw-b": GatewayState({VNI: LogicalSwitch(VNI, "net7001", frozenset({vtep["gw-a"]}))}, {("p1", 0): VNI}),
    }

    async def scenario() -> tuple[GatewayState, GatewayState]:
        ssh_drv = SshDriver(gw_a, lambda: None)
        ovsdb_drv = registry("ovsdb")(gw_b, lambda: None)
        await ssh_drv.start()
        await ovsdb_drv.start()
        try:
            read_back = {}
            for name, drv in (("gw-a", ssh_drv), ("gw-b", ovsdb_drv)):
                await wait_connected(drv, timeout=15.0)
                before = (await drv.read()).owned
                assert before == GatewayState(), f"{name} holds silonet state already: {before}"
                read_back[name] = await _converge(drv, desired[name])
            assert read_back == desired
            assert lab.vtep_ctl("gw-a", "list-bindings", "gw-a", "p1").split() == ["0100", "net7001"]
            assert lab.vtep_ctl("gw-a", "get", "Logical_Switch", "net7001", "tunnel_key").strip() == str(VNI)
            flood = lab.vtep_ctl("gw-a", "list-remote-macs", "net7001")
            assert f"unknown-dst -> vxlan_over_ipv4/{vtep['gw-b']}" in flood, flood
            assert lab.vtep_ctl("gw-b", "list-bindings", "gw-b", "p1").split() == ["0000", "net7001"]
            pinged = await asyncio.to_thread(_retry_ping, lab, "ha1", "203.0.113.3")
            assert pinged, "VLAN 100 behind gw-a (ssh) -> untagged behind gw-b (ovsdb)"
            again = (await ssh_drv.read()).owned
            assert diff(desired["gw-a"], again) == [], "idempotent: nothing left to do"
            return await _converge(ssh_drv, GatewayState()), await _converge(ovsdb_drv, GatewayState())
        finally:
            await ssh_drv.close()
            await ovsdb_drv.close()

    empty_a, empty_b = asyncio.run(scenario())
    assert empty_a == GatewayState() and empty_b == GatewayState()
    assert lab.vtep_ctl("gw-a", "list-ls").split() == [] and lab.vtep_ctl("gw-b", "list-ls").split() == []
    assert lab.vtep_ctl("gw-a", "list-bindings", "gw-a", "p1").split() == []


@pytest.mark.root
@pytest.mark.ovs
def test_a_known_hosts_file_still_works_without_host_key(lab: Lab, status: dict,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", status["known_hosts"])
    gw = _gateway(lab, "gw-b")
    gw = replace(gw, management=replace(gw.management, host_key=None))

    async def scenario() -> GatewayState:
        driver = SshDriver(gw, lambda: None)
        await driver.start()
        try:
            await wait_connected(driver, timeout=15.0)
            return (await driver.read()).owned
        finally:
            await driver.close()

    assert asyncio.run(scenario()) == GatewayState()


@pytest.mark.root
@pytest.mark.ovs
def test_another_gateways_host_key_in_the_inventory_is_refused_at_once(lab: Lab, status: dict,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """gw-a's entry with gw-b's host key: the known_hosts file (which would let it in) is not asked;
    the failure is hard and names both fingerprints."""
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", status["known_hosts"])
    gw_a, gw_b = _gateway(lab, "gw-a"), _gateway(lab, "gw-b")
    assert gw_a.management.host_key != gw_b.management.host_key
    wrong = replace(gw_a, management=replace(gw_a.management, host_key=gw_b.management.host_key))

    async def scenario() -> str:
        driver = SshDriver(wrong, lambda: None)
        await driver.start()
        try:
            deadline = time.monotonic() + 15
            while not driver.health().hard:
                assert time.monotonic() < deadline and not driver.health().connected, driver.health()
                await asyncio.sleep(0.05)
            return driver.health().detail
        finally:
            await driver.close()

    detail = asyncio.run(scenario())
    expected = asyncssh.import_public_key(gw_b.management.host_key).get_fingerprint("sha256")
    offered = asyncssh.import_public_key(gw_a.management.host_key).get_fingerprint("sha256")
    assert "gw-a" in detail and f"host key mismatch: management.host_key is {expected}" in detail, detail
    assert f"offered {offered}" in detail, detail


@pytest.mark.root
@pytest.mark.ovs
def test_kill_and_start_sshd(lab: Lab, status: dict) -> None:
    """Stopping sshd ends its open sessions and nothing else; starting it serves again."""
    before = status["gateways"][0]["daemons"]
    session = subprocess.Popen(["ssh", "-F", "none", "-i", status["client_key"], "-o",
                                f"UserKnownHostsFile={status['known_hosts']}", "-o", "BatchMode=yes",
                                f"root@{MGMT}.1", f"sleep {SLEEP}"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while f"sleep {SLEEP}" not in _ns_commands(f"{PREFIX}-gw-a"):
            assert time.monotonic() < deadline and session.poll() is None, "the ssh session did not start"
            time.sleep(0.05)
        assert lab.kill_daemon("gw-a", "sshd")
        assert session.wait(timeout=10) == 255, "the open session ended with sshd"
    finally:
        if session.poll() is None:
            session.send_signal(signal.SIGTERM)
            session.wait(timeout=5)
    during = lab.status()["gateways"][0]["daemons"]
    assert during["sshd"] is None and not _alive(before["sshd"])
    assert {k: v for k, v in during.items() if k != "sshd"} == {k: v for k, v in before.items() if k != "sshd"}
    assert f"sleep {SLEEP}" not in _ns_commands(f"{PREFIX}-gw-a")
    assert not lab.kill_daemon("gw-a", "sshd"), "already stopped"
    refused = _ssh(status, f"{MGMT}.1", "true")
    assert refused.returncode == 255 and "Connection refused" in refused.stderr
    assert lab.vtep_ctl("gw-a", "list-ps").split() == ["gw-a"], "the gateway itself is untouched"
    pid = lab.start_daemon("gw-a", "sshd")
    assert pid != before["sshd"] and lab.status()["gateways"][0]["daemons"]["sshd"] == pid
    assert _ssh(status, f"{MGMT}.1", "vtep-ctl", "list-ps").stdout.split() == ["gw-a"]
    with pytest.raises(LabError, match="already running"):
        lab.start_daemon("gw-a", "sshd")
    with pytest.raises(LabError, match="unknown daemon 'telnetd'"):
        lab.kill_daemon("gw-a", "telnetd")


def _ns_commands(ns: str) -> str:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
    cmds = []
    for pid in out.split():
        try:
            cmds.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(cmds)


@pytest.mark.root
@pytest.mark.ovs
def test_down_stops_sshd_and_removes_everything(lab: Lab, status: dict) -> None:
    sshd = {g["name"]: int((Path(g["dir"]) / "sshd.pid").read_text()) for g in status["gateways"]}
    assert sshd == {g["name"]: g["daemons"]["sshd"] for g in status["gateways"]}
    pids = [pid for g in status["gateways"] for pid in g["daemons"].values()]
    started = time.monotonic()
    assert lab.down() == []
    print(f"\nssh lab up {lab.up_seconds:.1f} s, down {time.monotonic() - started:.1f} s")  # type: ignore[attr-defined]
    assert not [p for p in sshd.values() if _alive(p)], "sshd still runs"
    assert not [p for p in pids if _alive(p)]
    assert not {ns for ns in _netns() if ns.startswith(f"{PREFIX}-")}
    assert not {link for link in os.listdir("/sys/class/net") if link.startswith(f"{PREFIX}m")}
    assert not lab.exists() and not lab.dir.exists()
    assert not Path(status["client_key"]).parent.exists()  # the key's folder in the secrets directory too
    assert lab.down() == []
