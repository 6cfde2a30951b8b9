"""Redundant gateway pairs: two gateways (MLAG or vPC members) that the rest of the fabric
sees as one VTEP, the anycast address both hold as ``vtep_ip``.

What a pair must be to work on real switches, checked before a gateway joins one: two members
at most, in one silo (one rack's ToRs are dual-homed to both), managed the same way (one driver,
and for SSH one dialect: both members get the same configuration), and the same anycast address.
Outside a pair a tunnel address stays one gateway's. Capacity stays per member: each switch
holds its own VLAN->VNI entries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Set

from silonet.errors import Conflict
from silonet.model.entities import Gateway

MEMBERS = 2  # as MLAG and vPC


def _names(names: Set[str]) -> str:
    return ", ".join(f"'{n}'" for n in sorted(names))


def check_pair(gw: Gateway, gateways: Mapping[str, Gateway], sharing_ip: Set[str], members: Set[str]) -> None:
    """Refuse ``gw`` (new or changed) when its ``vtep_ip`` or ``pair`` breaks a pair's rules.

    ``sharing_ip``: the other gateways whose ``vtep_ip`` is ``gw``'s; ``members``: the other
    gateways of ``gw.pair`` (both without ``gw`` itself)."""
    if gw.pair is None:
        if sharing_ip:
            owner = min(sharing_ip)
            hint = (f" (gateways of one redundant pair share their anycast VTEP: give both the same `pair`, "
                    f"as '{owner}' has pair '{gateways[owner].pair}')" if gateways[owner].pair else
                    " (only the two members of a redundant pair share one: give both the same `pair`)")
            raise Conflict(field="vtep_ip", rule=f"vtep_ip {gw.vtep_ip} already belongs to gateway '{owner}'{hint}")
        return
    if len(members) >= MEMBERS:
        raise Conflict(field="pair", rule=f"pair '{gw.pair}' has {MEMBERS} members already ({_names(members)}); "
                                          f"a redundant pair has {MEMBERS}, as MLAG or vPC")
    strangers = {n for n in sharing_ip if gateways[n].pair != gw.pair}
    if strangers:
        raise Conflict(field="vtep_ip", rule=f"vtep_ip {gw.vtep_ip} already belongs to gateway {_names(strangers)}, "
                                             f"which is not in pair '{gw.pair}'")
    for name in sorted(members):
        partner = gateways[name]
        where = f"pair '{gw.pair}' member '{name}'"
        if partner.vtep_ip != gw.vtep_ip:
            raise Conflict(field="vtep_ip", rule=f"the members of a pair share one anycast VTEP, and {where} has "
                                                 f"vtep_ip {partner.vtep_ip}, not {gw.vtep_ip}")
        if partner.silo != gw.silo:
            raise Conflict(field="silo", rule=f"the members of a pair serve one silo, and {where} is in "
                                              f"{_silo(partner.silo)}, not {_silo(gw.silo)}")
        if partner.management.driver != gw.management.driver:
            raise Conflict(field="management.driver", rule=f"both members of a pair are managed alike, and {where} "
                                                           f"uses driver {partner.management.driver}")
        if partner.management.dialect != gw.management.dialect and gw.management.driver == "ssh":
            raise Conflict(field="management.dialect", rule=f"both members of a pair get the same configuration, and "
                                                            f"{where} speaks dialect {partner.management.dialect}")


def check_pairs(current: Mapping[str, Gateway], changed: Mapping[str, Gateway]) -> None:
    """``check_pair`` for every gateway of ``changed`` against the gateways as they will be once all
    of them are in (a topology file's): a pair renamed, formed, split or moved to a new anycast
    address in one file passes in any order, as one gateway change at a time could not."""
    final = {**current, **changed}
    by_ip: dict[str, set[str]] = defaultdict(set)
    by_pair: dict[str, set[str]] = defaultdict(set)
    for name, gw in final.items():
        by_ip[gw.vtep_ip].add(name)
        if gw.pair is not None:
            by_pair[gw.pair].add(name)
    for name in sorted(changed):
        gw = final[name]
        check_pair(gw, final, by_ip[gw.vtep_ip] - {name}, by_pair[gw.pair] - {name} if gw.pair else set())


def _silo(name: str | None) -> str:
    return f"silo '{name}'" if name else "no silo"
