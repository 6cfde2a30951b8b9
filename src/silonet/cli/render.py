"""Rich tables for what people look at; ``--json`` prints the API shapes instead."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

STATE_STYLE = {"realized": "green", "pending": "yellow", "failed": "red", "degraded": "dark_orange",
               "held": "magenta"}
MODE_STYLE = {"enforce": "dim", "observe": "magenta", "maintenance": "magenta"}


def one_line(message: str) -> str:
    """What a user typed may hold newlines, terminal escapes or undecodable bytes: show them escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


# What the API calls a query parameter is a flag on the command line: the service's messages name
# the former (`cascade=true`), a CLI user must read the latter (`--cascade`).
_API_FLAG = re.compile(r"\b(cascade|force|prune|dry_run)=true\b|\?(wait|set)=(?![\w.])")
_TWICE = re.compile(r"(--[a-z-]+) \(\1\)")


def cli_words(message: str) -> str:
    """``pass cascade=true`` -> ``pass --cascade``; ``--force (force=true)`` -> ``--force``."""
    def flag(m: re.Match[str]) -> str:
        return "--" + (m.group(1) or m.group(2)).replace("_", "-")

    return _TWICE.sub(r"\1", _API_FLAG.sub(flag, message))


def error(message: str) -> None:
    """One red line; the message is plain text (a rule like [A-Za-z0-9._-] must survive)."""
    err.print(Text.assemble(("error: ", "bold red"), one_line(cli_words(message))), highlight=False)


def note(message: str) -> None:
    """One dim line on stderr: something the user should know that is not an error."""
    err.print(Text.assemble(("note: ", "bold yellow"), one_line(message)), highlight=False)


RICH_JSON_MAX = 100_000  # characters: colouring 8,000 changes took Rich 1.4 s


def as_json(data: Any) -> None:
    """Coloured for a person at a terminal; plain (and fast) for pipes, scripts and big answers."""
    text = json.dumps(data, indent=2)
    if out.is_terminal and len(text) <= RICH_JSON_MAX:
        out.print_json(text)
    else:
        sys.stdout.write(text + "\n")


def _state(s: str) -> Text:
    return Text(s, style=STATE_STYLE.get(s, "white"))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Cells are plain text (a name a device or a user chose may hold ``[...]``: never markup);
    a ``Text`` cell keeps its style."""
    t = Table(title=Text(title), title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in r))
    emit(t)


WIDE = 1_000_000  # columns: "as wide as the content wants"


def emit(t: Table) -> None:
    """At a terminal a table fits its width; piped (a script, `| grep`, `| less`) every cell keeps
    its full text on one line however narrow COLUMNS is: `realized`, never `realiz…`."""
    if out.is_terminal:
        out.print(t)
        return
    natural = Measurement.get(out, out.options.update_width(WIDE), t).maximum
    if isinstance(t.title, str):
        t.min_width = max(t.min_width or 0, cell_len(t.title))  # nor is the title wrapped
    Console(file=out.file, width=max(natural, t.min_width or 0), soft_wrap=True).print(t)


def _refs(refs: list[dict]) -> str:
    return ", ".join(f"{r['gateway']}:{r['port']}" for r in refs)


def silos(items: list[dict]) -> None:
    table("Silos", ["name", "kind", "description"], [[s["name"], s["kind"], s["description"]] for s in items])


def _management(g: dict) -> str:
    m = g.get("management")
    return "" if m is None else f"{m['driver']} {m['address']}"


def gateways(items: list[dict]) -> None:
    """A tenant's token sees no management details (the API sends null): no such column then."""
    admin = any(g.get("management") is not None for g in items)
    paired = any(g.get("pair") for g in items)  # a pair column only where there are pairs
    rows = [
        [g["name"], g["silo"], g["vtep_ip"], *([g.get("pair") or ""] if paired else []),
         *([_management(g)] if admin else []), _mode(g.get("mode")),
         f"{g['used']}/{g['capacity']}",
         ", ".join(p["name"] + (" (switch-back)" if p["switchback"] else "") for p in g["ports"])]
        for g in items
    ]
    table("Gateways", ["name", "silo", "vtep_ip", *(["pair"] if paired else []), *(["management"] if admin else []),
                       "mode", "entries", "ports"], rows)


