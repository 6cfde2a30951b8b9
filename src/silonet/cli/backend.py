"""Where the CLI's operations go: the local store (default) or a server (``--server``).

Both return the API's JSON shapes, so the renderers do not care which one answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from silonet.errors import InvalidInput, SilonetError
from silonet.service import schemas as S

if TYPE_CHECKING:
    import httpx

    from silonet.store.db import Database

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


def open_database(url: str) -> Database:
    """The local store, migrated; a URL that names no database silonet can open is one error line
    naming SILONET_DATABASE_URL, not a traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from silonet.store.db import Database

    try:
        db = Database(url)
    except ArgumentError as err:  # NoSuchModuleError too: an unknown scheme
        raise InvalidInput(field="SILONET_DATABASE_URL", rule=f"not a database URL silonet can use ({err})"
                           ) from None
    try:
        db.upgrade()
    except (OperationalError, OSError) as err:
        db.dispose()
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise InvalidInput(field="SILONET_DATABASE_URL",
                           rule=f"cannot open {make_url(url).render_as_string(hide_password=True)}: {reason}"
                           ) from None
    return db


def _foreign(r: httpx.Response) -> str:
    """An answer that is not silonet's JSON (another program on that port, a proxy's error page):
    one line that says so, not the page's HTML."""
    kind = r.headers.get("content-type", "no content type").split(";")[0]
    return (f"{r.request.method} {r.request.url} answered {r.status_code} {r.reason_phrase} with {kind}, not "
            "silonet's JSON: is that a silonet server?")


class Backend(Protocol):
    def create(self, kind: str, body: dict) -> Any: ...
    def list(self, kind: str) -> Any: ...
    def get(self, kind: str, name: str) -> Any: ...
    def delete(self, kind: str, name: str, cascade: bool = False) -> None: ...
    def delete_gateway(self, name: str, force: bool, wait: float | None) -> Any: ...
    def patch_gateway(self, name: str, patch: dict) -> Any: ...
    def attach(self, network: str, group: str, vlan: int, wait: float | None) -> Any: ...
    def detach(self, network: str, group: str, vlan: int, wait: float | None) -> dict | None: ...
    def delete_network(self, name: str, cascade: bool, wait: float | None) -> dict | None: ...
    def plan(self, gateway: str | None) -> Any: ...
    def status(self, gateway: str | None) -> Any: ...
    def audit(self, limit: int) -> Any: ...
    def attachments(self, limit: int, cursor: str | None, network: str | None, group: str | None) -> Any: ...
    def apply(self, topology: S.Topology, prune: bool, dry_run: bool, wait: float | None = None,
              apply_set: str | None = None, force: bool = False) -> Any: ...
    def export(self, apply_set: str | None) -> Any: ...
    def token_create(self, role: str, tenant: str | None, description: str) -> Any: ...
    def token_list(self) -> Any: ...
    def token_revoke(self, token_id: int) -> None: ...
    def tenant_create(self, body: dict) -> Any: ...
    def tenant_list(self) -> Any: ...
    def tenant_get(self, name: str) -> Any: ...
    def tenant_patch(self, name: str, patch: dict) -> Any: ...
    def tenant_delete(self, name: str) -> None: ...
    def webhook_create(self, body: dict) -> Any: ...
    def webhook_list(self) -> Any: ...
    def webhook_delete(self, webhook_id: int) -> None: ...
    def webhook_deliveries(self, webhook_id: int, limit: int, before: int | None) -> Any: ...


def _json(model: Any) -> Any:
    if isinstance(model, list):
        return [m.model_dump(mode="json") for m in model]
    return model.model_dump(mode="json")


