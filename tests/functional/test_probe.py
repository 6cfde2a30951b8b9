"""``silonet gateway probe`` against real peers: an ovsdb-server with the hardware_vtep schema, and
the same database behind a real sshd with the ``vtepctl`` dialect. The probe must read, report
foreign and owned state and what an enforce pass would change, and write nothing (``vtep-ctl``,
an independent reader, says so)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from silonet.config import secrets_dir
from silonet.devices import sshgw
from silonet.devices.vtepdb import VtepDb, free_port
from silonet.drivers.report import describe, load_case
from silonet.drivers.ssh.dialect import Target, dialects
from silonet.drivers.ssh.driver import replay
from tests.functional.conftest import MISSING
from tests.support.cli import silonet

pytestmark = pytest.mark.ovs

TOPOLOGY = """
gateways:
  - name: gw-a
    vtep_ip: 198.18.0.1
    management: {{driver: ovsdb, address: "{address}"}}
    ports: [{{name: p1}}, {{name: p2}}]
  - name: gw-b
    vtep_ip: 198.18.0.2
    management: {{driver: ovsdb, address: "tcp:127.0.0.1:{closed}"}}
    ports: [{{name: p1}}]
interface_groups:
  - {{name: ga, members: [{{gateway: gw-a, port: p1}}]}}
  - {{name: gb, members: [{{gateway: gw-b, port: p1}}]}}
networks:
  - name: cust-42
    tenant: acme
    vni: 5000
    attachments: [{{interface_group: ga, vlan: 100}}, {{interface_group: gb, vlan: 200}}]
"""


@pytest.fixture
def device(tmp_path: Path) -> VtepDb:
    """gw-a's switch, holding someone else's logical switch 'theirs' (VNI 7777) on p2 VLAN 300."""
    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING}); ./run test installs it")
    db = VtepDb(tmp_path / "gw-a", name="gw-a", tunnel_ip="198.18.0.1").start()
    db.ctl("add-ls", "theirs", "--", "set", "Logical_Switch", "theirs", "tunnel_key=7777")
    db.ctl("bind-ls", "gw-a", "p2", "300", "theirs")
    yield db
    db.stop()


@pytest.fixture
def sshd(tmp_path: Path, device: VtepDb) -> Iterator[tuple[sshgw.SshGateway, dict[str, str]]]:
    """A real sshd in front of ``device`` (vtep-ctl in its shell), and the CLI's environment to reach it."""
    if (missing := sshgw.available()) is not None:
        pytest.skip(f"missing here: {missing}; ./run test installs it (and CI runs as root)")
    ssh = sshgw.SshGateway(tmp_path / "sshd", device, secrets_dir())
    ssh.start()
    yield ssh, {"SILONET_SSH_KNOWN_HOSTS": str(ssh.known_hosts), "SILONET_SECRETS_DIR": str(secrets_dir())}
    ssh.stop()


def _stored(tmp_path: Path, db: VtepDb) -> Path:
    data = tmp_path / "data"
    topo = tmp_path / "topology.yaml"
    topo.write_text(TOPOLOGY.format(address=db.remote, closed=free_port()))
    p = silonet(data, "apply", "-f", str(topo))
    assert p.returncode == 0, p.stderr
    return data


def test_probe_of_a_stored_gateway_reports_and_writes_nothing(tmp_path: Path, device: VtepDb) -> None:
    data = _stored(tmp_path, device)
    before = device.ctl("list-ls")
    p = silonet(data, "gateway", "probe", "gw-a", "--json")
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found["gateway"] == "gw-a" and found["driver"] == "ovsdb"
    assert found["ports"] == ["p1", "p2", "p48"]  # what the switch has, not what the inventory names
    assert found["foreign"]["vnis"] == {"7777": "theirs"}
    assert found["foreign"]["bindings"] == [{"port": "p2", "vlan": 300, "logical_switch": "theirs"}]
    assert found["owned"]["logical_switches"] == [] and found["owned"]["bindings"] == []
    kinds = sorted(c["op"] for c in found["changes"])
    assert kinds == ["Bind", "EnsureLogicalSwitch", "SetFloodList"], found["changes"]
    assert any(c.get("vni") == 5000 for c in found["changes"]), found["changes"]
    assert found["refused"] == {}
    assert device.ctl("list-ls") == before  # the independent reader: nothing was written
    assert "silonet" not in device.ctl("list-bindings", "gw-a", "p1")

    shown = silonet(data, "gateway", "probe", "gw-a")  # the tables, for a person
    assert shown.returncode == 0, shown.stderr
    assert "theirs" in shown.stdout and "An enforce pass would apply" in shown.stdout


def test_an_unreachable_gateway_is_one_line_and_a_failing_exit(tmp_path: Path, device: VtepDb) -> None:
    data = _stored(tmp_path, device)
    p = silonet(data, "gateway", "probe", "gw-b", "--timeout", "1")
    assert p.returncode == 1
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "gw-b" in lines[0], p.stderr