def _mode(mode: str | None) -> Text:
    mode = mode or "enforce"
    return Text(mode, style=MODE_STYLE.get(mode, "white"))


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
        mode = gw.get("mode", "enforce")
        held = "" if mode == "enforce" else (f" ({mode} mode: held back until `silonet gateway mode {gw['gateway']} "
                                             "enforce`)")
        title = f"{gw['gateway']}: {n} operation(s), {gw['entries']}/{gw['capacity']} entries{known}{held}"
        table(title, ["#", "operation"], [[i + 1, op["description"]] for i, op in enumerate(gw["operations"])])


def _reachable(value: bool | None) -> Text:
    return Text("unknown", "dim") if value is None else Text("yes", "green") if value else Text("no", "red")


def _faults(s: dict) -> str:
    parts = [f"{where}: {', '.join(f)}" for where, f in (s.get("faults") or {}).items()]
    parts += [f"{pv}: {why}" for pv, why in (s.get("binding_errors") or {}).items()]
    return "; ".join(parts)


def statuses(items: list[dict]) -> None:
    paired = any(s.get("pair") for s in items)
    rows = [[s["gateway"], *([s.get("pair") or ""] if paired else []), _reachable(s.get("reachable")),
             _state(s["state"]), _mode(s.get("mode")),
             s["realized_generation"], max(0, s["desired_generation"] - s["realized_generation"]) or "",
             "" if s.get("drift") is None else s["drift"],
             "" if s.get("pending_operations") is None else s["pending_operations"], _faults(s), s["last_error"]]
            for s in items]
    table("Gateways", ["gateway", *(["pair"] if paired else []), "reachable", "state", "mode", "realized gen",
                       "behind by", "drift", "pending ops", "faults", "last error"], rows)


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


def event(e: dict) -> None:
    """One event of the stream as one line: id, type, and what it is about."""
    d, kind = e.get("data") or {}, e["event"]
    if kind == "error":
        out.print(Text(f"error: {d.get('error')}", style="red"))
        return
    if kind == "intent":
        what = f"{d.get('actor')}: {d.get('action')} {d.get('object')}"
    elif kind == "attachment":
        what = Text.assemble(f"{d.get('network')} {d.get('interface_group')}/{d.get('vlan')} (VNI {d.get('vni')}): ",
                             _state(str(d.get("status"))), f" {d.get('reason') or ''}".rstrip())
    else:
        what = Text.assemble(f"gateway {d.get('gateway')}: ", _state(str(d.get("state"))),
                             f" ({d.get('condition')}){' ' + d['error'] if d.get('error') else ''}")
    out.print(Text.assemble(f"{e.get('id')} {d.get('time', '')} {kind} ", what))


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
        if any(c.get("fields") for c in data["changes"]):  # what an update changes: old -> new
            rows = [[*row, changed_fields(c.get("fields") or {})] for row, c in zip(rows, data["changes"], strict=True)]
        table(f"{verb} {len(rows)} change(s)", ["action", "kind", "name", "fields"][:len(rows[0])], rows)
    if data.get("status"):  # after --wait: how many of the gateways, which and why
        waited(data["status"], data.get("reason") or f"{data['status']} on {len(data.get('gateways', []))} "
                                                      "gateway(s)")


def waited(status: str, reason: str | None) -> None:
    """The status a --wait ended with, in its colour, and why: ``failed on 2 of 5 gateway(s): ...``
    (a reason that starts with the status), else ``degraded: <reason>``."""
    rest = "" if not reason else reason[len(status):] if reason.startswith(status) else f": {reason}"
    out.print(Text.assemble((status, f"bold {STATE_STYLE.get(status, 'yellow')}"), one_line(rest)), highlight=False)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def changed_fields(fields: dict) -> str:
    """``vni: 5000 -> 5100; tenant: acme -> globex``"""
    return "; ".join(f"{name}: {_shown(old)} -> {_shown(new)}" for name, (old, new) in fields.items())


def apply_notes(data: dict) -> None:
    """After an apply's table: what its prune deletes and what the guard says (red when it would
    refuse), then each warning as one yellow line on stderr."""
    prune = data.get("prune")
    if prune and (prune["deletes"] or prune["refused"]):
        style = "red" if prune["refused"] else "yellow" if prune["forced"] else ""
        out.print(Text(one_line(cli_words(prune["message"])), style=style), highlight=False)
    for warning in data.get("warnings", []):
        err.print(Text.assemble(("warning: ", "bold yellow"), (one_line(warning), "yellow")), highlight=False)


RENDER = {"silo": silos, "gateway": gateways, "group": groups, "network": networks}
