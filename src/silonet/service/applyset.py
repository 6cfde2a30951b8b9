"""Apply sets: which objects a prune may delete, the guard in front of it, and how an apply
describes what it changes (each field old -> new, warnings).

An object belongs to the apply set that last applied it (kubectl's applyset idea): ``apply
--set NAME`` puts every object the file declares in NAME, also one that is unchanged but was
in another set or in none (made directly by create/attach, never pruned). A prune of NAME
deletes only NAME's objects the file no longer declares, so two files (two teams) share one
server without deleting each other's objects, and a file never deletes what was made by hand.
An object of the file may name its own set (``apply_set``; ``''``: none): an apply that names a set
takes only objects that name none or that one; one that names none puts each object in the set it
names (absent or null: ``default``), so an export (``service/export.py``) applied back keeps them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from silonet.errors import Conflict, InvalidInput
from silonet.model import Attachment, Inventory
from silonet.service import schemas as S

DEFAULT_SET = "default"
SHOWN = 5  # named objects per message; the rest counted
NOUNS = {"attachment": ("attachment", "attachments"), "network": ("network", "networks"),
         "interface-group": ("interface group", "interface groups"), "gateway": ("gateway", "gateways"),
         "silo": ("silo", "silos")}
Outside = Mapping[str, Mapping[Any, str | None]]  # kind -> object -> its set, for objects not in this one


class PruneRefused(Conflict):
    """A prune that would delete more than the file declares (or anything from an empty file)."""

    code = "prune_refused"


def count(n: int, kind: str) -> str:
    one, many = NOUNS[kind]
    return f"{n} {one if n == 1 else many}"


def att_ref(key: tuple[str, int]) -> str:
    return f"({key[0]}, {key[1]})"


def named(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def owner(apply_set: str | None) -> str:
    return "made directly (in no apply set)" if apply_set is None else f"in apply set '{apply_set}'"


@dataclass
class Prune:
    """What a prune of one set deletes, in the order it deletes it."""

    attachments: list[Attachment] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    silos: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"attachment": len(self.attachments), "network": len(self.networks),
                "interface-group": len(self.groups), "gateway": len(self.gateways), "silo": len(self.silos)}


# ------------------------------------------------------------------ objects' own sets
def entries(topo: S.Topology) -> Iterator[tuple[str, BaseModel]]:
    """Every object of a file, with the field that names it (``networks[n].attachments[(g, 7)]``)."""
    for section in ("silos", "gateways", "interface_groups", "networks"):
        for item in getattr(topo, section):
            yield f"{section}[{item.name}]", item
    for net in topo.networks:
        for att in net.attachments:
            yield f"networks[{net.name}].attachments[({att.interface_group}, {att.vlan})]", att


def own_set(body: BaseModel) -> str | None:
    """The apply set an object of the file names (``''``: none); None: it names none (absent, or null
    as clients that send every field send it)."""
    return body.apply_set  # type: ignore[attr-defined, no-any-return]


def own_sets(topo: S.Topology) -> bool:
    """Any object of the file names its apply set."""
    return any(own_set(body) is not None for _, body in entries(topo))


def check_named(topo: S.Topology, set_name: str) -> None:
    """An apply that names a set takes objects of no other: each object's ``apply_set`` is absent (or
    null) or that set; 422 naming every object that says otherwise, before anything is read or written."""
    def refused(where: str, value: str) -> InvalidInput:
        said = f"'{value}'" if value else "'' (no apply set)"
        return InvalidInput(field=f"{where}.apply_set", rule=(
            f"{said} is not the apply set this apply names ('{set_name}'): when an apply names a set with --set "
            f"(?set=), each object's apply_set is absent or that set; apply without a set to keep each object's own"))

    found = [refused(where, named) for where, body in entries(topo)
             if (named := own_set(body)) is not None and named != set_name]
    if found:
        raise found[0].with_more(found[1:])


def target(body: BaseModel, set_name: str, own: bool) -> str | None:
    """The set an object of the file goes to (None: none): the one it names if the apply takes objects'
    own sets (``own``), else the apply's."""
    named = own_set(body) if own else None
    return set_name if named is None else named or None


