"""Changing a stored gateway: the JSON merge patch (RFC 7396) a ``PATCH`` sends, and which other
gateways a changed gateway moves.

The patch is applied to the gateway's representation (the create's shape), the result is checked
exactly as a create is (the schemas, then ``Inventory.put_gateway``'s invariants), so a patch can
make nothing a create could not. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from silonet.errors import InvalidInput
from silonet.model.entities import Gateway
from silonet.model.inventory import Inventory

NAME_RULE = "cannot change (a gateway keeps its name: create another and move the groups)"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: ``patch`` merged into ``target`` (neither is changed). An object merges member by
    member, ``null`` deletes a member, anything else (a list too) replaces the target whole."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def representation(gw: Gateway) -> dict[str, Any]:
    """The gateway as a create would make it (``GatewayIn``'s shape): what a patch applies to.
    ``None`` members are left out, as a create leaves them out."""
    m = gw.management
    management = {"driver": m.driver, "address": m.address, "dialect": m.dialect, "credentials": m.credentials,
                  "trust_on_first_use": m.trust_on_first_use, "host_key": m.host_key}
    out = {"name": gw.name, "silo": gw.silo, "vtep_ip": gw.vtep_ip,
           "management": {k: v for k, v in management.items() if v is not None},
           "capacity": gw.capacity, "ports": [{"name": p.name, "switchback": p.switchback} for p in gw.ports],
           "mode": gw.mode, "pair": gw.pair}
    return {k: v for k, v in out.items() if v is not None}


def patched(gw: Gateway, patch: Any) -> dict[str, Any]:
    """``patch`` merged into ``gw``'s representation, refused when it is no object or renames it."""
    if not isinstance(patch, dict):
        raise InvalidInput(field="body", rule="a merge patch of a gateway is a JSON object (RFC 7396)")
    if "name" in patch and patch["name"] != gw.name:
        raise InvalidInput(field="name", rule=NAME_RULE)
    return merge_patch(representation(gw), patch)


def mode_only(before: Gateway, after: Gateway) -> bool:
    """Only the mode differs (audited as a mode change)."""
    return before.mode != after.mode and _without_mode(before) == _without_mode(after)


def _without_mode(gw: Gateway) -> tuple:
    return gw.name, gw.vtep_ip, gw.management, gw.capacity, gw.ports, gw.silo, gw.pair


def tunnel_peers(inv: Inventory, name: str) -> tuple[set[str], set[int]]:
    """The other gateways that share a VNI with ``name`` and those VNIs: their flood lists and
    remote MACs name its tunnel IP, so a new ``vtep_ip`` changes their desired state too."""
    peers: set[str] = set()
    vnis: set[int] = set()
    for group in inv.groups_on(name):
        for network in set(inv.vlans_of(group).values()):
            vnis.add(inv.networks[network].vni)
            peers |= inv.gateways_of_network(network)
    peers.discard(name)
    return peers, vnis
