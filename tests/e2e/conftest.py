"""The paper's lab with real ovs-vtep gateways and silonet driving them (root, namespaces, OVS).

Prefix ``se`` and index 5: never the demo's ``sn``/0, so a demo lab left running is untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from silonet.api.app import create_app
from silonet.cli.lab import lab_app
from silonet.config import Settings
from silonet.lab import Lab, paper_topology
from silonet.reconcile import Reconciler
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.topology import parse_topology
from silonet.store.db import Database
from tests.conftest import ADMIN, ADMIN_TOKEN, fresh_lab


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    tools = [t for t in ("ip", "ovsdb-server", "ovs-vswitchd", "vtep-ctl", "ping") if shutil.which(t) is None]
    if not Path("/usr/share/openvswitch/scripts/ovs-vtep").exists():
        tools.append("ovs-vtep")
    return f"missing: {', '.join(tools)} (./run test installs them)" if tools else None


@dataclass
class Fabric:
    lab: Lab
    client: TestClient
    hosts: dict[str, dict]  # name -> status entry (netns, vlan, ip, interface_group, ...)
    driver: str  # "ovsdb", "ssh" or "mixed"
    logs: list[str]

    def gateway_driver(self, name: str) -> str:
        return self.client.get(f"/v1/gateways/{name}").json()["management"]["driver"]

    def host(self, group: str, vlan: int, n: int = 0) -> dict:
        return [h for h in self.hosts.values() if h["interface_group"] == group and h["vlan"] == vlan][n]

    def ping(self, src: dict, dst: dict, timeout: float = 20.0) -> bool:
        """Bounded: ovs-vtep polls about once a second, so allow it a few rounds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lab.ping(src["name"], dst["ip"], count=1, timeout=1):
                return True
        return False

    def no_ping(self, src: dict, dst: dict) -> bool:
        return not self.lab.ping(src["name"], dst["ip"], count=3, timeout=1)

    def network(self, name: str, vni: int) -> None:
        r = self.client.post("/v1/networks", json={"name": name, "tenant": "e2e", "vni": vni})
        assert r.status_code == 201, r.text

    def attach(self, net: str, group: str, vlan: int) -> dict:
        r = self.client.post(f"/v1/networks/{net}/attachments?wait=30", json={"interface_group": group, "vlan": vlan})
        assert r.status_code == 201, r.text
        return r.json()

    def detach(self, net: str, group: str, vlan: int) -> None:
        r = self.client.delete(f"/v1/networks/{net}/attachments/{group}/{vlan}?wait=30")
        assert r.status_code == 204, r.text

    def clear(self) -> None:
        for net in self.client.get("/v1/networks").json():
            assert self.client.delete(f"/v1/networks/{net['name']}?cascade=true&wait=30").status_code == 204


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.2)


def lab_inventory(lab: Lab) -> S.Topology:
    """What `silonet lab inventory` prints, as `silonet apply -f` reads it: all a manager is given."""
    out = CliRunner().invoke(lab_app, ["inventory", "--prefix", lab.prefix, "--dir", str(lab.base_dir)])
    assert out.exit_code == 0, out.output
    return parse_topology(out.output, "silonet lab inventory")


class _Capture(logging.Handler):
    """Every log record of the run, formatted: the secrets test reads them all."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module", params=["ovsdb", "ssh", "mixed"])
def fabric(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    """The lab with every gateway on OVSDB, every gateway over SSH (vtepctl dialect on real
    OpenSSH), or a mixed fleet carrying the same VNIs. The manager is given the lab's inventory
    alone: each SSH gateway's host key is in it (``management.host_key``), and no known_hosts
    file exists where the driver would look."""
    if why := _missing():
        pytest.skip(why)
    driver = request.param
    if driver != "ovsdb" and shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.skip("missing: sshd (openssh-server; ./run test installs it)")
    base = tmp_path_factory.mktemp(f"lab-{driver}")
    lab = fresh_lab("se", 5)
    capture = _Capture()
    root = logging.getLogger()
    old_level, old_known = root.level, os.environ.get("SILONET_SSH_KNOWN_HOSTS")
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        lab.up(paper_topology(), driver=driver)
        os.environ["SILONET_SSH_KNOWN_HOSTS"] = str(base / "no-known_hosts")  # the inventory's host keys only
        db = Database(f"sqlite:///{base / 'silonet.db'}")
        db.upgrade()
        manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10100),
                                                admin_token=ADMIN_TOKEN))
        manager.apply(lab_inventory(lab))
        rec = Reconciler(manager.runtime, period=5.0, poll=0.5)
        with TestClient(create_app(manager, rec), headers=ADMIN) as client:
            hosts = {h["name"]: h for s in lab.status()["silos"] for h in s["hosts"]}
            yield Fabric(lab, client, hosts, driver, capture.lines)
        db.dispose()
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        if old_known is None:
            os.environ.pop("SILONET_SSH_KNOWN_HOSTS", None)
        else:
            os.environ["SILONET_SSH_KNOWN_HOSTS"] = old_known
        lab.down()


@pytest.fixture
def fab(fabric: Fabric) -> Iterator[Fabric]:
    """Each test starts and ends with no networks."""
    yield fabric
    fabric.clear()
