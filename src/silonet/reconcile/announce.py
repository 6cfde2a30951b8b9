"""What the recorder announces on the event stream (store/events.py): a gateway whose condition
changed (reachable, failed, held, decommissioning, up) and every attachment whose status changed
because a gateway's record did.

The recorder's transaction takes the event lock first (``Meta``'s row: intent writes take it first
too, so neither waits for the other's rows while holding its own), then records, then compares each
affected attachment's status by the rule of ``plan/status.py`` with the one last announced
(``attachment_status``) and announces the difference: whichever replica records a change announces
it, once. What the inventory says about the attachments is taken before the transaction, under the
intent cache's lock (never inside it: a writer holding that lock waits for the database).

Which attachments are compared is proportional to the change (``Moved``): an intent change names
its VNIs, and a record that moved only its realized generation moves only the attachments made
between its old and its new one (``gateway_status`` depends on nothing else there). The recording's
transaction checks that against the records as stored before and after (``covers``): when another
writer moved them meanwhile, it starts again comparing everything there (``Widen``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from silonet.model import Inventory
from silonet.plan.status import Verdict, record_state
from silonet.reconcile.rule import Judged, Watched, judge
from silonet.store import events, prepared
from silonet.store.events import Event
from silonet.store.repo import Realization, Repository


@dataclass(frozen=True)
class Moved:
    """Which attachments a batch may move at one gateway, short of every attachment of every network
    it carries (a scope's None): those of the networks of ``vnis`` (an intent change named them:
    each of their attachments, a peer added or gone moves the others), and those made at a generation
    in (``since``, ``upto``] (its record moved only its realized generation, from one to the other)."""

    vnis: frozenset[int] = frozenset()
    since: int = 0
    upto: int = 0

    def __or__(self, other: Moved) -> Moved:
        if self.upto <= self.since:
            since, upto = other.since, other.upto
        elif other.upto <= other.since:
            since, upto = self.since, self.upto
        else:  # the hull: a superset of both
            since, upto = min(self.since, other.since), max(self.upto, other.upto)
        return Moved(self.vnis | other.vnis, since, upto)


Scope = Mapping[str, Moved | None]  # per gateway of a batch: what it may move (None: everything there)
# (since, upto) -> the VNIs the writes of generations since+1..upto named, None when one is not known
# (another process's, or one naming none): an attachment is made at its network's VNI.
Named = Callable[[int, int], frozenset[int] | None]


def merge(a: Moved | None, b: Moved | None) -> Moved | None:
    return None if a is None or b is None else a | b


class Stale(Exception):
    """The records a batch's statuses were judged on (``judge``, outside the transaction) moved before
    its announcing transaction read them: judge again."""


class Widen(Exception):
    """A record moved more than the batch's scope said (another writer was there meanwhile): the
    recording starts again with everything at ``gateways`` compared."""

    def __init__(self, gateways: Iterable[str]) -> None:
        self.gateways = tuple(sorted(gateways))
        super().__init__(f"records moved beyond the batch at {', '.join(self.gateways)}")


def _inputs(r: Realization) -> tuple:
    """What of a record ``gateway_status`` reads besides the realized generation."""
    return r.reachable is False, r.last_error, r.binding_errors or {}, r.mode


def covers(moved: Moved | None, old: Realization | None, new: Realization | None) -> bool:
    """Whether ``moved`` names every attachment whose status at this gateway may differ between its
    records ``old`` and ``new`` (``plan/status.gateway_status``): with nothing but the realized
    generation moved, those made between the two generations; else every one (None)."""
    if moved is None:
        return True
    if old is None or new is None:
        return old is None and new is None
    if _inputs(old) != _inputs(new):
        return False
    lo, hi = sorted((old.realized_generation, new.realized_generation))
    return lo == hi or (moved.since <= lo and hi <= moved.upto)


def watched(inv: Inventory, scope: Scope, named: Named | None = None) -> list[Watched]:
    """The attachments whose status may move when the batch's gateways' records do (``scope``: what
    each may move, None every attachment of every network it carries: peers degrade too; ``named``:
    what the writes of a span of generations named, when known, so a span looks only at those
    networks). Call with the intent cache's lock held."""
    whole: set[str] = set()  # networks whose every attachment is watched
    spans: dict[tuple[int, int], set[str]] = {}  # (since, upto) -> networks: their attachments made then
    for gw, moved in scope.items():
        if moved is not None:
            whole.update(net for vni in moved.vnis if (net := inv.network_of_vni(vni)) is not None)
            if moved.upto <= moved.since:
                continue
        carried = {net for group in inv.groups_on(gw) for net in inv.vlans_of(group).values()}
        if moved is None:
            whole |= carried
        else:
            spans.setdefault((moved.since, moved.upto), set()).update(carried)
    keys: set[tuple[str, int]] = set()
    for net in whole:
        keys.update(inv.attachment_keys(net))
    for (since, upto), nets in spans.items():
        if named is not None and (vnis := named(since, upto)) is not None:  # attachments are made at those VNIs
            nets = nets & {net for vni in vnis if (net := inv.network_of_vni(vni)) is not None}
        for net in nets - whole:
            keys.update(k for k in inv.attachment_keys(net) if since < inv.attachments[k].generation <= upto)
    networks: dict[str, tuple[tuple[str, ...], dict[str, str | None], dict[str, str]]] = {}  # carriers, pairs, modes
    ports: dict[str, dict[str, tuple[str, ...]]] = {}  # per group: its bound ports per gateway
    out = []
    for key in sorted(keys):
        att = inv.attachments[key]
        name = att.network
        if name in inv.quarantined:
            continue
        if name not in networks:
            carriers = tuple(sorted(inv.carriers_of(name)))
            networks[name] = carriers, {g: inv.gateways[g].pair for g in carriers}, \
                {g: inv.gateways[g].mode for g in carriers}
        group = inv.groups[att.group]
        if att.group not in ports:
            ports[att.group] = {g: group.bound_ports(g) for g in group.gateways}
        carriers, pairs, modes = networks[name]
        out.append(Watched(name, inv.networks[name].tenant, inv.networks[name].vni, att.group, att.vlan,
                           att.generation, group.gateways, carriers, ports[att.group], pairs, modes))
    return out