def test_inline_probe_has_no_desired_state(tmp_path: Path, device: VtepDb) -> None:
    """Inline, with no name nor VTEP address to tell the device by, the only switch there is read."""
    other = VtepDb(tmp_path / "sw9", name="sw9", tunnel_ip="198.18.0.77").start()
    try:
        p = silonet(tmp_path / "data", "gateway", "probe", "--driver", "ovsdb", "--address", other.remote, "--json")
    finally:
        other.stop()
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found["changes"] is None and found["refused"] is None and found["commands"] is None
    assert found["vtep_ip"] == "198.18.0.77"  # the switch's own tunnel address, reported
    p = silonet(tmp_path / "data", "gateway", "probe", "--driver", "ovsdb", "--address", device.remote, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["foreign"]["vnis"] == {"7777": "theirs"}
    saved = silonet(tmp_path / "data", "gateway", "probe", "--driver", "ovsdb", "--address", device.remote,
                    "--save", str(tmp_path / "capture"))
    assert saved.returncode == 1 and "only SSH gateways answer commands to save" in saved.stderr
    assert not (tmp_path / "capture").exists()


def test_an_ssh_capture_saved_by_probe_reads_back_as_a_parser_case(tmp_path: Path, sshd: tuple) -> None:
    """``--save`` writes the layout the parser tests read: the raw answers, by command, and what the
    parser made of them; read again, they mean the same."""
    ssh, env = sshd
    out = tmp_path / "capture"
    p = silonet(tmp_path / "data", "gateway", "probe", "gw-a", "--driver", "ssh", "--dialect", "vtepctl",
                "--address", ssh.address, "--credentials", ssh.credentials, "--port", "p1", "--port", "p2",
                "--save", str(out), "--json", **env)
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    case = load_case(out)
    d = dialects()["vtepctl"]
    assert case.dialect == "vtepctl" and set(d.show) <= set(case.outputs)
    assert case.source["probe"]["gateway"] == "gw-a"
    assert case.parsed is not None and case.parsed["foreign"]["vnis"] == {7777: "theirs"}
    t = case.target
    target = Target(t["name"], t["vtep_ip"] or "", tuple(t["ports"]), tuple(t["switchbacks"]))
    again = describe(replay(d, target, case.outputs))
    assert again == case.parsed
    assert found["foreign"]["bindings"] == [{"port": "p2", "vlan": 300, "logical_switch": "theirs"}]
    assert yaml.safe_load((out / "case.yaml").read_text())["outputs"]  # command -> file, as the tests read


def test_a_stored_ssh_gateway_shows_the_lines_it_would_type(tmp_path: Path, device: VtepDb, sshd: tuple) -> None:
    """On an SSH gateway the probe also shows the lines an enforce pass would type, rendered by
    the dialect from the state it just read, and types none of them."""
    ssh, env = sshd
    topo = tmp_path / "topology.yaml"
    topo.write_text(TOPOLOGY.format(address=device.remote, closed=free_port()).replace(
        f'{{driver: ovsdb, address: "{device.remote}"}}',
        f'{{driver: ssh, dialect: vtepctl, address: "{ssh.address}", credentials: "{ssh.credentials}"}}'))
    data = tmp_path / "data"
    p = silonet(data, "apply", "-f", str(topo), **env)
    assert p.returncode == 0, p.stderr
    before = device.ctl("list-ls")
    p = silonet(data, "gateway", "probe", "gw-a", "--json", **env)
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found["dialect"] == "vtepctl" and [c["op"] for c in found["changes"]].count("Bind") == 1
    lines = "\n".join(found["commands"])
    assert "silonet-cust-42" in lines or "cust-42" in lines, lines
    assert "bind-ls" in lines and "p1" in lines and "100" in lines, lines
    assert device.ctl("list-ls") == before  # nothing was typed


def test_the_wrong_dialect_fails_naming_the_command_and_still_saves_what_it_got(tmp_path: Path,
                                                                                sshd: tuple) -> None:
    """A real sshd whose shell has no `show` (the sonic dialect on a vtep-ctl gateway): exit 1, one
    line naming the gateway and the command, and ``--save`` keeps the capture with the error."""
    ssh, env = sshd
    out = tmp_path / "capture"
    p = silonet(tmp_path / "data", "gateway", "probe", "gw-a", "--driver", "ssh", "--dialect", "sonic",
                "--address", ssh.address, "--credentials", ssh.credentials, "--save", str(out), **env)
    assert p.returncode == 1
    errors = [x for x in p.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "gw-a" in errors[0] and "'show version'" in errors[0], p.stderr
    saved = yaml.safe_load((out / "case.yaml").read_text())
    assert saved["dialect"] == "sonic" and "show version" in saved["parsed"]["error"]
