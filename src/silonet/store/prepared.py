"""The statements every attach and every recording runs, built once and run as Core on the session's
connection.

An attach with ``?wait=`` runs dozens of short statements (the write, the recording of each pass,
the announcement, the read after the wait). SQLite runs one in a few microseconds; building it with
the ORM, generating its cache key and going through the ORM's execution took ten to twenty times
that, and was a fifth of a manager's CPU. Statements here are built from the tables (no ORM
entities) once per process (per engine dialect where the SQL differs), with expanding parameters
for name lists, and run on ``Session.connection()``: the session's transaction, without the ORM's
bookkeeping (nothing here reads or writes ORM objects, so autoflush has nothing to do).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from silonet.store.leases import owner_now
from silonet.store.tables import (
    AttachmentRow,
    AttachmentStatusRow,
    AuditRow,
    EventRow,
    GatewayActualRow,
    GatewayLeaseRow,
    GatewayMacsRow,
    GatewayRow,
    GatewayStatusRow,
    GroupRow,
    Meta,
    NetworkRow,
    WebhookRow,
)

META, GW, STATUS, LEASE = Meta.__table__, GatewayRow.__table__, GatewayStatusRow.__table__, GatewayLeaseRow.__table__
ACTUAL, MACS = GatewayActualRow.__table__, GatewayMacsRow.__table__
NET, GROUP, ATT = NetworkRow.__table__, GroupRow.__table__, AttachmentRow.__table__
ATT_STATUS = AttachmentStatusRow.__table__

GENERATION = select(META.c.generation).where(META.c.id == 1)
NEXT_GENERATION = (update(META).where(META.c.id == 1).values(generation=META.c.generation + 1)
                   .returning(META.c.generation))
EVENT_LOCK = update(META).where(META.c.id == 1).values(event_seq=META.c.event_seq)
EVENT_IDS = (update(META).where(META.c.id == 1).values(event_seq=META.c.event_seq + bindparam("n"))
             .returning(META.c.event_seq))
INSERT_EVENTS = insert(EventRow.__table__)
WEBHOOKS = select(WebhookRow.__table__.c.id, WebhookRow.__table__.c.events)
INSERT_AUDIT = insert(AuditRow.__table__)
NETWORKS_NAMED = (select(NET.c.name, NET.c.tenant, NET.c.vni)
                  .where(NET.c.name.in_(bindparam("names", expanding=True))))
GATEWAY_IDS = select(GW.c.name, GW.c.id).where(GW.c.name.in_(bindparam("names", expanding=True)))
BUMP = (update(STATUS).values(desired_generation=bindparam("generation"))
        .where(STATUS.c.gateway_id.in_(select(GW.c.id).where(GW.c.name.in_(bindparam("names", expanding=True))))))
ADD_ATTACHMENT = insert(ATT).values(
    group_id=select(GROUP.c.id).where(GROUP.c.name == bindparam("group")).scalar_subquery(),
    vlan=bindparam("vlan"),
    network_id=select(NET.c.id).where(NET.c.name == bindparam("network")).scalar_subquery(),
    generation=bindparam("generation"))
SET_CONDITION = (update(STATUS).values(condition=bindparam("to"))
                 .where(STATUS.c.gateway_id == select(GW.c.id).where(GW.c.name == bindparam("gw")).scalar_subquery()))
CONDITIONS = (select(GW.c.name, STATUS.c.condition).join(STATUS, STATUS.c.gateway_id == GW.c.id)
              .where(GW.c.name.in_(bindparam("names", expanding=True))))
ANNOUNCED = (select(ATT.c.id, NET.c.name, GROUP.c.name, ATT.c.vlan, ATT_STATUS.c.status)
             .join(NET, NET.c.id == ATT.c.network_id).join(GROUP, GROUP.c.id == ATT.c.group_id)
             .outerjoin(ATT_STATUS, ATT_STATUS.c.attachment_id == ATT.c.id)
             .where(NET.c.name.in_(bindparam("names", expanding=True))))
INSERT_ANNOUNCED = insert(ATT_STATUS)
MOVE_ANNOUNCED = (update(ATT_STATUS).where(ATT_STATUS.c.attachment_id == bindparam("aid"))
                  .values(status=bindparam("to"), reason=bindparam("why")))


def run(session: Session, statement: Any, params: Any = None) -> CursorResult:
    """``statement`` in the session's transaction (begun if none), as Core."""
    return session.connection().execute(statement, params)


@cache
def realizations(dialect: str, observed: bool, named: bool, actual: bool = True) -> Select:
    """The realization records' query (``Repository.realizations``): with ``named``, of the gateways
    in the expanding parameter ``names``; ``observed`` adds the faults, and with ``actual`` what the
    devices hold."""
    cols = [GW.c.name, STATUS.c.desired_generation, STATUS.c.realized_generation, STATUS.c.last_error,
            STATUS.c.last_contact, STATUS.c.reachable, STATUS.c.binding_errors, STATUS.c.drift,
            GW.c.decommissioning, GW.c.mode, STATUS.c.pending_operations, GW.c.pair,
            owner_now(dialect).label("owner")]
    if observed:
        cols += [STATUS.c.faults, *([ACTUAL.c.actual, STATUS.c.foreign] if actual else [])]
    q = select(*cols).join(STATUS, STATUS.c.gateway_id == GW.c.id).outerjoin(LEASE, LEASE.c.gateway_id == GW.c.id)
    if observed and actual:
        q = q.outerjoin(ACTUAL, ACTUAL.c.gateway_id == GW.c.id)
    return q.where(GW.c.name.in_(bindparam("names", expanding=True))) if named else q


@cache
def row_id(table: Any) -> Select:
    """The id of a named row of ``table`` (an ORM class with ``id`` and ``name``): parameter ``name``."""
    t = table.__table__
    return select(t.c.id).where(t.c.name == bindparam("name"))


@cache
def insert_named(table: Any) -> Any:
    """A new row of ``table`` (its columns as parameters), returning its id."""
    t = table.__table__
    return insert(t).returning(t.c.id)


@cache
def update_row(table: Any) -> Any:
    """The row ``rid`` of ``table``: the other parameters are the columns set."""
    t = table.__table__
    return update(t).where(t.c.id == bindparam("rid"))


@cache
def record_status(columns: tuple[str, ...]) -> Any:
    """A realization record's ``columns`` set, of the gateway ``gid`` (``Repository.record_many``)."""
    return update(STATUS).where(STATUS.c.gateway_id == bindparam("gid")).values({c: bindparam(c) for c in columns})



def _per_gateway(dialect: str, table: Any, column: str) -> Any:
    """A row of ``table`` keyed by its gateway (parameters ``gid`` and ``column``): made, or its
    ``column`` replaced."""
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    ins = make(table).values({"gateway_id": bindparam("gid"), column: bindparam(column)})
    return ins.on_conflict_do_update(index_elements=[table.c.gateway_id], set_={column: ins.excluded[column]})


@cache
def record_actual(dialect: str) -> Any:
    """A gateway's actual state (parameters ``gid``, ``actual``): its row made, or replaced."""
    return _per_gateway(dialect, ACTUAL, "actual")


@cache
def record_macs(dialect: str) -> Any:
    """The MACs a gateway learned (parameters ``gid``, ``local_macs``): its row made, or replaced."""
    return _per_gateway(dialect, MACS, "local_macs")


FORGET_MACS = delete(MACS).where(MACS.c.gateway_id == bindparam("gid"))
LEARNED_MACS = select(GW.c.name, MACS.c.local_macs).join(MACS, MACS.c.gateway_id == GW.c.id)