def condition(r: Realization | None) -> str | None:
    """What a gateway event announces a change of (not every generation a pass reaches)."""
    if r is None:
        return None
    if r.reachable is False:
        return "unreachable"
    state = record_state(r.desired_generation, r.realized_generation, r.last_error, r.decommissioning, r.mode)
    return state if state in ("failed", "held", "decommissioning") else "up"


def lock(session: Session) -> None:
    """The event lock (Meta's row), before anything else the transaction writes."""
    prepared.run(session, prepared.EVENT_LOCK)


def names(scope: Scope, watch: list[Watched]) -> set[str]:
    """The gateways whose records an announcement reads: the batch's and every carrier watched."""
    return set(scope) | {g for w in watch for g in w.gateways}


def announce(session: Session, scope: Scope, watch: list[Watched],
             before: Mapping[str, Realization] | None = None, judged: Judged | None = None) -> list[int]:
    """Gateway and attachment events for what changed at the ``scope``'s gateways (recorded just now,
    or named by an intent change) and on the ``watch``ed attachments; their ids. Each gateway's
    condition is compared with the one last announced (``gateway_status.condition``), so a mode or a
    decommissioning written by intent is announced too. ``before``: the records the batch moved, as
    they were before it; raises ``Widen`` where one moved beyond its scope (nothing is announced).
    ``judged``: the statuses judged before the transaction; raises ``Stale`` unless the records read
    now are the ones they were judged on (None: judged here)."""
    repo = Repository(session)
    gateways = sorted(scope)
    real = repo.realizations(names(scope, watch), observed=False)
    if wide := [g for g, old in (before or {}).items() if not covers(scope.get(g), old, real.get(g))]:
        raise Widen(wide)
    if judged is not None and judged.real != real:
        raise Stale()
    said = dict(prepared.run(session, prepared.CONDITIONS, {"names": gateways}).all())
    out: list[Event] = []
    moved = []
    for name in sorted(said):
        new = real.get(name)
        now = condition(new)
        if new is None or now == said[name]:
            continue
        moved.append({"gw": name, "to": now})
        out.append(Event("gateway", {"gateway": name, "condition": now, "state": new.state,
                                     "reachable": new.reachable, "mode": new.mode, "error": new.last_error,
                                     "realized_generation": new.realized_generation}))
    if moved:  # one executemany: hundreds of gateways may change their condition in one batch
        prepared.run(session, prepared.SET_CONDITION, moved)
    out += _attachments(session, (judged or judge(real, watch)).verdicts if watch else {})
    return events.publish(session, out)


def _attachments(session: Session, verdicts: Mapping[tuple[str, str, int], tuple[Watched, Verdict, Verdict]]
                 ) -> list[Event]:
    if not verdicts:
        return []
    out, new_rows, moved = [], [], []
    found_rows = prepared.run(session, prepared.ANNOUNCED, {"names": sorted({k[0] for k in verdicts})})
    for att_id, network, group, vlan, announced in found_rows:
        found = verdicts.get((network, group, vlan))
        if found is None or found[1].status == announced:
            continue
        w, admin, tenant = found
        if announced is None:
            new_rows.append({"attachment_id": att_id, "status": admin.status, "reason": admin.reason})
        else:
            moved.append({"aid": att_id, "to": admin.status, "why": admin.reason})
        out.append(Event("attachment", {"network": w.network, "interface_group": w.group, "vlan": w.vlan,
                                        "vni": w.vni, "status": admin.status, "reason": admin.reason,
                                        "gateways": list(admin.gateways), "tenant_reason": tenant.reason},
                         w.tenant))
    if new_rows:
        prepared.run(session, prepared.INSERT_ANNOUNCED, new_rows)
    if moved:  # one executemany
        prepared.run(session, prepared.MOVE_ANNOUNCED, moved)
    return out
