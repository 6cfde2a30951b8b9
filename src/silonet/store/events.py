"""Writing the event stream: an event's id is allocated from ``Meta.event_seq`` in the writing
transaction (the row every intent write locks first), so ids follow commit order on SQLite and
PostgreSQL alike and every replica serves the same ids; each event becomes one delivery row per
webhook that takes its type, in the same transaction (delivered at least once, even across a
restart: service/webhooks.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from silonet.store import prepared
from silonet.store.tables import DeliveryRow, EventRow, Meta

EVENT_TYPES = ("intent", "attachment", "gateway")


@dataclass(frozen=True)
class Event:
    """What happened (``type`` one of EVENT_TYPES), its JSON ``data``, and whose network it is
    about (``tenant``; None: only admins see it)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None


def body(event_id: int, time: datetime, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event as the stream's ``data:`` line and a webhook's POST body carry it (the time in UTC
    on every engine: SQLite hands back naive times)."""
    when = time if time.tzinfo is not None else time.replace(tzinfo=UTC)
    return {"id": event_id, "type": type_, "time": when.isoformat(), **data}


def publish(session: Session, events: Sequence[Event]) -> list[int]:
    """Append ``events`` (in this order) inside the caller's transaction; their ids."""
    if not events:
        return []
    last = prepared.run(session, prepared.EVENT_IDS, {"n": len(events)}).scalar_one()
    first, now = last - len(events) + 1, datetime.now(UTC)
    rows = [{"id": first + i, "time": now, "type": e.type, "tenant": e.tenant, "data": e.data}
            for i, e in enumerate(events)]
    prepared.run(session, prepared.INSERT_EVENTS, rows)
    hooks = prepared.run(session, prepared.WEBHOOKS).all()
    deliveries = [{"webhook_id": hook, "event_id": r["id"], "event_type": r["type"],
                   "body": body(r["id"], now, r["type"], r["data"]), "state": "pending", "attempts": [],
                   "created": now, "next_at": now}
                  for r in rows for hook, types in hooks if r["type"] in (types or EVENT_TYPES)]
    if deliveries:
        session.execute(insert(DeliveryRow), deliveries)
    return [r["id"] for r in rows]


Audit = tuple[str, str, dict | None, dict | None]  # (action, object, before, after), as the audit log keeps it
NOT_INTENT = ("token/",)  # audited, but not intent: who holds which token is nobody's event


def intent(session: Session, actor: str, entries: Sequence[Audit]) -> list[int]:
    """The ``intent`` events of audit entries (what the audit log records), each naming the
    network, interface group, VLAN, VNI, gateway or silo it is about, and the network's tenant (who
    may see it); never the before/after documents (admins read those in the audit log)."""
    parsed = [(action, obj, _about(obj)) for action, obj, _b, _a in entries if not obj.startswith(NOT_INTENT)]
    names = {about["network"] for *_, about in parsed if "network" in about}
    nets: dict[str, tuple[str, int]] = {}
    if names:
        found = prepared.run(session, prepared.NETWORKS_NAMED, {"names": sorted(names)})
        nets = {name: (tenant, vni) for name, tenant, vni in found}
    docs = {obj: after or before or {} for _action, obj, before, after in entries}
    out = []
    for action, obj, about in parsed:
        tenant = None
        if (net := about.get("network")) is not None:
            doc = docs[obj]
            tenant, vni = nets.get(net) or (doc.get("tenant"), doc.get("vni"))
            if vni is not None:
                about["vni"] = vni
        out.append(Event("intent", {"action": action, "object": obj, "actor": actor, **about}, tenant))
    return publish(session, out)


def _about(obj: str) -> dict[str, Any]:
    """What an audited object path names: ``network/N``, ``network/N/attachments/G/V``,
    ``attachment/N/G/V`` (apply), ``gateway/G``, ``interface-group/G``, ``silo/S``, ``tenant/T``..."""
    parts = obj.split("/")
    kind = parts[0]
    if kind == "network" and len(parts) >= 5 and parts[2] == "attachments":
        return _attachment(parts[1], parts[3], parts[4])
    if kind == "attachment" and len(parts) >= 4:
        return _attachment(parts[1], parts[2], parts[3])
    field = {"network": "network", "gateway": "gateway", "interface-group": "interface_group", "silo": "silo",
             "tenant": "tenant", "webhook": "webhook"}.get(kind)
    return {field: "/".join(parts[1:])} if field and len(parts) > 1 else {}


def _attachment(network: str, group: str, vlan: str) -> dict[str, Any]:
    return {"network": network, "interface_group": group, "vlan": int(vlan) if vlan.isdigit() else vlan}


def last_id(session: Session) -> int:
    return session.execute(select(Meta.event_seq).where(Meta.id == 1)).scalar_one()


def oldest_id(session: Session) -> int | None:
    """The oldest event still kept (None: none kept)."""
    return session.execute(select(func.min(EventRow.id))).scalar_one()


def prune(session: Session, keep_hours: float, keep: int) -> int:
    """Forget events older than ``keep_hours`` *and* beyond the newest ``keep``: both are kept at
    least. How many went."""
    newest = last_id(session)
    cutoff = datetime.now(UTC).timestamp() - keep_hours * 3600
    q = delete(EventRow).where(EventRow.id <= newest - keep,
                               EventRow.time < datetime.fromtimestamp(cutoff, UTC))
    return session.execute(q).rowcount or 0


def prune_deliveries(session: Session, keep_hours: float) -> int:
    """Forget deliveries that ended (delivered or failed) more than ``keep_hours`` ago; how many."""
    cutoff = datetime.fromtimestamp(datetime.now(UTC).timestamp() - keep_hours * 3600, UTC)
    q = delete(DeliveryRow).where(DeliveryRow.state.in_(("delivered", "failed")), DeliveryRow.created < cutoff)
    return session.execute(q).rowcount or 0
