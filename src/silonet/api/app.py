"""The FastAPI application: the v1 routes (README, "REST API"), each a call into the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from silonet import __version__
from silonet.api import docs, errors, gate, observe, tenants, ui
from silonet.api import events as events_api
from silonet.api import export as export_api
from silonet.api import webhooks as webhooks_api
from silonet.errors import InvalidInput
from silonet.model import rules
from silonet.plan.status import Verdict, counted
from silonet.reconcile import Reconciler
from silonet.service import Manager, listing
from silonet.service import schemas as S
from silonet.service.auth import Principal
from silonet.service.dispatch import Dispatcher
from silonet.workers import WorkerPool

NamePath = Annotated[str, Path(min_length=1, max_length=rules.NAME_MAX, pattern=f"^{rules.NAME_RE.pattern}$")]
VlanPath = Annotated[int, Path(ge=rules.VLAN_MIN, le=rules.VLAN_MAX)]
NameQuery = Annotated[str | None, Query(min_length=1, max_length=rules.NAME_MAX,
                                         pattern=f"^{rules.NAME_RE.pattern}$")]
Wait = Annotated[float | None, Query(ge=0, le=300, description=(
    "seconds to wait until the change is no longer pending (realized, degraded, held or failed); the answer "
    "carries the status reached when the wait ended (a 204 in its Silonet-Status header)"))]
ERRORS = {code: {"model": errors.ErrorBody} for code in (404, 409, 422)}
WAITS: dict[int | str, dict[str, Any]] = {429: {"model": errors.ErrorBody,
                                                "description": "too many ?wait= requests of this token in flight"}}
# a DELETE that waited answers 204 (no body): the status it reached is in these headers
STATUS_HEADER, REASON_HEADER = "Silonet-Status", "Silonet-Reason"
REASON_HEADER_MAX = 4000
WAITED: dict[int | str, dict[str, Any]] = {**WAITS, 204: {
    "description": "done; after ?wait= the headers say how far it got",
    "headers": {STATUS_HEADER: {"description": "after ?wait=: pending, realized, degraded, held or failed",
                                "schema": {"type": "string"}},
                REASON_HEADER: {"description": "after ?wait=, unless realized: which gateways and why "
                                               "(percent-encoded UTF-8)", "schema": {"type": "string"}}}}}
MERGE_PATCH = "application/merge-patch+json"  # RFC 7396 (FastAPI parses every application/*+json as JSON)
_T = TypeVar("_T")
_BEARER = HTTPBearer(auto_error=False, description="a token from SILONET_ADMIN_TOKEN or POST /v1/tokens")


async def _caller(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> Principal:
    """Every /v1 call names its caller: the one the gate verified before the body was read
    (``api.gate``); verified here only if the gate did not guard this path."""
    who = gate.principal_of(request.scope)
    if who is not None:
        return who
    header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    tokens = request.app.state.tokens
    who = tokens.cached(header)
    if who is None:  # the database is asked in a worker thread: a slow one must not stall the event loop
        who = await anyio.to_thread.run_sync(tokens.verify, header)
    return who


Caller = Annotated[Principal, Depends(_caller)]


def _waited(verdict: Verdict) -> Response:
    """A 204 after a wait: the status reached in a header, the reason (percent-encoded: device
    errors may hold any character, a header only some) in another."""
    headers = {STATUS_HEADER: verdict.status}
    if verdict.reason:
        headers[REASON_HEADER] = quote(verdict.reason[:REASON_HEADER_MAX], safe=" !\"#$&'()*+,/:;<=>?@[]^`{|}")
    return Response(status_code=204, headers=headers)


async def _in_thread(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """A service call from an async route, in a worker thread (it may block on the database)."""
    return await anyio.to_thread.run_sync(partial(call, *args, **kwargs))


class WaitSlots:
    """``?wait=`` requests in flight per token (in this process), at most ``limit`` each: one
    token cannot park an unbounded number of requests. Used on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[int | str, int] = {}

    @contextmanager
    def take(self, who: Principal, wait: float | None) -> Iterator[None]:
        """A slot while the block runs, if the request waits; 429 when the token has none left."""
        if not wait:
            yield
            return
        key = who.token_id if who.token_id is not None else who.actor
        held = self._held.get(key, 0)
        if held >= self.limit:
            raise errors.TooManyWaits(field="wait", limit=self.limit)
        self._held[key] = held + 1
        try:
            yield
        finally:
            if (left := self._held[key] - 1) > 0:
                self._held[key] = left
            else:
                del self._held[key]


def _seen_by(who: Principal, gw: S.GatewayOut) -> S.GatewayOut:
    """A tenant reads where gateways are, not how silonet reaches and logs in to them."""
    return gw if who.admin else gw.model_copy(update={"management": None})


