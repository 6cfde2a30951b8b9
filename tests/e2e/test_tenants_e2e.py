"""A tenant held to its contract, end to end: a real `silonet serve` process (its reconciler driving
in-memory gateways) and a tenant token through the API and the CLI: a network takes its VNI from the
pool, an attachment to a granted group is realized on the gateways, and a forbidden group, a VNI
outside the pool and every quota are refused (403 naming the rule) with nothing realized for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from silonet.bench.fleet import Server
from tests.support.cli import silonet

pytestmark = pytest.mark.slow

TOPOLOGY = {
    "silos": [{"name": "s1"}, {"name": "s2"}],
    "gateways": [{"name": f"gw{i}", "silo": f"s{i}", "vtep_ip": f"198.18.7.{i}", "management": {"driver": "memory"},
                  "ports": [{"name": "p1"}, {"name": "p2"}]} for i in (1, 2)],
    "interface_groups": [{"name": "g1", "silo": "s1", "members": [{"gateway": "gw1", "port": "p1"}]},
                         {"name": "g2", "silo": "s2", "members": [{"gateway": "gw2", "port": "p1"}]},
                         {"name": "g3", "silo": "s1", "members": [{"gateway": "gw1", "port": "p2"}]}],
}
ACME = {"name": "acme", "interface_groups": ["g1", "g2"], "vni_pool": {"first": 50000, "last": 50001},
        "max_networks": 2, "max_attachments": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("tenants-e2e") / "server", period=5.0).start()
    try:
        yield s
    finally:
        s.stop()


def refused(r: httpx.Response, field: str, words: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden" and r.json()["field"] == field and words in r.json()["message"], r.json()


def test_a_tenant_token_held_to_its_contract(server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as admin:
        assert admin.post("/v1/apply", json=TOPOLOGY).status_code == 200
        assert admin.post("/v1/tenants", json=ACME).status_code == 201
        token = admin.post("/v1/tokens", json={"role": "tenant", "tenant": "acme"}).json()["token"]
        acme = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

        n1 = acme.post("/v1/networks", json={"name": "n1", "tenant": "acme"})
        assert n1.status_code == 201 and n1.json()["vni"] == 50000, n1.text
        a = acme.post("/v1/networks/n1/attachments?wait=30", json={"interface_group": "g1", "vlan": 100})
        assert a.status_code == 201 and a.json()["status"] == "realized", a.text
        a = acme.post("/v1/networks/n1/attachments?wait=30", json={"interface_group": "g2", "vlan": 200})
        assert a.status_code == 201 and a.json()["status"] == "realized", a.text
        assert {g["gateway"]: g["status"] for g in a.json()["gateways"]} == {"gw1": "realized", "gw2": "realized"}

        refused(acme.post("/v1/networks/n1/attachments?wait=5", json={"interface_group": "g3", "vlan": 300}),
                "interface_group", "tenant 'acme' is not granted interface group 'g3' (its interface_groups: g1, g2)")
        refused(acme.post("/v1/networks/n1/attachments", json={"interface_group": "g1", "vlan": 101}),
                "max_attachments", "at most 2 attachment(s) (its max_attachments) and holds 2")
        refused(acme.post("/v1/networks", json={"name": "n2", "tenant": "acme", "vni": 7}),
                "vni", "VNI 7 is outside the VNI pool 50000-50001 of tenant 'acme'")
        n2 = acme.post("/v1/networks", json={"name": "n2", "tenant": "acme"})
        assert n2.status_code == 201 and n2.json()["vni"] == 50001, n2.text
        refused(acme.post("/v1/networks", json={"name": "n3", "tenant": "acme"}),
                "max_networks", "at most 2 network(s) (its max_networks) and holds 2")

        # the CLI against the server with the tenant's token: the same refusals, one line each, exit 1
        env = {"SILONET_SERVER": server.url, "SILONET_TOKEN": token}
        p = silonet(tmp_path / "cli", "attach", "n2", "g3", "5", **env)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 1 and len(lines) == 2, p.stderr
        assert lines[0].startswith("error: interface_group: tenant 'acme' is not granted interface group 'g3'")
        assert lines[0].endswith("(HTTP 403)")
        assert lines[1].startswith("error: max_attachments: tenant 'acme' may hold at most 2 attachment(s)")
        p = silonet(tmp_path / "cli", "tenant", "show", "acme", "--json", **env)
        assert p.returncode == 0, p.stderr
        assert '"networks": 2' in p.stdout and '"attachments": 2' in p.stdout
        p = silonet(tmp_path / "cli", "tenant", "patch", "acme", '{"max_networks": 9}', **env)
        assert p.returncode == 1 and "needs an admin token (this token is tenant 'acme')" in p.stderr

        # what was refused was never realized: the gateways carry the two attachments and nothing else
        assert acme.get("/v1/tenants/acme").json()["use"] == {"networks": 2, "attachments": 2}
        assert acme.get("/v1/tenants/globex").status_code == 404
        page = admin.get("/v1/attachments").json()["items"]
        assert sorted((x["interface_group"], x["vlan"], x["status"]) for x in page) == [
            ("g1", 100, "realized"), ("g2", 200, "realized")]
        bound = admin.get("/v1/gateways/gw1/status").json()["actual"]
        assert bound is not None and "'p1'" in str(bound) and "100" in str(bound), bound
        assert "'p2'" not in str(bound) and "101" not in str(bound)
        actions = [e["action"] for e in admin.get("/v1/audit?limit=100").json()]
        assert "tenant.create" in actions
        acme.close()
