"""``GET /v1/export`` (README, "Export"): the whole intent, or one apply set's objects, in the shape
``POST /v1/apply`` takes (service/export.py). Admins only: it holds every tenant's networks and how
silonet reaches each gateway (credentials as references, never secrets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Response

from silonet.api import errors
from silonet.model import rules
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.auth import Principal
from silonet.service.export import export_topology


def router(m: Manager, caller: Callable[..., Any]) -> APIRouter:
    """The route over ``m``; ``caller`` is the API's token check (``api.app``)."""
    r = APIRouter(prefix="/v1", tags=["operations"],
                  responses={code: {"model": errors.ErrorBody} for code in (401, 403, 409, 413, 422)})
    who_calls = Depends(caller)  # a default, not Annotated: a local cannot be named in an annotation

    @r.get("/export", response_model=S.Topology)
    async def export(
        apply_set: Annotated[str | None, Query(
            alias="set", min_length=1, max_length=rules.NAME_MAX, pattern=f"^{rules.NEW_NAME_RE.pattern}$",
            description="only this apply set's objects (and a network of another set holding its attachments)")
        ] = None,
        who: Principal = who_calls,
    ) -> Response:
        """Every silo, gateway, interface group and network with its attachments, each object with the
        apply set it belongs to (`apply_set`; '': none). `POST /v1/apply` of it changes nothing; with
        `?set=S`, `POST /v1/apply?set=S&prune=true&force=true` of it makes another server's set S the same."""
        who.require_admin("the export (every tenant's networks, every gateway's management)")
        # plain JSON data, not a model per object: FastAPI would validate 200,000 attachments again
        body = await anyio.to_thread.run_sync(lambda: json.dumps(export_topology(m, apply_set), separators=(",", ":")))
        return Response(body, media_type="application/json")

    return r
