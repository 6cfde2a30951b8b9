"""What a vtep database holds, read with ``vtep-ctl`` (not silonet's driver), and everything in it
that should not be there: rows nobody wants (orphans) and two rows for one thing (duplicates)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from silonet.devices.vtepdb import VtepDb

COLUMNS = {
    "Logical_Switch": "_uuid,name,tunnel_key",
    "Physical_Port": "_uuid,name,vlan_bindings",
    "Physical_Locator": "_uuid,encapsulation_type,dst_ip,tunnel_key",
    "Physical_Locator_Set": "_uuid,locators",
    "Mcast_Macs_Remote": "_uuid,MAC,logical_switch,locator_set",
    "Ucast_Macs_Remote": "_uuid,MAC,logical_switch,locator",
    "Mcast_Macs_Local": "_uuid,MAC,logical_switch,locator_set",
    "Ucast_Macs_Local": "_uuid,MAC,logical_switch,locator",
    "Tunnel": "_uuid,local,remote",
}


def _atom(value: object) -> object:
    """OVSDB JSON to Python: ["uuid", u] -> u, ["set", [...]] -> list, ["map", [...]] -> dict."""
    if isinstance(value, list) and len(value) == 2 and value[0] in ("uuid", "named-uuid"):
        return value[1]
    if isinstance(value, list) and len(value) == 2 and value[0] == "set":
        return [_atom(v) for v in value[1]]
    if isinstance(value, list) and len(value) == 2 and value[0] == "map":
        return {_atom(k): _atom(v) for k, v in value[1]}
    return value


def _opt(value: object) -> object:
    """An optional column: a one-element value as itself, an empty set as None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _set(value: object) -> list:
    """A set column: OVSDB JSON writes a one-element set as the bare element."""
    return value if isinstance(value, list) else [value]


def read_tables(db: VtepDb) -> dict[str, list[dict]]:
    """Every row silonet could have made: one ``vtep-ctl`` with a ``list`` per table (one JSON line each)."""
    args = ["--format=json", "--data=json"]
    for table, cols in COLUMNS.items():
        args += ["--", f"--columns={cols}", "list", table]
    lines = db.ctl(*args).splitlines()
    out: dict[str, list[dict]] = {}
    for table, line in zip(COLUMNS, lines, strict=True):
        raw = json.loads(line)
        out[table] = [{h: _atom(v) for h, v in zip(raw["headings"], row, strict=True)} for row in raw["data"]]
    for r in out["Physical_Locator_Set"]:
        r["locators"] = _set(r["locators"])
    return out


@dataclass(frozen=True)
class Wanted:
    """One gateway's expected device state, in names a reader of the device uses."""

    switches: dict[str, int] = field(default_factory=dict)  # logical switch name -> tunnel key
    bindings: dict[tuple[str, int], str] = field(default_factory=dict)  # (port, VLAN) -> logical switch name
    flood: dict[str, frozenset[str]] = field(default_factory=dict)  # logical switch name -> tunnel IPs


def problems(t: dict[str, list[dict]], want: Wanted) -> list[str]:
    """Every way the device differs from ``want``: missing, wrong, orphan and duplicate rows."""
    out: list[str] = []
    ls_by_id = {r["_uuid"]: r for r in t["Logical_Switch"]}
    loc_by_id = {r["_uuid"]: r for r in t["Physical_Locator"]}
    set_by_id = {r["_uuid"]: r for r in t["Physical_Locator_Set"]}

    def dupes(what: str, keys: list) -> None:
        for key, n in Counter(keys).items():
            if n > 1:
                out.append(f"duplicate: {n} {what} rows for {key}")

    dupes("Logical_Switch", [("tunnel_key", _opt(r["tunnel_key"])) for r in ls_by_id.values()])
    dupes("Logical_Switch", [("name", r["name"]) for r in ls_by_id.values()])
    dupes("Physical_Locator", [(r["encapsulation_type"], r["dst_ip"], _opt(r["tunnel_key"]))
                               for r in loc_by_id.values()])
    dupes("Physical_Locator_Set", [frozenset(loc_by_id.get(u, {}).get("dst_ip", u) for u in r["locators"])
                                   for r in set_by_id.values()])
    dupes("Mcast_Macs_Remote", [(r["MAC"], ls_by_id.get(r["logical_switch"], {}).get("name", r["logical_switch"]))
                                for r in t["Mcast_Macs_Remote"]])

    have = {r["name"]: _opt(r["tunnel_key"]) for r in ls_by_id.values()}
    for name in sorted(have.keys() - want.switches.keys()):
        out.append(f"orphan Logical_Switch {name} (tunnel_key {have[name]})")
    for name in sorted(want.switches.keys() - have.keys()):
        out.append(f"missing Logical_Switch {name}")
    for name in sorted(want.switches.keys() & have.keys()):
        if have[name] != want.switches[name]:
            out.append(f"Logical_Switch {name}: tunnel_key {have[name]}, want {want.switches[name]}")

    bound = {(p["name"], int(vlan)): ls_by_id[ls]["name"] if ls in ls_by_id else ls
             for p in t["Physical_Port"] for vlan, ls in p["vlan_bindings"].items()}
    if bound != want.bindings:
        extra, missing = bound.items() - want.bindings.items(), want.bindings.items() - bound.items()
        out.append(f"bindings: {len(extra)} unwanted (e.g. {sorted(extra)[:3]}), "
                   f"{len(missing)} missing (e.g. {sorted(missing)[:3]})")

    flood: dict[str, frozenset[str]] = {}
    for r in t["Mcast_Macs_Remote"]:
        ls = ls_by_id.get(r["logical_switch"])
        if r["MAC"] != "unknown-dst" or ls is None or ls["name"] not in want.switches:
            out.append(f"orphan Mcast_Macs_Remote {r['MAC']} on {ls['name'] if ls else r['logical_switch']}")
            continue
        pls = set_by_id.get(r["locator_set"])
        flood[ls["name"]] = frozenset(loc_by_id[u]["dst_ip"] for u in pls["locators"]) if pls else frozenset()
    wrong = sorted(n for n in flood.keys() | want.flood.keys() if flood.get(n) != want.flood.get(n))
    if wrong:
        out.append(f"flood lists: {len(wrong)} differ, e.g. {wrong[0]}: {sorted(flood.get(wrong[0], ()))} "
                   f"want {sorted(want.flood.get(wrong[0], ()))}")

    for table in ("Ucast_Macs_Remote", "Mcast_Macs_Local", "Ucast_Macs_Local"):
        if t[table]:
            out.append(f"orphan {table}: {len(t[table])} row(s), none wanted")
    used_sets = {r["locator_set"] for table in ("Mcast_Macs_Remote", "Mcast_Macs_Local") for r in t[table]}
    for u in sorted(set_by_id.keys() - used_sets):
        out.append(f"orphan Physical_Locator_Set {u}")
    used_locs = {u for r in set_by_id.values() for u in r["locators"]}
    used_locs |= {r["locator"] for table in ("Ucast_Macs_Remote", "Ucast_Macs_Local") for r in t[table]}
    used_locs |= {_opt(r[c]) for r in t["Tunnel"] for c in ("local", "remote")}
    for u in sorted(loc_by_id.keys() - used_locs):
        out.append(f"orphan Physical_Locator {loc_by_id[u]['dst_ip']}")
    return out
