"""``silonet gateway mode NAME MODE`` and ``silonet gateway patch NAME PATCH``: a gateway changed in
place, on the local store or a server alike (``PATCH /v1/gateways/{name}``, a JSON merge patch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from silonet.cli import params, render
from silonet.model import rules

JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of tables")]
NameArg = Annotated[str, typer.Argument(help="the gateway", show_default=False)]
MODE_HELP = ("enforce (silonet configures the device), observe (it reads and plans, never writes) or maintenance "
             "(it does not contact the device)")


def _shown(data: Any, as_json: bool) -> None:
    if as_json:
        render.as_json(data)
    else:
        render.gateways([data])


def mode_command(backend: Callable[[], Any]) -> Callable[..., None]:
    """The command, writing through ``backend()`` (the CLI's local store or server)."""

    def mode(name: NameArg, mode: Annotated[str, typer.Argument(help=MODE_HELP, show_default=False)],
             json_: JsonOpt = False) -> None:
        """Set a gateway's mode: enforce, observe or maintenance (audited). In observe and maintenance
        its attachments are held; `silonet status NAME` and `silonet plan` show what enforce would do."""
        _shown(backend().patch_gateway(name, {"mode": rules.mode(mode)}), json_)

    return mode


def patch_command(backend: Callable[[], Any]) -> Callable[..., None]:
    def patch(name: NameArg,
              document: Annotated[str, typer.Argument(
                  metavar="PATCH", show_default=False,
                  help="a JSON merge patch (RFC 7396) of the gateway as created, e.g. '{\"capacity\": 8192}': null "
                       "resets a field, lists are replaced whole")],
              json_: JsonOpt = False) -> None:
        """Change a gateway (mode, capacity, management, ports, vtep_ip, silo): checked as a create is."""
        body = params.merge_patch(document, "gateway")
        _shown(backend().patch_gateway(name, body), json_)

    return patch
