"""A manager SIGKILLed in the middle of a decommission resumes it after its restart: the gateways
deleted from intent (by ``DELETE`` and by ``apply --prune``) are cleaned and forgotten, and
vtep-ctl finds no orphan on any device.

Deterministic: two of the devices are down when their gateways leave the intent, so the server
is killed (by its pid) while both are ``decommissioning`` and nothing was removed from them; they
come back with every row they had while the server is down, and the restarted server finishes.
A third gateway, reachable, is killed wherever its cleaning happens to be at the prune's answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from silonet.bench.fleet import Fleet, Server
from tests.e2e.test_crash_safety import sigkill
from tests.e2e.vtep_audit import Wanted, problems, read_tables
from tests.support.fleet import started_fleet

pytestmark = pytest.mark.ovs
SETTLE_S = 60.0  # bound on one wait; not a speed assert


def until(check, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + SETTLE_S
    while not (seen := check()):
        assert time.monotonic() < deadline, f"{what} not reached within {SETTLE_S:.0f} s"
        time.sleep(0.1)
    return seen


def topology(fleet: Fleet, keep: tuple[int, ...]) -> dict:
    """The fleet's gateways ``keep``, each in its own group g<i>, network n1 on VLAN 10+i of each."""
    gws = fleet.gateways()
    return {"gateways": [gws[i] for i in keep],
            "interface_groups": [{"name": f"g{i}", "members": [{"gateway": gws[i]["name"], "port": "p1"}]}
                                 for i in keep],
            "networks": [{"name": "n1", "tenant": "dc", "vni": 7001,
                          "attachments": [{"interface_group": f"g{i}", "vlan": 10 + i} for i in keep]}]}


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    with started_fleet(tmp_path / "fleet", 4, "dk") as f:
        yield f


def test_sigkill_during_decommission_resumes_after_restart(fleet: Fleet, tmp_path: Path) -> None:
    a, b, c, d = fleet.dbs
    server = Server(tmp_path / "server", period=2.0).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60, headers=server.headers) as http:
            r = http.post("/v1/apply?wait=30", json=topology(fleet, (0, 1, 2, 3)))
            assert r.status_code == 200 and r.json()["status"] == "realized", r.text
            c.ctl("add-ls", "theirs", "--", "bind-ls", c.name, "p2", "300", "theirs")  # foreign: kept
            for db in (b, c):  # every owned row recorded in the database before the devices go down
                until(lambda g=db: http.get(f"/v1/gateways/{g.name}/status").json()["actual"]["bindings"], "a read")
                db.stop()
                until(lambda g=db: http.get(f"/v1/gateways/{g.name}/status").json()["reachable"] is False,
                      f"{db.name} unreachable")
            # c leaves with a DELETE after its group ...
            assert http.delete("/v1/networks/n1/attachments/g2/12").status_code == 204
            assert http.delete("/v1/interface-groups/g2").status_code == 204
            r = http.delete(f"/v1/gateways/{c.name}")
            assert r.status_code == 202 and r.json()["state"] == "decommissioning", r.text
            # ... b (down) and d (up) with a prune, and the server is killed at its answer
            r = http.post("/v1/apply?prune=true&force=true", json=topology(fleet, (0,)))
            assert r.status_code == 200, r.text
        sigkill(server)  # b and c decommissioning with nothing removed yet; d perhaps halfway
        notes = " ".join(r.json()["notes"])
        assert f"gateway '{b.name}' is decommissioning" in notes and f"gateway '{d.name}'" in notes, notes
        for db in (b, c):
            db.start(fresh=False)  # back, with every row it had, while no server runs
            assert db.ctl("list-bindings", db.name, "p1").split() == [f"{10 + fleet.dbs.index(db):04d}", "n1"]

        server.start(keep_db=True)
        with httpx.Client(base_url=server.url, timeout=60, headers=server.headers) as http:
            until(lambda: [g["name"] for g in http.get("/v1/gateways").json()] == [a.name], "b, c and d forgotten")
            audit = http.get("/v1/audit?limit=1000").json()
            done = {e["object"] for e in audit if e["action"] == "decommissioned"}
            assert done == {f"gateway/{g.name}" for g in (b, c, d)}, done
            assert http.get("/v1/status").json()[0]["state"] == "realized"
        assert problems(read_tables(b), Wanted()) == []
        assert problems(read_tables(c), Wanted({"theirs": None}, {("p2", 300): "theirs"})) == []
        assert problems(read_tables(d), Wanted()) == []
        assert a.ctl("list-bindings", a.name, "p1").split() == ["0010", "n1"]
        until(lambda: "vxlan_over_ipv4" not in a.ctl("list-remote-macs", "n1"), "a's flood list emptied")
    finally:
        server.stop()
