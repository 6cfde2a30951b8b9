"""``/v1/tenants``: tenants' contracts (README, "Tenant contracts"). Admins write them; a tenant
token reads its own record (another tenant's answers 404, as a missing one does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response

from silonet.api import errors
from silonet.model import rules
from silonet.service import Manager
from silonet.service import tenants as T
from silonet.service.auth import Principal

NamePath = Annotated[str, Path(min_length=1, max_length=rules.NAME_MAX, pattern=f"^{rules.NAME_RE.pattern}$")]
MERGE_PATCH = "application/merge-patch+json"  # RFC 7396
PATCH_DOC = ("a JSON merge patch (RFC 7396) of the record as created: members replace, null deletes (no grants, "
             "no pool, no limit), lists are replaced whole; name cannot change. application/json is accepted too")


def router(m: Manager, caller: Callable[..., Any]) -> APIRouter:
    """The routes over ``m``; ``caller`` is the API's token check (``api.app``)."""
    r = errors.resource_router("/v1/tenants", "tenants")
    who_calls = Depends(caller)  # a default, not Annotated: a local cannot be named in an annotation

    @r.post("", status_code=201)
    def create_tenant(body: T.TenantIn, who: Principal = who_calls) -> T.TenantOut:
        """A tenant's record: from then on its tokens attach only to the granted groups, take VNIs from its
        pool and stay within its quotas (403 naming the rule)."""
        who.require_admin("creating a tenant record")
        return T.create(m, body, who.actor)

    @r.get("")
    def list_tenants(who: Principal = who_calls) -> list[T.TenantOut]:
        """Every record with its use (networks and attachments held); a tenant token gets its own only."""
        return T.list_(m, who.scope)

    @r.get("/{name}")
    def get_tenant(name: NamePath, who: Principal = who_calls) -> T.TenantOut:
        return T.get(m, name, who.scope)

    @r.patch("/{name}")
    def patch_tenant(name: NamePath,
                     patch: Annotated[dict[str, Any], Body(media_type=MERGE_PATCH, description=PATCH_DOC)],
                     who: Principal = who_calls) -> T.TenantOut:
        """Change a record: the result is checked as a create is, and writes nothing when refused."""
        who.require_admin("changing a tenant record")
        return T.patch(m, name, patch, who.actor)

    @r.delete("/{name}", status_code=204)
    def delete_tenant(name: NamePath, who: Principal = who_calls) -> Response:
        """Refused (409) while the tenant has networks."""
        who.require_admin("deleting a tenant record")
        T.delete_(m, name, who.actor)
        return Response(status_code=204)

    return r
