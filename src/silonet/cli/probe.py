"""``silonet gateway probe``: what is on a gateway and what silonet would do there, read from where
the command runs, written nowhere (``service/probe.py``). Drivers load when the command runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from silonet.cli import render
from silonet.errors import InvalidInput

PROBE_NAME = "probe"  # an inline gateway's name, when none is given
SAVED_NOTE = ("saved by `silonet gateway probe --save`: check `parsed` against what the device holds, then rename "
              "it `expected`")


def _stored(backend: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored gateway (as the API shows it to an admin) and its desired state."""
    gw = backend.get("gateway", name)
    if not gw.get("management"):
        raise InvalidInput(field="gateway", rule=f"gateway {name!r}: its management is shown to admins only")
    return gw, backend.status(name)["desired"]


def _entity(body: dict[str, Any]) -> Any:
    """The model ``Gateway`` of an API body, checked as a create is (only the create's fields)."""
    from silonet.service import schemas as S

    keep = {k: v for k, v in body.items() if k in S.GatewayIn.model_fields and v is not None}
    keep["management"] = {k: v for k, v in body["management"].items()
                          if k in S.ManagementIn.model_fields and v is not None}
    keep["ports"] = [{k: v for k, v in p.items() if k in S.PortIn.model_fields} for p in body.get("ports") or []]
    from silonet.service.problems import validate

    return validate(S.GatewayIn, keep).entity(body.get("capacity") or 4096)


def command(backend: Callable[[], Any]) -> Callable[..., None]:
    """The command, reading stored gateways through ``backend()`` (the CLI's local store or server)."""

    def probe(
        name: Annotated[str | None, typer.Argument(help="a stored gateway (or an inline one's name)")] = None,
        driver: Annotated[str | None, typer.Option(help="inline: ovsdb or ssh")] = None,
        dialect: Annotated[str | None, typer.Option(help="inline, with --driver ssh: the vendor CLI")] = None,
        address: Annotated[str | None, typer.Option(help="inline: the management address")] = None,
        credentials: Annotated[str | None, typer.Option(help="inline: a reference to credentials")] = None,
        host_key: Annotated[str | None, typer.Option("--host-key", help="inline, ssh: the host's public key line or "
                                                                        "SHA256: fingerprint")] = None,
        vtep_ip: Annotated[str | None, typer.Option("--vtep-ip", help="inline: the VTEP address the device should "
                                                                      "use (then compared with its own)")] = None,
        port: Annotated[list[str] | None, typer.Option(help="inline: a port silonet would manage; repeat")] = None,
        json_: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
        save: Annotated[Path | None, typer.Option(help="save every raw answer and the parsed result in DIR, in the "
                                                       "layout of the parser tests (tests/drivers/ssh/corpus)")] = None,
        timeout: Annotated[float, typer.Option(help="seconds to wait for the connection")] = 15.0,
    ) -> None:
        """Connect to a gateway, read it, and print what is there (platform, VTEP source, ports,
        mappings, flood lists, silonet's own and foreign state, faults) and what an enforce pass would
        change. Never writes."""
        from silonet.plan.state import GatewayState
        from silonet.service.probe import Unread, capture_target
        from silonet.service.probe import probe as run

        inline = address is not None or driver is not None
        if inline:
            body = {"name": name or PROBE_NAME, "vtep_ip": vtep_ip or "198.18.0.1",
                    "management": {"driver": driver or "ovsdb", "address": address, "dialect": dialect,
                                   "credentials": credentials, "host_key": host_key, "trust_on_first_use": False},
                    "ports": [{"name": p} for p in port or []]}
            desired = None
        elif name is None:
            raise InvalidInput(field="name", rule="name a stored gateway, or give --address (and --driver) to probe "
                                                  "one inline")
        else:
            body, wanted = _stored(backend(), name)
            desired = GatewayState.from_dict(wanted)
        gateway = _entity(body)
        if save is not None and gateway.management.driver != "ssh":
            raise InvalidInput(field="save", rule=f"only SSH gateways answer commands to save; {gateway.name!r} uses "
                                                  f"the {gateway.management.driver} driver")
        found = asyncio.run(run(gateway, desired, inline_vtep=inline and vtep_ip is None, timeout=timeout))
        if save is not None:
            from silonet.drivers.report import save_case

            m = gateway.management
            unread = isinstance(found, Unread)
            where = save_case(save, m.dialect or m.driver, found.outputs,
                              capture_target(gateway, not (inline and vtep_ip is None)),
                              {"probe": {"gateway": gateway.name, "address": m.address, "at": found.at},
                               "note": SAVED_NOTE},
                              {"error": str(found.error)} if unread else found.report)
            what = "the error" if unread else "the parsed result"
            render.note(f"saved {len(found.outputs)} raw answer(s) and {what} in {where}")
        if isinstance(found, Unread):
            raise found.error
        if json_:
            render.as_json(found.to_dict())
            return
        show(found.to_dict())

    return probe


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A table, or one line saying there is nothing of that kind."""
    if rows:
        render.table(title, columns, rows)
    else:
        render.out.print(f"{title}: none", markup=False, highlight=False)


def show(p: dict[str, Any]) -> None:
    """The probe as tables."""
    platform = p["platform"] or {}
    _table(f"Gateway {p['gateway']} ({p['driver']}{'/' + p['dialect'] if p['dialect'] else ''}, "
                 f"{p['address']})", ["platform", "version", "VTEP source", "ports"],
                 [[platform.get("model", "?"), platform.get("version", "?"), p["vtep_ip"] or "?",
                   "?" if p["ports"] is None else ", ".join(p["ports"]) or "none"]])
    owned = p["owned"]
    _table("silonet's own: logical switches and flood lists", ["vni", "network", "flood"],
                 [[ls["vni"], ls["network"], ", ".join(ls["flood"])] for ls in owned["logical_switches"]])
    _table("silonet's own: bindings", ["port", "vlan", "vni"],
                 [[b["port"], b["vlan"], b["vni"]] for b in owned["bindings"]])
    f = p["foreign"]
    rows = [["VNI", vni, name] for vni, name in f["vnis"].items()]
    rows += [["binding", f"{b['port']} VLAN {b['vlan']}", b["logical_switch"]] for b in f["bindings"]]
    rows += [["remote VTEP", ip, ""] for ip in f["flood"]]
    _table("Foreign (not silonet's: left alone)", ["kind", "what", "owner"], rows)
    _table("Faults", ["where", "fault"], [[where, fault] for where, found in p["faults"].items()
                                                for fault in found])
    if p["changes"] is None:
        render.out.print("inline probe: no desired state to compare (store the gateway to see what silonet would "
                         "change)")
        return
    _table("An enforce pass would apply", ["operation"], [[c["description"]] for c in p["changes"]])
    if p["refused"]:
        _table("...and leave out", ["binding", "why"], [[k, v] for k, v in p["refused"].items()])
    if p["commands"]:
        _table("...typing these lines on the switch", ["line"], [[line] for line in p["commands"]])