def create_app(manager: Manager, reconciler: Reconciler | None = None, workers: WorkerPool | None = None) -> FastAPI:
    """The API; with a ``reconciler`` (or reconcile ``workers`` in processes of their own: ``silonet.workers``)
    it also drives the gateways and sends webhooks for as long as it serves."""
    if reconciler is not None and workers is not None:
        raise InvalidInput(field="workers", rule="a reconciler in this process or reconcile workers, not both")
    if reconciler is not None and reconciler.runtime is not manager.runtime:  # they would not hear each other
        raise InvalidInput(field="reconciler", rule="the manager and the reconciler share one Runtime "
                                                    "(silonet.runtime)")

    # webhooks are sent where gateways are driven (`serve --no-reconcile` serves the API only: it dials nothing)
    drives = reconciler if reconciler is not None else workers
    dispatcher = Dispatcher(manager.runtime, manager.settings) if (
        drives is not None and manager.settings.webhook_dispatch) else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pruning = asyncio.create_task(events_api.prune_forever(manager), name="events-prune")
        if drives is not None:
            await drives.start()
        if dispatcher is not None:
            await dispatcher.start()
        try:
            yield
        finally:
            if dispatcher is not None:
                await dispatcher.stop()
            pruning.cancel()
            if drives is not None:
                await drives.stop()

    app = FastAPI(
        title="silonet",
        version=__version__,
        description="Connect silo VLANs across silos through hardware VXLAN gateways.",
        responses=ERRORS,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: api.docs, from the package (no CDN)
        redoc_url=None,
    )
    errors.install(app)
    app.state.manager = manager
    app.state.reconciler = reconciler
    tokens = app.state.tokens = manager.tokens
    if manager.settings.admin_token:
        tokens.seed_admin(manager.settings.admin_token)
    app.add_middleware(gate.Gate, tokens=tokens, max_body=manager.settings.max_body_bytes)  # token, size: then the body
    # request ids, GET /metrics (outside the gate: it counts 401s too)
    observe.install(app, reconciler, _caller, workers)
    v1 = APIRouter(prefix="/v1", responses={code: {"model": errors.ErrorBody} for code in (401, 403, 413)})
    m = manager
    waits = WaitSlots(manager.settings.max_waits_per_token)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # ------------------------------------------------------------------ silos
    @v1.post("/silos", status_code=201, tags=["silos"])
    def create_silo(body: S.SiloIn, who: Caller) -> S.SiloOut:
        who.require_admin("creating a silo")
        return m.create_silo(body, actor=who.actor)

    @v1.get("/silos", tags=["silos"])
    def list_silos(who: Caller) -> list[S.SiloOut]:
        return m.list_silos()

    @v1.get("/silos/{name}", tags=["silos"])
    def get_silo(name: NamePath, who: Caller) -> S.SiloOut:
        return m.get_silo(name)

    @v1.delete("/silos/{name}", status_code=204, tags=["silos"])
    def delete_silo(name: NamePath, who: Caller) -> Response:
        who.require_admin("deleting a silo")
        m.delete_silo(name, actor=who.actor)
        return Response(status_code=204)

    # --------------------------------------------------------------- gateways
    @v1.post("/gateways", status_code=201, tags=["gateways"])
    def create_gateway(body: S.GatewayIn, who: Caller) -> S.GatewayOut:
        who.require_admin("creating a gateway")
        return m.create_gateway(body, actor=who.actor)

    @v1.get("/gateways", tags=["gateways"])
    def list_gateways(who: Caller) -> list[S.GatewayOut]:
        return [_seen_by(who, g) for g in m.list_gateways()]

    @v1.get("/gateways/{name}", tags=["gateways"])
    def get_gateway(name: NamePath, who: Caller) -> S.GatewayOut:
        return _seen_by(who, m.get_gateway(name))

    @v1.patch("/gateways/{name}", tags=["gateways"])
    def patch_gateway(
        name: NamePath,
        who: Caller,
        patch: Annotated[dict[str, Any], Body(media_type=MERGE_PATCH, description=(
            "a JSON merge patch (RFC 7396) of the gateway as created: members replace, null deletes (back to the "
            "default), lists are replaced whole; name cannot change. application/json is accepted too"))],
    ) -> S.GatewayOut:
        """Change a gateway (its mode, capacity, management, ports, vtep_ip, silo): the result is checked as a
        create is, and writes nothing when refused."""
        who.require_admin("changing a gateway")
        return m.patch_gateway(name, patch, actor=who.actor)

    @v1.get("/gateways/{name}/status", tags=["gateways"])
    def gateway_status(name: NamePath, who: Caller) -> S.GatewayStatusOut:
        who.require_admin("a gateway's status (it shows every tenant's networks)")
        return m.gateway_status(name)

    @v1.delete("/gateways/{name}", status_code=204, tags=["gateways"], responses={
        202: {"model": S.RealizationOut, "description": "decommissioning: silonet removes its configuration from "
                                                        "the device, then forgets the gateway"},
        200: {"model": S.GatewayForgottenOut, "description": "forgotten; what may be left on the device"}, **WAITS})
    async def delete_gateway(
        name: NamePath,
        who: Caller,
        force: Annotated[bool, Query(description="forget it now, even if silonet could not clean its device "
                                                 "(what may be left there is audited)")] = False,
        wait: Annotated[float | None, Query(ge=0, le=300, description="seconds to wait until it is gone")] = None,
    ) -> Response:
        """204: gone, nothing was left on the device; 202: decommissioning (the gateway's state); 200:
        forgotten without cleaning its device (``force``, or no reconciler runs): what may be left there."""
        who.require_admin("deleting a gateway")
        with waits.take(who, wait):
            out = await _in_thread(m.delete_gateway, name, force=force, actor=who.actor)
            if isinstance(out, S.RealizationOut) and wait:
                out = await m.settle_gateway_async(name, wait)
        if out is None:
            return Response(status_code=204)
        return JSONResponse(out.model_dump(mode="json"), status_code=202 if isinstance(out, S.RealizationOut) else 200)

    # -------------------------------------------------------- interface groups
    @v1.post("/interface-groups", status_code=201, tags=["interface groups"])
    def create_group(body: S.GroupIn, who: Caller) -> S.GroupOut:
        who.require_admin("creating an interface group")
        return m.create_group(body, actor=who.actor)

    @v1.get("/interface-groups", tags=["interface groups"])
    def list_groups(who: Caller) -> list[S.GroupOut]:
        return m.list_groups()

    @v1.get("/interface-groups/{name}", tags=["interface groups"])
    def get_group(name: NamePath, who: Caller) -> S.GroupOut:
        return m.get_group(name)

    @v1.delete("/interface-groups/{name}", status_code=204, tags=["interface groups"])
    def delete_group(name: NamePath, who: Caller) -> Response:
        who.require_admin("deleting an interface group")
        m.delete_group(name, actor=who.actor)
        return Response(status_code=204)

    # --------------------------------------------------------------- networks
    @v1.post("/networks", status_code=201, tags=["networks"])
    def create_network(body: S.NetworkIn, who: Caller) -> S.NetworkOut:
        return m.create_network(body, actor=who.actor, tenant=who.scope)

    @v1.get("/networks", tags=["networks"])
    def list_networks(who: Caller) -> list[S.NetworkOut]:
        return m.list_networks(tenant=who.scope)

    @v1.get("/networks/{name}", tags=["networks"])
    def get_network(name: NamePath, who: Caller) -> S.NetworkOut:
        return m.get_network(name, tenant=who.scope)

    # The routes that may wait are async: the write runs in a worker thread, the wait on the event
    # loop (Manager.wait_async), so a waiting request holds no thread of the pool every sync route shares.
    @v1.delete("/networks/{name}", status_code=204, tags=["networks"], responses=WAITED)
    async def delete_network(
        name: NamePath,
        who: Caller,
        cascade: Annotated[bool, Query(description="also detach its attachments")] = False,
        wait: Wait = None,
    ) -> Response:
        with waits.take(who, wait):
            gateways, generation = await _in_thread(m.delete_network, name, cascade=cascade, actor=who.actor,
                                                    tenant=who.scope)
            if wait:  # every gateway of the network carried it: each one's failure fails the delete
                return _waited(await m.wait_verdict_async(gateways, generation, wait, tenant=who.scope))
        return Response(status_code=204)

    @v1.post("/networks/{name}/attachments", status_code=201, tags=["networks"], responses=WAITS)
    async def attach(name: NamePath, body: S.AttachmentIn, who: Caller, wait: Wait = None) -> S.AttachmentOut:
        with waits.take(who, wait):
            out = await _in_thread(m.attach, name, body, actor=who.actor, tenant=who.scope)
            if wait:
                out = await m.settle_async(out, wait, tenant=who.scope)
        return out

    @v1.get("/networks/{name}/attachments", tags=["networks"])
    def list_attachments(name: NamePath, who: Caller) -> list[S.AttachmentOut]:
        return m.get_network(name, tenant=who.scope).attachments

    @v1.delete("/networks/{name}/attachments/{group}/{vlan}", status_code=204, tags=["networks"], responses=WAITED)
    async def detach(name: NamePath, group: NamePath, vlan: VlanPath, who: Caller, wait: Wait = None) -> Response:
        with waits.take(who, wait):
            gateways, generation = await _in_thread(m.detach, name, group, vlan, actor=who.actor, tenant=who.scope)
            if wait:  # the group's gateways unbind it: they fail a detach, the others degrade it
                own = partial(m.group_gateways, group)  # asked only if the board cannot tell
                return _waited(await m.wait_verdict_async(gateways, generation, wait, own, tenant=who.scope))
        return Response(status_code=204)

    @v1.get("/attachments", tags=["networks"])
    def list_all_attachments(
        who: Caller,
        limit: Annotated[int, Query(ge=listing.LIMIT_MIN, le=listing.LIMIT_MAX)] = listing.LIMIT_DEFAULT,
        cursor: Annotated[str | None, Query(max_length=listing.CURSOR_MAX,
                                            description="next_cursor of the previous page")] = None,
        network: NameQuery = None,
        interface_group: NameQuery = None,
    ) -> S.AttachmentPageOut:
        """Every attachment, in pages in creation order; follow next_cursor until it is null."""
        return m.attachments_page(limit, cursor, network=network, interface_group=interface_group, tenant=who.scope)

    # ---------------------------------------------------------- plan, audit...
    @v1.get("/plan", tags=["operations"])
    def plan(who: Caller, gateway: Annotated[str | None, Query(max_length=rules.NAME_MAX)] = None) -> S.PlanOut:
        who.require_admin("the plan (it shows every tenant's networks)")
        return m.plan(gateway)

    @v1.get("/status", tags=["operations"])
    def status(who: Caller) -> list[S.RealizationOut]:
        who.require_admin("the gateways' status")
        return m.statuses()

    @v1.get("/status/summary", tags=["operations"])
    def status_summary(who: Caller) -> S.StatusSummaryOut:
        """How many gateways are in each state, and how many carry an error: what to poll while a
        fleet converges (`GET /v1/status` then says which)."""
        who.require_admin("the gateways' status")
        return m.status_summary()

    @v1.get("/audit", tags=["operations"])
    def audit(
        who: Caller,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="entries older than this id")] = None,
    ) -> list[S.AuditOut]:
        who.require_admin("the audit log")
        return m.audit(limit, before)

    @v1.post("/apply", tags=["operations"], responses={**WAITS, **ERRORS})
    async def apply(
        body: S.Topology,
        who: Caller,
        prune: Annotated[bool, Query(description="delete the set's objects the file no longer declares")] = False,
        dry_run: Annotated[bool, Query()] = False,
        wait: Wait = None,
        apply_set: Annotated[str | None, Query(
            alias="set", min_length=1, max_length=rules.NAME_MAX, pattern=f"^{rules.NEW_NAME_RE.pattern}$",
            description="the apply set the file's objects belong to; a prune deletes only this set's. Absent: each "
                        "object's own apply_set (as GET /v1/export gives it), else default")] = None,
        force: Annotated[bool, Query(description="prune even when it deletes more objects than the file declares "
                                                 "(or anything from an empty file): otherwise 409")] = False,
    ) -> S.ApplyOut:
        who.require_admin("apply (it may change the whole inventory)")
        with waits.take(who, wait):
            out = await _in_thread(m.apply, body, prune=prune, dry_run=dry_run, actor=who.actor, apply_set=apply_set,
                                   force=force)
            if wait and out.gateways:
                verdict = await m.wait_verdict_async(out.gateways, out.generation, wait)
                out.status, out.reason = verdict.status, counted(verdict, len(out.gateways))
        return out

    # ------------------------------------------------------------------ tokens
    @v1.post("/tokens", status_code=201, tags=["tokens"])
    def create_token(body: S.TokenIn, who: Caller) -> S.TokenCreatedOut:
        """A new token; its secret is in this answer only."""
        who.require_admin("creating a token")
        info, secret = tokens.create(body.role, body.tenant, body.description, who.actor)
        return S.TokenCreatedOut(**info.model_dump(), token=secret)

    @v1.get("/tokens", tags=["tokens"])
    def list_tokens(who: Caller) -> list[S.TokenOut]:
        who.require_admin("listing tokens")
        return tokens.list()

    @v1.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
    def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Caller) -> Response:
        who.require_admin("revoking a token")
        tokens.revoke(token_id, who.actor)
        return Response(status_code=204)

    events_api.install(v1, manager, _caller)
    app.include_router(v1)
    app.include_router(webhooks_api.router(m, _caller))  # /v1/webhooks: where events are POSTed, deliveries
    app.include_router(tenants.router(m, _caller))  # /v1/tenants: contracts, grants, VNI pools, quotas
    app.include_router(export_api.router(m, _caller))  # /v1/export: the intent in the shape apply takes
    app.include_router(ui.router)
    app.include_router(docs.router)
    return app
