"""Credentials references on writes: a reference outside the fence (``env:`` other than
``SILONET_SECRET_*``, a path outside the secrets directory) is a 422 naming the field and the
rule, the same whether the path exists or not, and writes nothing. A gateway stored with such a
reference before the fence still loads, lists and re-applies unchanged; connecting it fails with
the rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.drivers.ssh import credentials
from silonet.errors import DeviceError, InvalidInput
from silonet.model import rules
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.store.db import Database
from silonet.store.tables import GatewayRow, GatewayStatusRow, PortRow
from tests.conftest import ADMIN, ADMIN_TOKEN


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    d = tmp_path / "secrets"
    d.mkdir(mode=0o700)
    return d


def _manager(db: Database, secrets: Path) -> Manager:
    return Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010), admin_token=ADMIN_TOKEN,
                                secrets_dir=secrets))


@pytest.fixture
def client(db: Database, secrets: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_manager(db, secrets)), headers=ADMIN) as c:
        yield c


def _gateway(name: str, ref: str, i: int = 1) -> dict[str, Any]:
    return {"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
            "management": {"driver": "ssh", "dialect": "vtepctl", "address": f"admin@198.18.1.{i}:22",
                           "credentials": ref}}


def test_references_outside_the_fence_are_refused(client: TestClient, snapshot, secrets: Path,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    exists = tmp_path / "key-outside"
    exists.write_text("x")
    before = snapshot()
    said: dict[str, str] = {}
    for ref in ("env:SILONET_DB_PASSWORD", "env:SILONET_ADMIN_TOKEN", "file:/etc/shadow", "/etc/shadow",
                f"file:{exists}", f"file:{tmp_path}/no-such-key", f"file:{secrets}/../key-outside"):
        r = client.post("/v1/gateways", json=_gateway("gw-a", ref))
        assert r.status_code == 422, (ref, r.text)
        body = r.json()
        assert (body["error"], body["field"]) == ("invalid", "management.credentials"), body
        said[ref] = body["message"]
    assert snapshot() == before
    for ref in ("env:SILONET_DB_PASSWORD", "env:SILONET_ADMIN_TOKEN"):
        assert said[ref] == f"management.credentials: {rules.SECRET_ENV_RULE}"
    files = {m for ref, m in said.items() if not ref.startswith("env:")}
    assert files == {f"management.credentials: {rules.secret_file_rule(secrets)}"}  # exists or not: one answer
    assert str(secrets) in files.pop()


def test_references_inside_the_fence_are_stored_without_looking_at_the_file(client: TestClient,
                                                                             secrets: Path) -> None:
    for i, ref in enumerate(("env:SILONET_SECRET_GW_A", f"file:{secrets}/gw-b.key", f"{secrets}/lab-sn/id"), 1):
        r = client.post("/v1/gateways", json=_gateway(f"gw-{i}", ref, i))
        assert r.status_code == 201, r.text
        assert r.json()["management"]["credentials"] == ref


def test_apply_names_the_gateway_and_the_rule(client: TestClient, snapshot, secrets: Path) -> None:  # type: ignore[no-untyped-def]
    before = snapshot()
    r = client.post("/v1/apply", json={"gateways": [_gateway("gw-ok", "env:SILONET_SECRET_OK", 1),
                                                     _gateway("gw-bad", "file:/root/.ssh/id_ed25519", 2)]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "gateways[gw-bad].management.credentials"
    assert r.json()["message"].endswith(rules.secret_file_rule(secrets))
    assert snapshot() == before


def _store_old_gateway(db: Database, name: str, ref: str) -> None:
    """A row as an older silonet wrote it, before the fence (straight into the tables)."""
    with db.engine.begin() as conn:
        gid = conn.execute(insert(GatewayRow).values(
            name=name, vtep_ip="198.18.0.7", driver="ssh", address="admin@198.18.1.7:22", dialect="vtepctl",
            credentials_ref=ref, trust_on_first_use=False, capacity=4096).returning(GatewayRow.id)).scalar_one()
        conn.execute(insert(PortRow).values(gateway_id=gid, name="p1", switchback=False))
        conn.execute(insert(GatewayStatusRow).values(gateway_id=gid, desired_generation=0, realized_generation=0))


@pytest.mark.parametrize("ref", ["env:SILONET_DB_PASSWORD", "file:/etc/shadow"])
def test_a_gateway_stored_before_the_fence_still_loads(db: Database, secrets: Path, ref: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _store_old_gateway(db, "gw-old", ref)
    manager = _manager(db, secrets)
    assert [g.name for g in manager.list_gateways()] == ["gw-old"]
    assert manager.get_gateway("gw-old").management.credentials == ref
    with TestClient(create_app(manager), headers=ADMIN) as c:
        shown = c.get("/v1/gateways/gw-old").json()
        assert shown["management"]["credentials"] == ref
        assert shown["violations"] == [f"management.credentials: {rules.credentials_violation(ref, secrets)}"]
    # re-applying it unchanged is no write; changing it is one, and follows the fence
    old = _gateway("gw-old", ref, 7)
    adopted = manager.apply(S.Topology.model_validate({"gateways": [old]})).changes
    assert [(c.kind, c.fields) for c in adopted] == [("gateway", {"apply_set": (None, "default")})]  # ownership only
    changed = {**old, "ports": [{"name": "p1"}, {"name": "p2"}]}
    with pytest.raises(InvalidInput) as err:
        manager.apply(S.Topology.model_validate({"gateways": [changed]}))
    assert err.value.field == "gateways[gw-old].management.credentials"
    # connecting it fails with the rule the reference breaks (the driver's own check)
    monkeypatch.setenv("SILONET_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("SILONET_DB_PASSWORD", "pw-of-the-database")
    with pytest.raises(DeviceError) as refused:
        credentials.resolve(ref, "gw-old")
    assert refused.value.fields["reason"] == f"credentials: {rules.credentials_violation(ref, secrets)}"
