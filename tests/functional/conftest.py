"""A real ovsdb-server with the hardware_vtep schema per test (no ovs-vtep, no namespaces), and two
in-memory gateways under the real reconciler and API (``memory_pair``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.devices.vtepdb import VtepDb, available, free_port
from silonet.drivers.memory import FABRIC
from silonet.reconcile import Reconciler
from silonet.service import Manager
from tests.conftest import ADMIN

MISSING = available()
pytestmark = pytest.mark.ovs


@pytest.fixture
def vtepdb(tmp_path: Path) -> Iterator[VtepDb]:
    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING}); ./run test installs it")
    db = VtepDb(tmp_path / "gw").start()
    yield db
    db.stop()


def probing_each_second(db: VtepDb) -> str:
    """A remote of ``db`` whose connections it probes every second (a Manager row's
    ``inactivity_probe``): after 1 s without a word from us an echo, 1 s more and it hangs up."""
    port = free_port()
    db.ctl("set-manager", f"ptcp:{port}:127.0.0.1", "--", "set", "Manager", ".", "inactivity_probe=1000")
    subprocess.run(["ovs-appctl", "-t", str(db.dir / "ovsdb-server.ctl"), "ovsdb-server/add-remote",
                    "db:hardware_vtep,Global,managers"], check=True, capture_output=True)
    return f"tcp:127.0.0.1:{port}"


@pytest.fixture
def memory_pair(manager: Manager) -> Iterator[TestClient]:
    """gw-a and gw-b on memory devices (198.18.0.1 and .2, port p1), groups g1 and g2, under the real
    reconciler and API (an admin's client)."""
    FABRIC.forget()
    rec = Reconciler(manager.runtime, period=2.0, poll=0.2)
    with TestClient(create_app(manager, rec), headers=ADMIN) as client:
        for i, name in enumerate(("gw-a", "gw-b"), start=1):
            r = client.post("/v1/gateways", json={"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                                                  "management": {"driver": "memory"}})
            assert r.status_code == 201, r.text
            assert client.post("/v1/interface-groups", json={
                "name": f"g{i}", "members": [{"gateway": name, "port": "p1"}]}).status_code == 201
        yield client
    FABRIC.forget()


@contextmanager
def managed_gateways(tmp_path: Path, manager: Any, ports: dict[str, list[dict]],
                     groups: dict[str, dict]) -> Iterator[tuple[Any, dict[str, VtepDb]]]:
    """A vtep ovsdb-server per gateway (198.18.0.1, .2, ...), the API with a reconciler driving
    them, the gateways and groups created through it, and network cust-42 (VNI 5000)."""
    from fastapi.testclient import TestClient

    from silonet.api.app import create_app
    from silonet.reconcile import Reconciler
    from tests.conftest import ADMIN

    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING})")
    dbs = {name: VtepDb(tmp_path / name, name=name, tunnel_ip=f"198.18.0.{i + 1}").start()
           for i, name in enumerate(ports)}
    try:
        rec = Reconciler(manager.runtime, period=2.0, poll=0.2)
        with TestClient(create_app(manager, rec), headers=ADMIN) as client:
            for name, db in dbs.items():
                r = client.post("/v1/gateways", json={
                    "name": name, "vtep_ip": db.tunnel_ip, "management": {"driver": "ovsdb", "address": db.remote},
                    "ports": ports[name]})
                assert r.status_code == 201, r.text
            for name, body in groups.items():
                assert client.post("/v1/interface-groups", json={"name": name, **body}).status_code == 201
            r = client.post("/v1/networks", json={"name": "cust-42", "tenant": "acme", "vni": 5000})
            assert r.status_code == 201, r.text
            yield client, dbs
    finally:
        for db in dbs.values():
            db.stop()


def two_gateways(tmp_path: Path, manager: Any):  # type: ignore[no-untyped-def]
    """``managed_gateways`` with gw-a and gw-b, one port p1 each, in groups ga and gb."""
    ports = {"gw-a": [{"name": "p1"}], "gw-b": [{"name": "p1"}]}
    groups = {"ga": {"members": [{"gateway": "gw-a", "port": "p1"}]},
              "gb": {"members": [{"gateway": "gw-b", "port": "p1"}]}}
    return managed_gateways(tmp_path, manager, ports, groups)
