"""What the recorder announces on the event stream (store/events.py): a gateway whose condition
changed (reachable, failed, held, decommissioning, up) and every attachment whose status changed
because a gateway's record did.

The recorder's transaction takes the event lock first (``Meta``'s row: intent writes take it first
too, so neither waits for the other's rows while holding its own), then records, then compares each
affected attachment's status by the rule of ``plan/status.py`` with the one last announced
(``attachment_status``) and announces the difference: whichever replica records a change announces
it, once. What the inventory says about the attachments is taken before the transaction, under the
intent cache's lock (never inside it: a writer holding that lock waits for the database).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from silonet.model import Inventory
from silonet.plan.status import TENANT_GATEWAY_ERROR, Seen, gateway_status, record_state, summarize
from silonet.store import events
from silonet.store.events import Event
from silonet.store.repo import Realization, Repository
from silonet.store.tables import (
    AttachmentRow,
    AttachmentStatusRow,
    GatewayRow,
    GatewayStatusRow,
    GroupRow,
    Meta,
    NetworkRow,
)


@dataclass(frozen=True)
class Watched:
    """An attachment as the inventory said when a batch was recorded: what its status depends on."""

    network: str
    tenant: str
    vni: int
    group: str
    vlan: int
    generation: int
    own: frozenset[str]  # its interface group's gateways
    gateways: tuple[str, ...]  # every gateway of its network
    ports: Mapping[str, tuple[str, ...]]  # the group's bound ports per own gateway
    pairs: Mapping[str, str | None]  # each gateway's redundant pair


def watched(inv: Inventory, gateways: Iterable[str]) -> list[Watched]:
    """The attachments whose status may move when ``gateways``' records do: every attachment of every
    network those gateways carry (peers degrade too). Call with the intent cache's lock held."""
    networks: set[str] = set()
    for gw in gateways:
        for group in inv.groups_on(gw):
            networks.update(inv.vlans_of(group).values())
    out = []
    for name in sorted(networks):
        if name in inv.quarantined:
            continue
        net, carriers = inv.networks[name], tuple(sorted(inv.carriers_of(name)))
        pairs = {g: inv.gateways[g].pair for g in carriers}
        for att in inv.attachments_of(name):
            group = inv.groups[att.group]
            out.append(Watched(name, net.tenant, net.vni, att.group, att.vlan, att.generation, group.gateways,
                               carriers, {g: group.bound_ports(g) for g in group.gateways}, pairs))
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
    session.execute(update(Meta).where(Meta.id == 1).values(event_seq=Meta.event_seq))


def announce(session: Session, gateways: Iterable[str], watch: list[Watched]) -> list[int]:
    """Gateway and attachment events for what changed at ``gateways`` (recorded just now, or named
    by an intent change) and on the ``watch``ed attachments; their ids. Each gateway's condition is
    compared with the one last announced (``gateway_status.condition``), so a mode or a
    decommissioning written by intent is announced too."""
    repo = Repository(session)
    names = set(gateways) | {g for w in watch for g in w.gateways}
    real = repo.realizations(names, observed=False)
    st = GatewayStatusRow
    said = dict(session.execute(select(GatewayRow.name, st.condition).join(st, st.gateway_id == GatewayRow.id)
                                .where(GatewayRow.name.in_(sorted(set(gateways))))).all())
    out: list[Event] = []
    for name in sorted(said):
        new = real.get(name)
        now = condition(new)
        if new is None or now == said[name]:
            continue
        session.execute(update(st).where(st.gateway_id == select(GatewayRow.id).where(GatewayRow.name == name)
                                         .scalar_subquery()).values(condition=now))
        out.append(Event("gateway", {"gateway": name, "condition": now, "state": new.state,
                                     "reachable": new.reachable, "mode": new.mode, "error": new.last_error,
                                     "realized_generation": new.realized_generation}))
    out += _attachments(session, real, watch)
    return events.publish(session, out)


def _attachments(session: Session, real: Mapping[str, Realization], watch: list[Watched]) -> list[Event]:
    if not watch:
        return []
    verdicts = {}
    for w in watch:
        seen = []
        for gw in w.gateways:
            r = real.get(gw)
            error = next((e for p in w.ports.get(gw, ()) if r and (e := r.binding_error(p, w.vlan))), None)
            status, reason = gateway_status(r, w.generation, error, "enforce" if r is None else r.mode)
            seen.append(Seen(gw, status, reason, w.pairs.get(gw)))
        hidden = [Seen(e.gateway, e.status, TENANT_GATEWAY_ERROR if (r := real.get(e.gateway)) and r.last_error
                       and e.reason == r.last_error else e.reason, e.pair) for e in seen]
        admin, tenant = summarize(seen, w.own), summarize(hidden, w.own, tenant=True)
        verdicts[(w.network, w.group, w.vlan)] = (w, admin, tenant)
    q = (select(AttachmentRow.id, NetworkRow.name, GroupRow.name, AttachmentRow.vlan, AttachmentStatusRow.status)
         .join(NetworkRow, NetworkRow.id == AttachmentRow.network_id)
         .join(GroupRow, GroupRow.id == AttachmentRow.group_id)
         .outerjoin(AttachmentStatusRow, AttachmentStatusRow.attachment_id == AttachmentRow.id)
         .where(NetworkRow.name.in_(sorted({w.network for w in watch}))))
    out, new_rows, moved = [], [], []
    for att_id, network, group, vlan, announced in session.execute(q):
        found = verdicts.get((network, group, vlan))
        if found is None or found[1].status == announced:
            continue
        w, admin, tenant = found
        (new_rows if announced is None else moved).append(
            {"attachment_id": att_id, "status": admin.status, "reason": admin.reason})
        out.append(Event("attachment", {"network": w.network, "interface_group": w.group, "vlan": w.vlan,
                                        "vni": w.vni, "status": admin.status, "reason": admin.reason,
                                        "gateways": list(admin.gateways), "tenant_reason": tenant.reason},
                         w.tenant))
    if new_rows:
        session.execute(AttachmentStatusRow.__table__.insert(), new_rows)
    for row in moved:
        session.execute(update(AttachmentStatusRow).where(AttachmentStatusRow.attachment_id == row["attachment_id"])
                        .values(status=row["status"], reason=row["reason"]))
    return out