def declared(topo: S.Topology) -> int:
    """Objects a file declares; attachments count one each."""
    return (len(topo.silos) + len(topo.gateways) + len(topo.interface_groups) + len(topo.networks)
            + sum(len(n.attachments) for n in topo.networks))


def plan_prune(inv: Inventory, outside: Outside, set_name: str, wanted_atts: dict[tuple[str, int], str],
               names: dict[str, set[str]]) -> Prune:
    """The objects of ``set_name`` the file no longer declares (an attachment whose (group, VLAN)
    the file gives another network is deleted too: the file's one is made after)."""
    def mine(kind: str, have: Any, section: str) -> list[str]:
        return sorted(n for n in have if n not in outside[kind] and n not in names[section])

    plan = Prune(
        attachments=[att for key, att in sorted(inv.attachments.items())
                     if key not in outside["attachment"] and wanted_atts.get(key) != att.network],
        networks=mine("network", inv.networks, "networks"),
        groups=mine("interface-group", inv.groups, "interface_groups"),
        gateways=mine("gateway", set(inv.gateways) - inv.decommissioning, "gateways"),
        silos=mine("silo", inv.silos, "silos"),
    )
    going = {att.key for att in plan.attachments}
    for net in plan.networks:  # what another set (or a person) attached to it is not this prune's to delete
        kept = [att.key for att in inv.attachments_of(net) if att.key not in going]
        if kept:
            whose = sorted({owner(outside["attachment"].get(k)) for k in kept})
            raise Conflict(field="prune", rule=(
                f"apply set '{set_name}' would prune network '{net}', but its attachment(s) "
                f"{named([att_ref(k) for k in kept])} are not in that set ({'; '.join(whose)}): detach them, or "
                f"declare the network in the file again"))
    return plan


def guard(plan: Prune, declared_objects: int, set_name: str, force: bool, dry_run: bool) -> S.PruneOut:
    """Whether the prune may run: not when it deletes more objects than the file declares (and
    so anything from an empty file) unless forced. A real apply raises PruneRefused; a dry run
    says what the guard would do."""
    counts = plan.counts()
    deletes = sum(counts.values())
    what = ", ".join(count(n, kind) for kind, n in counts.items() if n)
    objects = "object" if deletes == 1 else "objects"
    over = deletes > declared_objects
    file = ("the file declares nothing" if declared_objects == 0 else
            f"the file declares {declared_objects} object{'' if declared_objects == 1 else 's'}")
    reason = (f"it would delete {deletes} {objects} ({what}), more than the {declared_objects} the file declares"
              if declared_objects else f"it would delete {deletes} {objects} ({what}) and {file}")
    cure = "check the file and --set, or pass --force (force=true) to delete them anyway"
    if over and not force and not dry_run:
        raise PruneRefused(field="prune", rule=f"refused for apply set '{set_name}': {reason}; {cure}")
    if not deletes:
        message = f"prune of apply set '{set_name}' deletes nothing"
    elif not over:
        message = f"prune of apply set '{set_name}' deletes {deletes} {objects} ({what}); {file}"
    elif force:
        message = f"prune of apply set '{set_name}' deletes {deletes} {objects} ({what}), more than the guard " \
                  f"allows ({file}): done because of --force"
    else:
        message = f"the guard would refuse this prune of apply set '{set_name}': {reason}; {cure}"
    return S.PruneOut(set=set_name, declared=declared_objects, deletes={k: n for k, n in counts.items() if n},
                      refused=over and not force, forced=over and force, message=message)


# --------------------------------------------------------------------- field diffs
def _value(key: str, value: Any) -> Any:
    if key == "ports":
        return [p["name"] + (" (switchback)" if p["switchback"] else "") for p in value]
    if key in ("members", "switchback"):
        return [f"{r['gateway']}:{r['port']}" for r in value]
    return value


