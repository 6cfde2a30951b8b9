"""The FastAPI application: routes of design.md's v1 contract, each a call into the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Response
from fastapi.responses import RedirectResponse

from silonet import __version__
from silonet.api import errors
from silonet.model import rules
from silonet.reconcile import Reconciler
from silonet.service import Manager, listing
from silonet.service import schemas as S

NamePath = Annotated[str, Path(min_length=1, max_length=rules.NAME_MAX, pattern=f"^{rules.NAME_RE.pattern}$")]
VlanPath = Annotated[int, Path(ge=rules.VLAN_MIN, le=rules.VLAN_MAX)]
NameQuery = Annotated[str | None, Query(min_length=1, max_length=rules.NAME_MAX,
                                         pattern=f"^{rules.NAME_RE.pattern}$")]
Wait = Annotated[float | None, Query(ge=0, le=300, description="seconds to wait until every affected gateway "
                                                              "is realized (or one failed)")]
ERRORS = {code: {"model": errors.ErrorBody} for code in (404, 409, 422)}


def create_app(manager: Manager, reconciler: Reconciler | None = None) -> FastAPI:
    """The API; with a ``reconciler`` it also drives the gateways for as long as it serves."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if reconciler is not None:
            await reconciler.start()
        try:
            yield
        finally:
            if reconciler is not None:
                await reconciler.stop()

    app = FastAPI(
        title="silonet",
        version=__version__,
        description="Connect silo VLANs across silos through hardware VXLAN gateways.",
        responses=ERRORS,
        lifespan=lifespan,
    )
    errors.install(app)
    app.state.manager = manager
    app.state.reconciler = reconciler
    v1 = APIRouter(prefix="/v1")
    m = manager

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # ------------------------------------------------------------------ silos
    @v1.post("/silos", status_code=201, tags=["silos"])
    def create_silo(body: S.SiloIn) -> S.SiloOut:
        return m.create_silo(body)

    @v1.get("/silos", tags=["silos"])
    def list_silos() -> list[S.SiloOut]:
        return m.list_silos()

    @v1.get("/silos/{name}", tags=["silos"])
    def get_silo(name: NamePath) -> S.SiloOut:
        return m.get_silo(name)

    @v1.delete("/silos/{name}", status_code=204, tags=["silos"])
    def delete_silo(name: NamePath) -> Response:
        m.delete_silo(name)
        return Response(status_code=204)

    # --------------------------------------------------------------- gateways
    @v1.post("/gateways", status_code=201, tags=["gateways"])
    def create_gateway(body: S.GatewayIn) -> S.GatewayOut:
        return m.create_gateway(body)

    @v1.get("/gateways", tags=["gateways"])
    def list_gateways() -> list[S.GatewayOut]:
        return m.list_gateways()

    @v1.get("/gateways/{name}", tags=["gateways"])
    def get_gateway(name: NamePath) -> S.GatewayOut:
        return m.get_gateway(name)

    @v1.get("/gateways/{name}/status", tags=["gateways"])
    def gateway_status(name: NamePath) -> S.GatewayStatusOut:
        return m.gateway_status(name)

    @v1.delete("/gateways/{name}", status_code=204, tags=["gateways"])
    def delete_gateway(name: NamePath) -> Response:
        m.delete_gateway(name)
        return Response(status_code=204)

    # -------------------------------------------------------- interface groups
    @v1.post("/interface-groups", status_code=201, tags=["interface groups"])
    def create_group(body: S.GroupIn) -> S.GroupOut:
        return m.create_group(body)

    @v1.get("/interface-groups", tags=["interface groups"])
    def list_groups() -> list[S.GroupOut]:
        return m.list_groups()

    @v1.get("/interface-groups/{name}", tags=["interface groups"])
    def get_group(name: NamePath) -> S.GroupOut:
        return m.get_group(name)

    @v1.delete("/interface-groups/{name}", status_code=204, tags=["interface groups"])
    def delete_group(name: NamePath) -> Response:
        m.delete_group(name)
        return Response(status_code=204)

    # --------------------------------------------------------------- networks
    @v1.post("/networks", status_code=201, tags=["networks"])
    def create_network(body: S.NetworkIn) -> S.NetworkOut:
        return m.create_network(body)

    @v1.get("/networks", tags=["networks"])
    def list_networks() -> list[S.NetworkOut]:
        return m.list_networks()

    @v1.get("/networks/{name}", tags=["networks"])
    def get_network(name: NamePath) -> S.NetworkOut:
        return m.get_network(name)

    @v1.delete("/networks/{name}", status_code=204, tags=["networks"])
    def delete_network(
        name: NamePath,
        cascade: Annotated[bool, Query(description="also detach its attachments")] = False,
        wait: Wait = None,
    ) -> Response:
        gateways, generation = m.delete_network(name, cascade=cascade)
        if wait:
            m.wait(gateways, generation, wait)
        return Response(status_code=204)

    @v1.post("/networks/{name}/attachments", status_code=201, tags=["networks"])
    def attach(name: NamePath, body: S.AttachmentIn, wait: Wait = None) -> S.AttachmentOut:
        out = m.attach(name, body)
        if wait:
            m.wait([g.gateway for g in out.gateways], out.generation, wait)
            out = m.get_attachment(name, out.interface_group, out.vlan)
        return out

    @v1.get("/networks/{name}/attachments", tags=["networks"])
    def list_attachments(name: NamePath) -> list[S.AttachmentOut]:
        return m.get_network(name).attachments

    @v1.delete("/networks/{name}/attachments/{group}/{vlan}", status_code=204, tags=["networks"])
    def detach(name: NamePath, group: NamePath, vlan: VlanPath, wait: Wait = None) -> Response:
        gateways, generation = m.detach(name, group, vlan)
        if wait:
            m.wait(gateways, generation, wait)
        return Response(status_code=204)

    @v1.get("/attachments", tags=["networks"])
    def list_all_attachments(
        limit: Annotated[int, Query(ge=listing.LIMIT_MIN, le=listing.LIMIT_MAX)] = listing.LIMIT_DEFAULT,
        cursor: Annotated[str | None, Query(max_length=listing.CURSOR_MAX,
                                            description="next_cursor of the previous page")] = None,
        network: NameQuery = None,
        interface_group: NameQuery = None,
    ) -> S.AttachmentPageOut:
        """Every attachment, in pages in creation order; follow next_cursor until it is null."""
        with m.db.read() as s:
            return listing.list_attachments_page(s, limit, cursor, network=network, interface_group=interface_group)

    # ---------------------------------------------------------- plan, audit...
    @v1.get("/plan", tags=["operations"])
    def plan(gateway: Annotated[str | None, Query(max_length=rules.NAME_MAX)] = None) -> S.PlanOut:
        return m.plan(gateway)

    @v1.get("/status", tags=["operations"])
    def status() -> list[S.RealizationOut]:
        return m.statuses()

    @v1.get("/audit", tags=["operations"])
    def audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, description="entries older than this id")] = None,
    ) -> list[S.AuditOut]:
        return m.audit(limit, before)

    @v1.post("/apply", tags=["operations"])
    def apply(
        body: S.Topology,
        prune: Annotated[bool, Query()] = False,
        dry_run: Annotated[bool, Query()] = False,
        wait: Wait = None,
    ) -> S.ApplyOut:
        out = m.apply(body, prune=prune, dry_run=dry_run)
        if wait and out.gateways:
            out.status = m.wait(out.gateways, out.generation, wait)
        return out

    app.include_router(v1)
    return app
