"""``vtepctl``: Open vSwitch's own hardware_vtep CLI, run over SSH on the gateway.

The lab's gateways (ovs-vtep) expose it, and so do switches whose shell has ``vtep-ctl``.
A whole batch is one ``vtep-ctl`` invocation whose commands are joined with ``--``, so
it is one OVSDB transaction: all or nothing. Ownership is marked as the ovsdb driver does
(``other_config:silonet_managed=true`` on the Logical_Switch). Read back: one invocation
listing every table silonet needs, as JSON. Verified against the lab.

Fencing (``fence.j2``): the lease epoch is the Physical_Switch's ``other_config`` key, as the
ovsdb driver keeps it, checked and set in the batch's own transaction: vtep-ctl's ``wait-until``
holds the batch until the key holds what this replica read, and its ``add`` verifies the column,
so a successor's write in between makes vtep-ctl run the batch again, and then it waits until
its ``--timeout`` and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.base import EPOCH_KEY, Platform, read_epoch
from silonet.drivers.ssh.dialect import Dialect, Parsed, Target, platform
from silonet.drivers.vtep_schema import PortRows, VtepRows, interpret

TABLES = ("Physical_Switch", "Physical_Port", "Logical_Switch", "Mcast_Macs_Remote", "Physical_Locator_Set",
          "Physical_Locator", "Ucast_Macs_Remote", "Ucast_Macs_Local")
SHOW = "vtep-ctl --timeout=10 --format=json --data=json " + " -- ".join(f"list {t}" for t in TABLES)


def _value(v: Any) -> Any:
    """OVSDB JSON (RFC 7047) -> Python: uuid -> str, set -> list, map -> dict."""
    if isinstance(v, list) and len(v) == 2 and v[0] in ("uuid", "named-uuid"):
        return v[1]
    if isinstance(v, list) and len(v) == 2 and v[0] == "set":
        return [_value(x) for x in v[1]]
    if isinstance(v, list) and len(v) == 2 and v[0] == "map":
        return {_value(k): _value(x) for k, x in v[1]}
    return v


def _one(v: Any) -> Any:
    """An optional column arrives as an empty set or as the value itself."""
    return None if v == [] else v


def _set(v: Any) -> list:
    """A set column with one element arrives as that element, not as a set."""
    return v if isinstance(v, list) else [v]


def tables(output: str) -> dict[str, dict[str, dict]]:
    """The show output: one JSON object per table, in TABLES order -> table -> uuid -> row."""
    objs = [json.loads(line) for line in output.splitlines() if line.strip()]
    if len(objs) != len(TABLES):
        raise ValueError(f"expected {len(TABLES)} tables from vtep-ctl, got {len(objs)}")
    out: dict[str, dict[str, dict]] = {}
    for name, obj in zip(TABLES, objs, strict=True):
        rows = [dict(zip(obj["headings"], (_value(c) for c in row), strict=True)) for row in obj["data"]]
        out[name] = {r["_uuid"]: r for r in rows}
    return out


VERSION = "vtep-ctl --version"


def version(answer: str) -> Platform:
    """``vtep-ctl (Open vSwitch) 3.1.0`` (its first line) -> Open vSwitch 3.1.0."""
    first = answer.strip().splitlines()[0] if answer.strip() else ""
    if "Open vSwitch" not in first:
        raise ValueError(f"not vtep-ctl's version line: {first[:80]!r}")
    return platform("Open vSwitch vtep-ctl", first.rsplit(" ", 1)[-1])


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    t = tables(outputs[SHOW])
    switches = list(t["Physical_Switch"].values())
    ps = next((s for s in switches if s["name"] == gw.name), switches[0] if len(switches) == 1 else None)
    if ps is None:
        raise ValueError(f"no Physical_Switch named {gw.name!r} (found: {[s['name'] for s in switches]})")
    ip = {u: r["dst_ip"] for u, r in t["Physical_Locator"].items()}
    ports = [t["Physical_Port"][u] for u in _set(ps["ports"])]
    rows = VtepRows(
        switch_faults=_set(ps["switch_fault_status"]),
        ports=[PortRows(p["name"], _set(p["port_fault_status"]),
                        {int(vlan): ls for vlan, ls in p["vlan_bindings"].items()}) for p in ports],
        logical_switches={u: (ls["name"], _one(ls["tunnel_key"]), ls["other_config"])
                          for u, ls in t["Logical_Switch"].items()},
        mcast_remote=[(m["MAC"], m["logical_switch"],
                       [ip[u] for u in _set(t["Physical_Locator_Set"][m["locator_set"]]["locators"])])
                      for m in t["Mcast_Macs_Remote"].values()],
        ucast_remote=[(m["MAC"], m["logical_switch"], ip[m["locator"]]) for m in t["Ucast_Macs_Remote"].values()],
        ucast_local=[(m["MAC"], m["logical_switch"]) for m in t["Ucast_Macs_Local"].values()],
    )
    tunnel = _set(ps["tunnel_ips"])
    config = ps.get("other_config")
    epoch = read_epoch(config.get(EPOCH_KEY)) if isinstance(config, dict) else None
    return Parsed(*interpret(rows), vtep_ip=tunnel[0] if len(tunnel) == 1 else None, epoch=epoch)


DIALECT = Dialect(
    name="vtepctl",
    platform="Open vSwitch vtep-ctl (ovs-vtep and switches with a vtep-ctl shell)",
    verified="lab",
    scope="port",
    style="exec",
    show=(SHOW,),
    parse=parse,
    version_show=VERSION,
    version=version,
    failures=("vtep-ctl: ",),
    # ovs-vtep (or the switch) adds a Ucast_Macs_Local row for a MAC it learned on a network the
    # batch deletes after vtep-ctl read the table: the server refuses the delete; one vtep-ctl call
    # is one OVSDB transaction, so nothing of the batch was written
    raced=("referential integrity violation", "constraint violation"),
    folder=Path(__file__).parent,
    join=" -- ",
    remote_macs=True,
    unfenced=None,  # fence.j2: one vtep-ctl transaction checks and sets the epoch
)