class LocalBackend:
    """Calls the service layer on the local database (migrated on first use)."""

    def __init__(self) -> None:
        from silonet.config import Settings
        from silonet.runtime import Runtime
        from silonet.service import Manager

        settings = Settings()
        self.m = Manager(Runtime(open_database(settings.database_url)), settings)
        m = self.m
        self._ops = {
            "silo": (S.SiloIn, m.create_silo, m.list_silos, m.get_silo, m.delete_silo),
            "gateway": (S.GatewayIn, m.create_gateway, m.list_gateways, m.get_gateway, m.delete_gateway),
            "group": (S.GroupIn, m.create_group, m.list_groups, m.get_group, m.delete_group),
            "network": (S.NetworkIn, m.create_network, m.list_networks, m.get_network, m.delete_network),
        }

    def where(self) -> str:
        """The store, as a person finds it: the SQLite file's path, else the URL without password."""
        from sqlalchemy.engine import make_url

        url = make_url(self.m.db.url)
        if url.get_backend_name() == "sqlite" and url.database:
            return url.database
        return url.render_as_string(hide_password=True)

    def empty(self) -> bool:
        """Nothing in the inventory (tokens aside): what a forgotten `silonet login` looks like."""
        return self.m.empty()

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

    def delete_gateway(self, name: str, force: bool, wait: float | None) -> Any:
        """None: gone; the state while decommissioning; what may be left when forgotten without cleaning."""
        out = self.m.delete_gateway(name, force=force)
        if isinstance(out, S.RealizationOut) and wait:
            out = self.m.settle_gateway(name, wait)
        return None if out is None else _json(out)

    def patch_gateway(self, name: str, patch: dict) -> Any:
        """A JSON merge patch of the gateway (``{"mode": "observe"}``): the gateway as it is then."""
        return _json(self.m.patch_gateway(name, patch))

    def attach(self, network: str, group: str, vlan: int, wait: float | None) -> Any:
        out = self.m.attach(network, S.validate(S.AttachmentIn, {"interface_group": group, "vlan": vlan}))
        if wait:
            out = self.m.settle(out, wait)
        return _json(out)

    def detach(self, network: str, group: str, vlan: int, wait: float | None) -> dict | None:
        """After a wait, the status it reached (``{"status", "reason"}``), as the API's headers say it."""
        gateways, generation = self.m.detach(network, group, vlan)
        if not wait:
            return None
        verdict = self.m.wait_verdict(gateways, generation, wait, self.m.group_gateways(group))
        return {"status": verdict.status, "reason": verdict.reason}

    def delete_network(self, name: str, cascade: bool, wait: float | None) -> dict | None:
        gateways, generation = self.m.delete_network(name, cascade=cascade)
        if not wait:
            return None
        verdict = self.m.wait_verdict(gateways, generation, wait)
        return {"status": verdict.status, "reason": verdict.reason}

    def plan(self, gateway: str | None) -> Any:
        return _json(self.m.plan(gateway))

    def status(self, gateway: str | None) -> Any:
        return _json(self.m.gateway_status(gateway) if gateway else self.m.statuses())

    def audit(self, limit: int) -> Any:
        return _json(self.m.audit(limit))

    def attachments(self, limit: int, cursor: str | None, network: str | None, group: str | None) -> Any:
        return _json(self.m.attachments_page(limit, cursor, network=network, interface_group=group))

    def apply(self, topology: S.Topology, prune: bool, dry_run: bool, wait: float | None = None,
              apply_set: str | None = None, force: bool = False) -> Any:
        out = self.m.apply(topology, prune=prune, dry_run=dry_run, apply_set=apply_set, force=force)
        if wait and out.gateways:
            from silonet.plan.status import counted

            verdict = self.m.wait_verdict(out.gateways, out.generation, wait)
            out.status, out.reason = verdict.status, counted(verdict, len(out.gateways))
        return _json(out)

    def export(self, apply_set: str | None) -> Any:
        from silonet.service.export import export_topology

        return export_topology(self.m, apply_set)

    # The local store is the admin's own: whoever can write the database file is admin.
    def token_create(self, role: str, tenant: str | None, description: str) -> Any:
        body = S.validate(S.TokenIn, {"role": role, "tenant": tenant, "description": description})
        info, secret = self.m.tokens.create(body.role, body.tenant, body.description, "admin")
        return {**info.model_dump(mode="json"), "token": secret}

    def token_list(self) -> Any:
        return [t.model_dump(mode="json") for t in self.m.tokens.list()]

    def token_revoke(self, token_id: int) -> None:
        self.m.tokens.revoke(token_id, "admin")

    def events(self, after: int | None, limit: int | None, timeout: float | None) -> Any:
        from silonet.cli import events

        return events.local(self.m, after, limit, timeout)

    def tenant_create(self, body: dict) -> Any:  # tenants' contracts (service/tenants.py): the admin's, too
        from silonet.service import tenants

        return _json(tenants.create(self.m, S.validate(tenants.TenantIn, body), "admin"))

    def tenant_list(self) -> Any:
        from silonet.service import tenants

        return _json(tenants.list_(self.m))

    def tenant_get(self, name: str) -> Any:
        from silonet.service import tenants

        return _json(tenants.get(self.m, name))

    def tenant_patch(self, name: str, patch: dict) -> Any:
        from silonet.service import tenants

        return _json(tenants.patch(self.m, name, patch, "admin"))

    def tenant_delete(self, name: str) -> None:
        from silonet.service import tenants

        tenants.delete_(self.m, name, "admin")

    def webhook_create(self, body: dict) -> Any:  # webhooks (service/webhooks.py): the local store's admin's
        from silonet.service import webhooks

        return _json(webhooks.create(self.m, S.validate(webhooks.WebhookIn, body), "admin"))

    def webhook_list(self) -> Any:
        from silonet.service import webhooks

        return _json(webhooks.list_(self.m))

    def webhook_delete(self, webhook_id: int) -> None:
        from silonet.service import webhooks

        webhooks.delete_(self.m, webhook_id, "admin")

    def webhook_deliveries(self, webhook_id: int, limit: int, before: int | None) -> Any:
        from silonet.service import webhooks

        return _json(webhooks.deliveries(self.m, webhook_id, limit, before))


