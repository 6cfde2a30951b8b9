"""``silonet tenant create|list|show|patch|delete``: tenants' contracts (``/v1/tenants``), on the
local store or a server alike. Every refusal is one ``error:`` line per problem (exit 1)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import typer

from silonet.cli import params, render
from silonet.cli.backend import Backend
from silonet.errors import InvalidInput
from silonet.model import tenancy

JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of tables")]
NameArg = Annotated[str, typer.Argument(help="the tenant (as its networks and tokens name it)", show_default=False)]
QUOTA_HELP = "at most this many {} (0..2147483647; absent: no limit)"
_POOL = re.compile(r"\s*([0-9]{1,9})\s*-\s*([0-9]{1,9})\s*")


def pool(spec: str) -> dict[str, int]:
    """``FIRST-LAST`` as the API's ``{"first", "last"}`` (the service checks the range and the order)."""
    m = _POOL.fullmatch(spec)
    if m is None:
        raise InvalidInput(field="--vni-pool", rule=f"{spec!r} is not FIRST-LAST (e.g. 20000-20999)")
    return {"first": int(m.group(1)), "last": int(m.group(2))}


def _limit(used: int, limit: int | None) -> str:
    return f"{used}" if limit is None else f"{used} / {limit}"


def show(data: list[dict[str, Any]]) -> None:
    """One row per tenant: its grants, pool, and use against its quotas."""
    rows = [[t["name"], ", ".join(t["interface_groups"]) or "(none)",
             "(none)" if t["vni_pool"] is None else f"{t['vni_pool']['first']}-{t['vni_pool']['last']}",
             _limit(t["use"]["networks"], t["max_networks"]), _limit(t["use"]["attachments"], t["max_attachments"])]
            for t in data]
    render.table("Tenants", ["tenant", "interface groups", "VNI pool", "networks (used / max)",
                             "attachments (used / max)"], rows)


def _shown(data: Any, as_json: bool) -> None:
    if as_json:
        render.as_json(data)
    else:
        show(data if isinstance(data, list) else [data])


def commands(backend: Callable[[], Backend]) -> typer.Typer:
    """The ``tenant`` commands, writing through ``backend()`` (the CLI's local store or server)."""
    app = typer.Typer(help="Tenants' contracts (admin): granted interface groups, a VNI pool, quotas. A tenant "
                           "without one is not limited.", no_args_is_help=True)

    @app.command("create")
    def create(
        name: NameArg,
        group: Annotated[list[str] | None, typer.Option(help="an interface group its tokens may attach to; "
                                                             "repeat (none: it may attach nowhere)")] = None,
        vni_pool: Annotated[str | None, typer.Option(help="FIRST-LAST: the VNIs its networks take (allocated from "
                                                          "here when none is given)")] = None,
        max_networks: Annotated[int | None, typer.Option(help=QUOTA_HELP.format("networks"),
                                                         parser=params.number("max_networks", tenancy.quota))] = None,
        max_attachments: Annotated[int | None, typer.Option(
            help=QUOTA_HELP.format("attachments"), parser=params.number("max_attachments", tenancy.quota))] = None,
        json_: JsonOpt = False,
    ) -> None:
        """Give a tenant a contract: from then on its tokens are held to it (403 naming the rule)."""
        body: dict[str, Any] = {"name": name, "interface_groups": group or [], "max_networks": max_networks,
                                "max_attachments": max_attachments}
        if vni_pool is not None:
            body["vni_pool"] = pool(vni_pool)
        _shown(backend().tenant_create(body), json_)

    @app.command("list")
    def list_(json_: JsonOpt = False) -> None:
        """Every tenant's contract with its use."""
        _shown(backend().tenant_list(), json_)

    @app.command("show")
    def show_(name: NameArg, json_: JsonOpt = False) -> None:
        """One tenant's contract with its use."""
        _shown(backend().tenant_get(name), json_)

    @app.command("patch")
    def patch(name: NameArg,
              document: Annotated[str, typer.Argument(
                  metavar="PATCH", show_default=False,
                  help="a JSON merge patch (RFC 7396) of the contract, e.g. '{\"max_networks\": 10}': null removes a "
                       "limit (or the pool, or every grant), lists are replaced whole")],
              json_: JsonOpt = False) -> None:
        """Change a tenant's contract: checked as a create is, nothing written when refused."""
        body = params.merge_patch(document, "tenant")
        _shown(backend().tenant_patch(name, body), json_)

    @app.command("delete")
    def delete(name: NameArg) -> None:
        """Delete a tenant's contract (refused while it has networks)."""
        backend().tenant_delete(name)
        render.out.print(f"deleted the contract of tenant {name}", markup=False, highlight=False)

    return app
