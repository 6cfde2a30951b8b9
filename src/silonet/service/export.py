"""The export: the whole intent (or one apply set's objects) in the shape ``POST /v1/apply`` takes
(``schemas.Topology``), each object with the apply set it belongs to (``apply_set``; ``''``: none).

Applied back without a set it changes nothing, every object staying in its set
(``service/applyset.py``); one set's export applied with ``--set S --prune --force`` makes
another store's set S the same. Gateways carry their management as stored: credentials are
references (``env:``, ``file:``), never secrets. Gateways being decommissioned are deleted intent
and are left out.

It reads the intent the cache holds and one query per table for the apply sets, so it costs
the same few statements for 20 objects or 200,000; the answer is built as plain JSON data
(no model per object), and the generation read before and after says nothing committed in
between (else it reads again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from silonet.errors import Conflict
from silonet.model import Gateway, InterfaceGroup, Inventory, Silo, VirtualNetwork, rules
from silonet.store.repo import Repository

if TYPE_CHECKING:
    from silonet.service.manager import Manager

ATTEMPTS = 5  # reads while other processes commit between its statements, before it gives up (409)
Sets = Mapping[str, Mapping[Any, str | None]]  # kind -> object -> its apply set (``Repository.outside_apply_set``)


def export_topology(mgr: Manager, apply_set: str | None = None) -> dict[str, Any]:
    """The intent as a topology file's data (JSON types); ``apply_set``: that set's objects only."""
    if apply_set is not None:
        rules.new_name(apply_set, "set")
    for _ in range(ATTEMPTS):
        with mgr.db.read() as session, mgr.cache.lock:  # the lock: the cached intent does not change meanwhile
            inv, generation = mgr.cache.current(session)
            repo = Repository(session)
            # set S: the objects outside S with their sets (the rest is S); all: every object ("" names none)
            sets = repo.outside_apply_set(apply_set or "")
            if repo.generation() == generation:
                return topology(inv, sets, apply_set)
    raise Conflict(field="export", rule=f"the intent changed {ATTEMPTS} times while it was read: try again")


def topology(inv: Inventory, sets: Sets, apply_set: str | None = None) -> dict[str, Any]:
    """``inv`` as ``Topology`` data. ``apply_set`` None: everything, ``sets`` holding every object's set;
    else only that set's objects, ``sets`` holding the objects outside it. A network outside the set that
    carries attachments of the set is listed too, with its own set, to hold them (an apply that names the
    set refuses it: the set is not whole without that network)."""
    def set_of(kind: str, key: Any) -> str:
        found = sets[kind].get(key, apply_set) if apply_set is not None else sets[kind].get(key)
        return found or ""  # in none: an apply without a set keeps it in none (absent would mean default)

    def keep(kind: str, key: Any) -> bool:
        return apply_set is None or key not in sets[kind]

    attachments: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(inv.attachments):
        if keep("attachment", key):
            att = inv.attachments[key]
            attachments.setdefault(att.network, []).append(
                {"interface_group": att.group, "vlan": att.vlan, "apply_set": set_of("attachment", key)})
    return {
        "silos": [_silo(inv.silos[n], set_of("silo", n)) for n in sorted(inv.silos) if keep("silo", n)],
        "gateways": [_gateway(inv.gateways[n], set_of("gateway", n)) for n in sorted(inv.gateways)
                     if n not in inv.decommissioning and keep("gateway", n)],
        "interface_groups": [_group(inv.groups[n], set_of("interface-group", n)) for n in sorted(inv.groups)
                             if keep("interface-group", n)],
        "networks": [_network(inv.networks[n], set_of("network", n), attachments.get(n, []))
                     for n in sorted(inv.networks) if keep("network", n) or n in attachments],
    }


def _silo(s: Silo, apply_set: str) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind.value, "description": s.description, "apply_set": apply_set}


def _gateway(g: Gateway, apply_set: str) -> dict[str, Any]:
    m = g.management
    return {"name": g.name, "silo": g.silo, "vtep_ip": g.vtep_ip,
            "management": {"driver": m.driver, "address": m.address, "dialect": m.dialect,
                           "credentials": m.credentials, "trust_on_first_use": m.trust_on_first_use,
                           "host_key": m.host_key},
            "capacity": g.capacity, "ports": [{"name": p.name, "switchback": p.switchback} for p in g.ports],
            "mode": g.mode, "pair": g.pair, "apply_set": apply_set}


def _group(g: InterfaceGroup, apply_set: str) -> dict[str, Any]:
    return {"name": g.name, "silo": g.silo,
            "members": [{"gateway": r.gateway, "port": r.port} for r in g.members],
            "switchback": [{"gateway": r.gateway, "port": r.port} for r in g.switchback],
            "apply_set": apply_set}


def _network(n: VirtualNetwork, apply_set: str, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": n.name, "tenant": n.tenant, "vni": n.vni, "apply_set": apply_set, "attachments": attachments}