def flat(out: BaseModel | None) -> dict[str, Any]:
    """An output model as the fields an apply compares (nested ones dotted, lists as short strings)."""
    if out is None:
        return {}
    flat_: dict[str, Any] = {}
    for key, value in out.model_dump(mode="json").items():
        if key in ("name", "violations", "used", "attachments"):
            continue
        if isinstance(value, dict):
            flat_.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat_[key] = _value(key, value)
    return flat_


def changed_fields(before: BaseModel | None, after: BaseModel | None) -> dict[str, tuple[Any, Any]]:
    """Each field that differs: name -> (old, new)."""
    old, new = flat(before), flat(after)
    return {k: (old.get(k), new.get(k)) for k in [*old, *(k for k in new if k not in old)]
            if old.get(k) != new.get(k)}


# ------------------------------------------------------------------------ warnings
def live_network_moves(name: str, inv: Inventory, old_vni: int, new_vni: int, old_tenant: str,
                       new_tenant: str) -> list[str]:
    """Warnings for a VNI or tenant change of a network that has attachments (call before the change)."""
    atts = inv.attachments_of(name)
    if not atts:
        return []
    gateways = sorted(inv.gateways_of_network(name))
    live = (f"network {name} is live ({count(len(atts), 'attachment')}"
            + (f" on {named(gateways)})" if gateways else ")"))
    out = []
    if old_vni != new_vni:
        out.append(f"{live}: its VNI changes {old_vni} -> {new_vni}; every gateway that carries it is reconfigured "
                   "and its traffic stops until they all realized the change")
    if old_tenant != new_tenant:
        out.append(f"{live}: its tenant changes {old_tenant} -> {new_tenant}; {old_tenant}'s tokens no longer see "
                   f"it, {new_tenant}'s do")
    return out


def old_attachments_stay(net: S.TopologyNetworkIn, new: list[tuple[str, int]], inv: Inventory, outside: Outside,
                         pruned: bool) -> list[str]:
    """A network the file gives a new attachment while it keeps one the file does not list (a
    VLAN edited in the file without --prune: now two attachments)."""
    listed = {(a.interface_group, a.vlan) for a in net.attachments}
    kept = [att.key for att in inv.attachments_of(net.name) if att.key not in listed]
    if not new or not kept:
        return []
    gets = f"network {net.name} gets {named([att_ref(k) for k in new])}"
    out = []
    ours = [att_ref(k) for k in kept if k not in outside["attachment"]]
    if ours and not pruned:
        one = len(ours) == 1
        out.append(f"{gets} and keeps {named(ours)}, which the file no longer lists: the old "
                   f"attachment{'' if one else 's'} {named(ours)} {'stays' if one else 'stay'}; "
                   f"--prune removes {'it' if one else 'them'}")
    others = [k for k in kept if k in outside["attachment"]]
    if others:
        whose = "; ".join(f"{att_ref(k)} {owner(outside['attachment'][k])}" for k in others[:SHOWN])
        out.append(f"{gets} and keeps {named([att_ref(k) for k in others])}, which the file does not list and "
                   f"no prune of this set removes ({whose}): detach it if it should go")
    return out


def moves(moved: list[tuple[str, str, str, str | None]]) -> list[str]:
    """Objects taken from a named set into another one, or into none (kind, name, old set, new set)."""
    by_sets: dict[tuple[str, str | None], list[str]] = {}
    for kind, name, old, new in moved:
        by_sets.setdefault((old, new), []).append(f"{NOUNS[kind][0]} {name}")
    return [f"{len(objs)} object(s) move from apply set '{old}' to '{new}' ({named(objs)}): the set that applied "
            f"an object last owns it, so now a prune of '{new}' removes them, one of '{old}' does not"
            if new is not None else
            f"{len(objs)} object(s) leave apply set '{old}' for none ({named(objs)}): no prune removes them now"
            for (old, new), objs in sorted(by_sets.items(), key=lambda item: (item[0][0], item[0][1] or ""))]
