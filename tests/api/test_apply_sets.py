"""POST /v1/apply with apply sets: ?set= scopes a prune, the guard answers 409 naming how many
of what, ?force=true lets it through, and changes name each field old -> new."""

from __future__ import annotations

from typing import Any

import yaml

from silonet.service import Manager
from tests.conftest import EXAMPLE, Snapshot

LAB = {"networks": [{"name": "lab-1", "tenant": "lab", "attachments": [{"interface_group": "pad", "vlan": 42}]}]}


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def test_a_set_prunes_only_its_own(client: Any, seeded: Manager) -> None:
    r = client.post("/v1/apply?set=lab", json=LAB)
    assert r.status_code == 200 and r.json()["set"] == "lab"
    assert {(c["action"], c["name"]) for c in r.json()["changes"]} == {("create", "lab-1"), ("attach", "lab-1/pad/42")}
    assert client.post("/v1/networks", json={"name": "hand", "tenant": "lab"}).status_code == 201
    r = client.post("/v1/apply?set=lab&prune=true&force=true", json={})
    assert r.status_code == 200, r.json()
    assert {(c["action"], c["name"]) for c in r.json()["changes"]} == {("detach", "lab-1/pad/42"),
                                                                         ("delete", "lab-1")}
    assert r.json()["prune"]["forced"] is True
    names = {n["name"] for n in client.get("/v1/networks").json()}
    assert names == {"cust-42", "cust-43", "hand"}  # the default set's and the hand-made one stay


def test_the_guard_answers_409_with_the_counts(client: Any, seeded: Manager, snapshot: Snapshot) -> None:
    before = snapshot()
    r = client.post("/v1/apply?prune=true", json={})
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "prune_refused" and body["field"] == "prune"
    assert ("refused for apply set 'default': it would delete 19 objects (5 attachments, 2 networks, "
            "4 interface groups, 4 gateways, 4 silos) and the file declares nothing") in body["message"]
    assert snapshot() == before
    small = example()
    small["networks"] = []
    r = client.post("/v1/apply?prune=true", json=small)  # 7 deletions, 12 objects declared: allowed
    assert r.status_code == 200 and r.json()["prune"]["deletes"] == {"attachment": 5, "network": 2}
    assert r.json()["prune"]["refused"] is False and r.json()["prune"]["forced"] is False
    silos = {"silos": small["silos"]}
    r = client.post("/v1/apply?prune=true", json=silos)
    assert r.status_code == 409
    assert "8 objects (4 interface groups, 4 gateways), more than the 4 the file declares" in r.json()["message"]
    r = client.post("/v1/apply?prune=true&force=true", json=silos)
    assert r.status_code == 200 and r.json()["prune"]["forced"] is True
    assert client.get("/v1/gateways").json() == [] and len(client.get("/v1/silos").json()) == 4


def test_dry_run_prune_lists_and_writes_nothing(client: Any, seeded: Manager, snapshot: Snapshot) -> None:
    before = snapshot()
    r = client.post("/v1/apply?prune=true&dry_run=true", json={})
    assert r.status_code == 200
    out = r.json()
    assert out["dry_run"] is True and out["prune"]["refused"] is True and out["prune"]["declared"] == 0
    assert len(out["changes"]) == 19 and {c["action"] for c in out["changes"]} == {"delete", "detach"}
    assert snapshot() == before


def test_changes_carry_their_fields_and_warnings(client: Any, seeded: Manager) -> None:
    topo = example()
    topo["networks"][0]["vni"] = 5100
    r = client.post("/v1/apply?dry_run=true", json=topo)
    assert r.status_code == 200
    assert r.json()["changes"] == [{"action": "update", "kind": "network", "name": "cust-42",
                                    "fields": {"vni": [5000, 5100]}}]
    assert len(r.json()["warnings"]) == 1 and "its VNI changes 5000 -> 5100" in r.json()["warnings"][0]


def test_a_bad_set_name_is_a_422(client: Any, seeded: Manager, snapshot: Snapshot) -> None:
    before = snapshot()
    for bad in ("-x", "a/b", "x" * 65, ""):
        r = client.post("/v1/apply", params={"set": bad}, json={})
        assert r.status_code == 422 and r.json()["field"] == "set", (bad, r.json())
    assert snapshot() == before
