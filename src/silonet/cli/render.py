"""Rich tables for what people look at; ``--json`` prints the API shapes instead."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

STATE_STYLE = {"realized": "green", "pending": "yellow", "failed": "red"}


def one_line(message: str) -> str:
    """What a user typed may hold newlines, terminal escapes or undecodable bytes: show them escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def error(message: str) -> None:
    """One red line; the message is plain text (a rule like [A-Za-z0-9._-] must survive)."""
    err.print(Text.assemble(("error: ", "bold red"), one_line(message)), highlight=False)


RICH_JSON_MAX = 100_000  # characters: colouring 8,000 changes took Rich 1.4 s


def as_json(data: Any) -> None:
    """Coloured for a person at a terminal; plain (and fast) for pipes, scripts and big answers."""
    text = json.dumps(data, indent=2)
    if out.is_terminal and len(text) <= RICH_JSON_MAX:
        out.print_json(text)
    else:
        sys.stdout.write(text + "\n")


def _state(s: str) -> str:
    return f"[{STATE_STYLE.get(s, 'white')}]{s}[/]"


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    out.print(t)


def _refs(refs: list[dict]) -> str:
    return ", ".join(f"{r['gateway']}:{r['port']}" for r in refs)


def silos(items: list[dict]) -> None:
    table("Silos", ["name", "kind", "description"], [[s["name"], s["kind"], s["description"]] for s in items])


def gateways(items: list[dict]) -> None:
    rows = [
        [g["name"], g["silo"], g["vtep_ip"], f"{g['management']['driver']} {g['management']['address']}",
         f"{g['used']}/{g['capacity']}",
         ", ".join(p["name"] + (" (switch-back)" if p["switchback"] else "") for p in g["ports"])]
        for g in items
    ]
    table("Gateways", ["name", "silo", "vtep_ip", "management", "entries", "ports"], rows)


def groups(items: list[dict]) -> None:
    rows = [[g["name"], g["silo"], _refs(g["members"]), _refs(g["switchback"])] for g in items]
    table("Interface groups", ["name", "silo", "members", "switch-back"], rows)


def attachments(items: list[dict], title: str = "Attachments") -> None:
    rows = [[a["network"], a["vni"], a["interface_group"], a["vlan"], _state(a["status"]), a.get("reason")]
            for a in items]
    table(title, ["network", "vni", "group", "vlan", "status", "reason"], rows)


def networks(items: list[dict]) -> None:
    rows = [[n["name"], n["tenant"], n["vni"],
             ", ".join(f"{a['interface_group']}/{a['vlan']}" for a in n["attachments"])] for n in items]
    table("Virtual networks", ["name", "tenant", "vni", "attachments"], rows)


def plan(data: dict) -> None:
    if not data["gateways"]:
        out.print("no gateways")
    for gw in data["gateways"]:
        if not gw["operations"]:
            out.print(f"{gw['gateway']}: nothing to do ({gw['entries']}/{gw['capacity']} entries)")
            continue
        known = "" if gw["actual_known"] else " (actual state not read yet: diff against empty)"
        n = len(gw['operations'])
        title = f"{gw['gateway']}: {n} operation(s), {gw['entries']}/{gw['capacity']} entries{known}"
        table(title, ["#", "operation"], [[i + 1, op["description"]] for i, op in enumerate(gw["operations"])])


def _reachable(value: bool | None) -> str:
    return "[dim]unknown[/]" if value is None else "[green]yes[/]" if value else "[red]no[/]"


def _faults(s: dict) -> str:
    parts = [f"{where}: {', '.join(f)}" for where, f in (s.get("faults") or {}).items()]
    parts += [f"{pv}: {why}" for pv, why in (s.get("binding_errors") or {}).items()]
    return "; ".join(parts)


def statuses(items: list[dict]) -> None:
    rows = [[s["gateway"], _reachable(s.get("reachable")), _state(s["state"]), s["realized_generation"],
             max(0, s["desired_generation"] - s["realized_generation"]) or "",
             "" if s.get("drift") is None else s["drift"], _faults(s), s["last_error"]] for s in items]
    table("Gateways", ["gateway", "reachable", "state", "realized gen", "behind by", "drift", "faults",
                       "last error"], rows)


def gateway_status(s: dict) -> None:
    statuses([s])
    want = {(b["port"], b["vlan"]): b["vni"] for b in s["desired"]["bindings"]}
    have = None if s["actual"] is None else {(b["port"], b["vlan"]): b["vni"] for b in s["actual"]["bindings"]}
    rows = [[p, v, want.get((p, v), ""), "?" if have is None else have.get((p, v), ""),
             (s.get("binding_errors") or {}).get(f"{p}/{v}", "")]
            for p, v in sorted(set(want) | set(have or {}))]
    table("Bindings (desired vs actual on the device)", ["port", "vlan", "desired vni", "actual vni", "problem"],
          rows)
    flood_want = {ls["vni"]: ls for ls in s["desired"]["logical_switches"]}
    flood_have = {} if s["actual"] is None else {ls["vni"]: ls for ls in s["actual"]["logical_switches"]}
    table("Logical switches and flood lists", ["vni", "network", "desired flood", "actual flood"],
          [[v, (flood_want.get(v) or flood_have[v])["network"], ", ".join(flood_want[v]["flood"]) if v in flood_want
            else "", ", ".join(flood_have[v]["flood"]) if v in flood_have else ""]
           for v in sorted(set(flood_want) | set(flood_have))])
    if s.get("repair"):
        table("Repair (actual -> desired)", ["operation"], [[d["description"]] for d in s["repair"]])
    if s.get("foreign"):
        table("Foreign state (left alone)", ["what"],
              [[", ".join(f"{k}={v}" for k, v in f.items())] for f in s["foreign"]])


def audit(items: list[dict]) -> None:
    rows = [[a["id"], a["time"], a["actor"], a["action"], a["object"]] for a in items]
    table("Audit log", ["id", "time", "actor", "action", "object"], rows)


def tokens(items: list[dict]) -> None:
    rows = [[t["id"], t["role"], t["tenant"] or "", t["description"], t["created"], t["created_by"],
             t["revoked"] or ""] for t in items]
    table("Tokens", ["id", "role", "tenant", "description", "created", "by", "revoked"], rows)


CHANGES_SHOWN = 50


def changes(data: dict) -> None:
    if not data["changes"]:
        out.print("no changes")
        return
    verb = "would apply" if data["dry_run"] else "applied"
    if len(data["changes"]) > CHANGES_SHOWN:  # thousands of rows help nobody: count them
        counts = Counter((c["action"], c["kind"]) for c in data["changes"])
        rows = [[action, kind, str(n)] for (action, kind), n in sorted(counts.items())]
        table(f"{verb} {len(data['changes'])} change(s)", ["action", "kind", "count"], rows)
    else:
        rows = [[c["action"], c["kind"], c["name"]] for c in data["changes"]]
        table(f"{verb} {len(rows)} change(s)", ["action", "kind", "name"], rows)
    if data.get("status"):
        color = {"realized": "green", "failed": "red"}.get(data["status"], "yellow")
        out.print(f"[{color}]{data['status']}[/] on {len(data.get('gateways', []))} gateway(s)")


RENDER = {"silo": silos, "gateway": gateways, "group": groups, "network": networks}