def _tls(server: str) -> Any:
    """The TLS check for ``server``: httpx's default (its CA bundle) for https://; for http://, a
    context that trusts no certificate, so nothing is sent over an https:// hop there unchecked.
    Loading the bundle for a server that speaks no TLS took ~0.1 s of every CLI call."""
    import ssl
    from urllib.parse import urlsplit

    return True if urlsplit(server).scheme.lower() == "https" else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class RemoteBackend:
    """Talks to ``silonet serve`` over HTTP."""

    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        import httpx  # the remote path only: the local store's commands start without it

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout, verify=_tls(server))

    def events(self, after: int | None, limit: int | None, timeout: float | None) -> Any:
        from silonet.cli import events

        def error(r: Any) -> Exception:
            try:
                self._raise(r)
            except RemoteError as err:
                return err
            return RemoteError(message=f"{_foreign(r)} (HTTP {r.status_code})")

        return events.remote(self.http, after, limit, timeout, error)

    def _call(self, method: str, path: str, answered: list[httpx.Response] | None = None, **kw: Any) -> Any:
        """``answered``: gets the response too (for its headers)."""
        import httpx

        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise RemoteError(message=f"cannot reach the server at {self.http.base_url}: {err}") from None
        if answered is not None:
            answered.append(r)
        self._raise(r)
        if r.status_code == 204:
            return None
        try:
            return r.json()
        except ValueError:
            raise RemoteError(message=f"{_foreign(r)} (HTTP {r.status_code})") from None

    @staticmethod
    def _raise(r: Any) -> None:
        """A 4xx/5xx answer as the RemoteError naming its field and every problem."""
        if r.status_code < 400:
            return
        field, more = None, []
        try:
            body = r.json()
            msg, field = body.get("message") or r.text, body.get("field")
            more = [RemoteError(field=p.get("field"), message=str(p.get("message")))
                    for p in (body.get("problems") or [])[1:] if isinstance(p, dict)]
        except (ValueError, AttributeError):
            msg = _foreign(r)
        raise RemoteError(field=field, message=f"{msg} (HTTP {r.status_code})").with_more(more)

    def create(self, kind: str, body: dict) -> Any:
        return self._call("POST", f"/v1/{COLLECTIONS[kind]}", json=body)

    def list(self, kind: str) -> Any:
        return self._call("GET", f"/v1/{COLLECTIONS[kind]}")

    def get(self, kind: str, name: str) -> Any:
        return self._call("GET", f"/v1/{COLLECTIONS[kind]}/{name}")

    def delete(self, kind: str, name: str, cascade: bool = False) -> None:
        params = {"cascade": "true"} if cascade else {}
        self._call("DELETE", f"/v1/{COLLECTIONS[kind]}/{name}", params=params)

    def delete_gateway(self, name: str, force: bool, wait: float | None) -> Any:
        params = {**({"force": "true"} if force else {}), **self._wait(wait)}
        return self._call("DELETE", f"/v1/gateways/{name}", params=params, timeout=(wait or 0) + 30)

    def patch_gateway(self, name: str, patch: dict) -> Any:
        return self._call("PATCH", f"/v1/gateways/{name}", json=patch,
                          headers={"Content-Type": "application/merge-patch+json"})

    def _wait(self, wait: float | None) -> dict:
        return {"wait": wait} if wait else {}

    def attach(self, network: str, group: str, vlan: int, wait: float | None) -> Any:
        body = {"interface_group": group, "vlan": vlan}
        return self._call("POST", f"/v1/networks/{network}/attachments", json=body, params=self._wait(wait),
                          timeout=(wait or 0) + 30)

    def detach(self, network: str, group: str, vlan: int, wait: float | None) -> dict | None:
        return self._waited(f"/v1/networks/{network}/attachments/{group}/{vlan}", {}, wait)

    def delete_network(self, name: str, cascade: bool, wait: float | None) -> dict | None:
        return self._waited(f"/v1/networks/{name}", {"cascade": "true"} if cascade else {}, wait)

    def _waited(self, path: str, params: dict, wait: float | None) -> dict | None:
        """A DELETE; after a wait, the status it reached (the 204's Silonet-Status and -Reason headers)."""
        answer: list[httpx.Response] = []
        self._call("DELETE", path, answer, params={**params, **self._wait(wait)}, timeout=(wait or 0) + 30)
        status = answer[0].headers.get("silonet-status") if answer and wait else None
        if status is None:
            return None
        reason = answer[0].headers.get("silonet-reason")
        return {"status": status, "reason": None if reason is None else unquote(reason)}

    def plan(self, gateway: str | None) -> Any:
        return self._call("GET", "/v1/plan", params={"gateway": gateway} if gateway else {})

    def status(self, gateway: str | None) -> Any:
        return self._call("GET", f"/v1/gateways/{gateway}/status" if gateway else "/v1/status")

    def audit(self, limit: int) -> Any:
        return self._call("GET", "/v1/audit", params={"limit": limit})

    def attachments(self, limit: int, cursor: str | None, network: str | None, group: str | None) -> Any:
        params = {"limit": limit, "cursor": cursor, "network": network, "interface_group": group}
        return self._call("GET", "/v1/attachments", params={k: v for k, v in params.items() if v is not None})

    def apply(self, topology: S.Topology, prune: bool, dry_run: bool, wait: float | None = None,
              apply_set: str | None = None, force: bool = False) -> Any:
        params = {"prune": str(prune).lower(), "dry_run": str(dry_run).lower(), "force": str(force).lower(),
                  **({"set": apply_set} if apply_set else {}), **self._wait(wait)}
        return self._call("POST", "/v1/apply", json=topology.model_dump(mode="json"), params=params,
                          timeout=(wait or 0) + 30)

    def export(self, apply_set: str | None) -> Any:
        return self._call("GET", "/v1/export", params={"set": apply_set} if apply_set else {})

    def token_create(self, role: str, tenant: str | None, description: str) -> Any:
        body = {"role": role, "tenant": tenant, "description": description}
        return self._call("POST", "/v1/tokens", json={k: v for k, v in body.items() if v is not None})

    def token_list(self) -> Any:
        return self._call("GET", "/v1/tokens")

    def token_revoke(self, token_id: int) -> None:
        self._call("DELETE", f"/v1/tokens/{token_id}")

    def tenant_create(self, body: dict) -> Any:
        return self._call("POST", "/v1/tenants", json=body)

    def tenant_list(self) -> Any:
        return self._call("GET", "/v1/tenants")

    def tenant_get(self, name: str) -> Any:
        return self._call("GET", f"/v1/tenants/{name}")

    def tenant_patch(self, name: str, patch: dict) -> Any:
        return self._call("PATCH", f"/v1/tenants/{name}", json=patch,
                          headers={"Content-Type": "application/merge-patch+json"})

    def tenant_delete(self, name: str) -> None:
        self._call("DELETE", f"/v1/tenants/{name}")

    def webhook_create(self, body: dict) -> Any:
        return self._call("POST", "/v1/webhooks", json=body)

    def webhook_list(self) -> Any:
        return self._call("GET", "/v1/webhooks")

    def webhook_delete(self, webhook_id: int) -> None:
        self._call("DELETE", f"/v1/webhooks/{webhook_id}")

    def webhook_deliveries(self, webhook_id: int, limit: int, before: int | None) -> Any:
        params = {"limit": limit, **({"before": before} if before is not None else {})}
        return self._call("GET", f"/v1/webhooks/{webhook_id}/deliveries", params=params)
