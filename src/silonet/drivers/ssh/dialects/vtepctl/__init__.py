"""``vtepctl``: Open vSwitch's own hardware_vtep CLI, run over SSH on the gateway.

The lab's gateways (ovs-vtep) expose it, and so do switches whose shell has ``vtep-ctl``.
A whole batch is one ``vtep-ctl`` invocation whose commands are joined with ``--``, so
it is one OVSDB transaction: all or nothing. Ownership is marked as the ovsdb driver does
(``other_config:silonet_managed=true`` on the Logical_Switch). Read back: one invocation
listing every table silonet needs, as JSON. Verified against the lab.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import Dialect, Parsed, Target
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

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


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    t = tables(outputs[SHOW])
    switches = list(t["Physical_Switch"].values())
    ps = next((s for s in switches if s["name"] == gw.name), switches[0] if len(switches) == 1 else None)
    if ps is None:
        raise ValueError(f"no Physical_Switch named {gw.name!r} (found: {[s['name'] for s in switches]})")
    owned: dict[str, int] = {}
    names: dict[int, str] = {}
    foreign_vnis: dict[int, str] = {}
    foreign_names: set[str] = set()
    for uuid, ls in t["Logical_Switch"].items():
        key = _one(ls["tunnel_key"])
        if ls["other_config"].get("silonet_managed") == "true":
            if key is not None:
                owned[uuid], names[key] = key, ls["name"]
        else:
            foreign_names.add(ls["name"])
            if key is not None:
                foreign_vnis[key] = ls["name"]
    locator_ip = {u: r["dst_ip"] for u, r in t["Physical_Locator"].items()}
    flood: dict[int, frozenset[str]] = {}
    for m in t["Mcast_Macs_Remote"].values():
        if m["MAC"] == "unknown-dst" and m["logical_switch"] in owned:
            locs = _set(t["Physical_Locator_Set"][m["locator_set"]]["locators"])
            flood[owned[m["logical_switch"]]] = frozenset(locator_ip[u] for u in locs)
    bindings: dict[tuple[str, int], int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    faults: dict[str, list[str]] = {}
    if ps["switch_fault_status"]:
        faults["switch"] = sorted(_set(ps["switch_fault_status"]))
    port_names = []
    for uuid in _set(ps["ports"]):
        port = t["Physical_Port"][uuid]
        port_names.append(port["name"])
        if port["port_fault_status"]:
            faults[f"port {port['name']}"] = sorted(_set(port["port_fault_status"]))
        for vlan, ls in port["vlan_bindings"].items():
            if ls in owned:
                bindings[(port["name"], int(vlan))] = owned[ls]
            else:
                foreign_bindings[(port["name"], int(vlan))] = t["Logical_Switch"][ls]["name"]
    remote = {(owned[m["logical_switch"]], m["MAC"]): locator_ip[m["locator"]]
              for m in t["Ucast_Macs_Remote"].values() if m["logical_switch"] in owned}
    local: dict[int, set[str]] = {}
    for m in t["Ucast_Macs_Local"].values():
        if m["logical_switch"] in owned:
            local.setdefault(owned[m["logical_switch"]], set()).add(m["MAC"])
    state = GatewayState(
        {vni: LogicalSwitch(vni, names[vni], flood.get(vni, frozenset())) for vni in sorted(names)},
        dict(sorted(bindings.items())), dict(sorted(remote.items())))
    facts = DeviceFacts(frozenset(port_names), foreign_bindings, foreign_vnis, frozenset(foreign_names))
    return Parsed(state, facts, {v: frozenset(m) for v, m in local.items()}, faults)


DIALECT = Dialect(
    name="vtepctl",
    platform="Open vSwitch vtep-ctl (ovs-vtep and switches with a vtep-ctl shell)",
    verified="lab",
    scope="port",
    style="exec",
    show=(SHOW,),
    parse=parse,
    failures=("vtep-ctl: ",),
    folder=Path(__file__).parent,
    join=" -- ",
    remote_macs=True,
)
