"""Where the CLI's operations go: the local store (default) or a server (``--server``).

Both return the API's JSON shapes, so the renderers do not care which one answered.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from silonet.errors import SilonetError
from silonet.service import schemas as S

COLLECTIONS = {
    "silo": "silos",
    "gateway": "gateways",
    "group": "interface-groups",
    "network": "networks",
}


class RemoteError(SilonetError):
    """An error body the server sent back, or no answer at all."""

    code = "remote"
    template = "{message}"


class Backend(Protocol):
    def create(self, kind: str, body: dict) -> Any: ...
    def list(self, kind: str) -> Any: ...
    def get(self, kind: str, name: str) -> Any: ...
    def delete(self, kind: str, name: str, cascade: bool = False) -> None: ...
    def attach(self, network: str, group: str, vlan: int, wait: float | None) -> Any: ...
    def detach(self, network: str, group: str, vlan: int, wait: float | None) -> None: ...
    def plan(self, gateway: str | None) -> Any: ...
    def status(self, gateway: str | None) -> Any: ...
    def audit(self, limit: int) -> Any: ...
    def attachments(self, limit: int, cursor: str | None, network: str | None, group: str | None) -> Any: ...
    def apply(self, topology: S.Topology, prune: bool, dry_run: bool, wait: float | None = None) -> Any: ...
    def token_create(self, role: str, tenant: str | None, description: str) -> Any: ...
    def token_list(self) -> Any: ...
    def token_revoke(self, token_id: int) -> None: ...


def _json(model: Any) -> Any:
    if isinstance(model, list):
        return [m.model_dump(mode="json") for m in model]
    return model.model_dump(mode="json")


class LocalBackend:
    """Calls the service layer on the local database (migrated on first use)."""

    def __init__(self) -> None:
        from silonet.config import Settings
        from silonet.service import Manager
        from silonet.store.db import Database

        settings = Settings()
        db = Database(settings.database_url)
        db.upgrade()
        self.m = Manager(db, settings)
        m = self.m
        self._ops = {
            "silo": (S.SiloIn, m.create_silo, m.list_silos, m.get_silo, m.delete_silo),
            "gateway": (S.GatewayIn, m.create_gateway, m.list_gateways, m.get_gateway, m.delete_gateway),
            "group": (S.GroupIn, m.create_group, m.list_groups, m.get_group, m.delete_group),
            "network": (S.NetworkIn, m.create_network, m.list_networks, m.get_network, m.delete_network),
        }

    def create(self, kind: str, body: dict) -> Any:
        model, create, *_ = self._ops[kind]
        return _json(create(S.validate(model, body)))

    def list(self, kind: str) -> Any:
        return _json(self._ops[kind][2]())

    def get(self, kind: str, name: str) -> Any:
        return _json(self._ops[kind][3](name))

    def delete(self, kind: str, name: str, cascade: bool = False) -> None:
        if kind == "network":
            self.m.delete_network(name, cascade=cascade)
        else:
            self._ops[kind][4](name)

    def attach(self, network: str, group: str, vlan: int, wait: float | None) -> Any:
        out = self.m.attach(network, S.validate(S.AttachmentIn, {"interface_group": group, "vlan": vlan}))
        if wait:
            self.m.wait([g.gateway for g in out.gateways], out.generation, wait)
            out = self.m.get_attachment(network, group, vlan)
        return _json(out)

    def detach(self, network: str, group: str, vlan: int, wait: float | None) -> None:
        gateways, generation = self.m.detach(network, group, vlan)
        if wait:
            self.m.wait(gateways, generation, wait)

    def plan(self, gateway: str | None) -> Any:
        return _json(self.m.plan(gateway))

    def status(self, gateway: str | None) -> Any:
        return _json(self.m.gateway_status(gateway) if gateway else self.m.statuses())

    def audit(self, limit: int) -> Any:
        return _json(self.m.audit(limit))

    def attachments(self, limit: int, cursor: str | None, network: str | None, group: str | None) -> Any:
        from silonet.service.listing import list_attachments_page

        with self.m.db.read() as s:
            return _json(list_attachments_page(s, limit, cursor, network=network, interface_group=group))

    def apply(self, topology: S.Topology, prune: bool, dry_run: bool, wait: float | None = None) -> Any:
        out = self.m.apply(topology, prune=prune, dry_run=dry_run)
        if wait and out.gateways:
            out.status = self.m.wait(out.gateways, out.generation, wait)
        return _json(out)

    # The local store is the admin's own: whoever can write the database file is admin.
    def token_create(self, role: str, tenant: str | None, description: str) -> Any:
        from silonet.service.auth import Tokens

        body = S.validate(S.TokenIn, {"role": role, "tenant": tenant, "description": description})
        info, secret = Tokens(self.m.db).create(body.role, body.tenant, body.description, "admin")
        return {**info.model_dump(mode="json"), "token": secret}

    def token_list(self) -> Any:
        from silonet.service.auth import Tokens

        return [t.model_dump(mode="json") for t in Tokens(self.m.db).list()]

    def token_revoke(self, token_id: int) -> None:
        from silonet.service.auth import Tokens

        Tokens(self.m.db).revoke(token_id, "admin")


class RemoteBackend:
    """Talks to ``silonet serve`` over HTTP."""

    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise RemoteError(message=f"cannot reach the server at {self.http.base_url}: {err}") from None
        if r.status_code >= 400:
            field = None
            try:
                body = r.json()
                msg, field = body.get("message") or r.text, body.get("field")
            except (ValueError, AttributeError):
                msg = r.text or r.reason_phrase
            raise RemoteError(field=field, message=f"{msg} (HTTP {r.status_code})")
        return None if r.status_code == 204 else r.json()

    def create(self, kind: str, body: dict) -> Any:
        return self._call("POST", f"/v1/{COLLECTIONS[kind]}", json=body)

    def list(self, kind: str) -> Any:
        return self._call("GET", f"/v1/{COLLECTIONS[kind]}")

    def get(self, kind: str, name: str) -> Any:
        return self._call("GET", f"/v1/{COLLECTIONS[kind]}/{name}")

    def delete(self, kind: str, name: str, cascade: bool = False) -> None:
        params = {"cascade": "true"} if cascade else {}
        self._call("DELETE", f"/v1/{COLLECTIONS[kind]}/{name}", params=params)

    def _wait(self, wait: float | None) -> dict:
        return {"wait": wait} if wait else {}

    def attach(self, network: str, group: str, vlan: int, wait: float | None) -> Any:
        body = {"interface_group": group, "vlan": vlan}
        return self._call("POST", f"/v1/networks/{network}/attachments", json=body, params=self._wait(wait))

    def detach(self, network: str, group: str, vlan: int, wait: float | None) -> None:
        self._call("DELETE", f"/v1/networks/{network}/attachments/{group}/{vlan}", params=self._wait(wait))

    def plan(self, gateway: str | None) -> Any:
        return self._call("GET", "/v1/plan", params={"gateway": gateway} if gateway else {})

    def status(self, gateway: str | None) -> Any:
        return self._call("GET", f"/v1/gateways/{gateway}/status" if gateway else "/v1/status")

    def audit(self, limit: int) -> Any:
        return self._call("GET", "/v1/audit", params={"limit": limit})

    def attachments(self, limit: int, cursor: str | None, network: str | None, group: str | None) -> Any:
        params = {"limit": limit, "cursor": cursor, "network": network, "interface_group": group}
        return self._call("GET", "/v1/attachments", params={k: v for k, v in params.items() if v is not None})

    def apply(self, topology: S.Topology, prune: bool, dry_run: bool, wait: float | None = None) -> Any:
        params = {"prune": str(prune).lower(), "dry_run": str(dry_run).lower(), **self._wait(wait)}
        return self._call("POST", "/v1/apply", json=topology.model_dump(mode="json"), params=params)

    def token_create(self, role: str, tenant: str | None, description: str) -> Any:
        body = {"role": role, "tenant": tenant, "description": description}
        return self._call("POST", "/v1/tokens", json={k: v for k, v in body.items() if v is not None})

    def token_list(self) -> Any:
        return self._call("GET", "/v1/tokens")

    def token_revoke(self, token_id: int) -> None:
        self._call("DELETE", f"/v1/tokens/{token_id}")
