"""Row-level reads and writes for the service layer, inside the caller's transaction.

The repository maps domain names to row ids; it never decides what is allowed (the model
does) and never commits (the unit of work does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from silonet.model import (
    Attachment,
    Gateway,
    InterfaceGroup,
    Inventory,
    Management,
    Port,
    PortRef,
    Silo,
    VirtualNetwork,
)
from silonet.model.inventory import DevicePolicy
from silonet.plan import actual_json
from silonet.plan.status import RecordState, record_state
from silonet.store import events, prepared
from silonet.store.tables import (
    AttachmentRow,
    AuditRow,
    GatewayActualRow,
    GatewayMacsRow,
    GatewayRow,
    GatewayStatusRow,
    GroupPortRow,
    GroupRow,
    NetworkRow,
    PortRow,
    SiloRow,
)

# The kinds of object an apply set holds besides attachments, by the name ``apply`` reports them under.
APPLY_SET_KINDS: dict[str, Any] = {"silo": SiloRow, "gateway": GatewayRow, "interface-group": GroupRow,
                                   "network": NetworkRow}


def utc(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time silonet shows is UTC."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


# the columns of ``prepared.realizations`` in the order of ``Realization``'s fields
_REALIZATION_COLUMNS = ("name", "desired_generation", "realized_generation", "last_error", "last_contact", "reachable",
                        "actual", "faults", "binding_errors", "foreign", "drift", "owner", "decommissioning", "mode",
                        "pending_operations", "pair")


@dataclass(frozen=True)
class Realization:
    """Per-gateway realization record, with what the last reconcile pass observed."""

    gateway: str
    desired_generation: int
    realized_generation: int
    last_error: str | None
    last_contact: datetime | None
    reachable: bool | None = None
    actual: dict | None = None
    faults: dict | None = None
    binding_errors: dict | None = None
    foreign: list | None = None
    drift: int | None = None
    owner: str | None = None  # the replica driving the gateway (unexpired lease)
    decommissioning: bool = False  # deleted from intent, its device being cleaned before it is forgotten
    mode: str = "enforce"  # the gateway's (intent): observe and maintenance hold it (plan/status.py)
    pending_operations: int | None = None  # what an enforce pass would apply now, as last read (None: unknown)
    pair: str | None = None  # the gateway's redundant pair (intent): a member down degrades, not fails (plan/status.py)

    def binding_error(self, port: str, vlan: int) -> str | None:
        return (self.binding_errors or {}).get(f"{port}/{vlan}")

    @property
    def state(self) -> RecordState:
        """By the rule of ``plan/status.py``."""
        return record_state(self.desired_generation, self.realized_generation, self.last_error,
                            self.decommissioning, self.mode)


@dataclass(frozen=True)
class Observation:
    """What one reconcile pass of a gateway saw and did. ``reachable`` None: not contacted (a gateway
    in maintenance mode): what it holds and would need is unknown then."""

    reachable: bool | None
    realized_generation: int | None
    error: str | None
    actual: dict | None = None
    faults: dict | None = None
    binding_errors: dict | None = None
    foreign: list | None = None
    drift: int | None = None
    pending_operations: int | None = None  # what an enforce pass would apply now (observe: what it did not)
    held: bool = False  # in observe or maintenance mode: nothing was written (waiters read the database)


@dataclass(frozen=True)
class ActualSnapshot:
    """Only what a gateway holds (``actual``): recorded apart from the pass's observation, at
    most every so often, because it is O(device) to serialize and the pass's outcome is not."""

    actual: dict


@dataclass(frozen=True)
class Bumped:
    """What ``Repository.bump`` changed, for the writer to tell the reconciler after commit: the
    gateways whose desired state changed, and the VNIs it changed at (None: anything)."""

    gateways: frozenset[str]
    vnis: frozenset[int] | None


@dataclass(frozen=True)
class Audited:
    """What ``Repository.audit`` wrote, as the one log line the writer emits once it committed
    (who, what: no values)."""

    line: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: datetime
    actor: str
    action: str
    object: str
    before: dict | None
    after: dict | None


class Repository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # ------------------------------------------------------------------- reads
    def generation(self) -> int:
        return prepared.run(self.s, prepared.GENERATION).scalar_one()

    def load_inventory(self, policy: DevicePolicy | None = None) -> Inventory:
        """The stored intent (trusted: it was checked when written); ``policy`` judges changes."""
        s = self.s
        inv = Inventory()
        silo_names = dict(s.execute(select(SiloRow.id, SiloRow.name)).all())
        for row in s.execute(select(SiloRow)).scalars():
            inv.put_silo(Silo(row.name, row.kind, row.description))
        ports: dict[int, list[Port]] = {}
        port_ref: dict[int, PortRef] = {}
        gw_names = dict(s.execute(select(GatewayRow.id, GatewayRow.name)).all())
        for p in s.execute(select(PortRow).order_by(PortRow.id)).scalars():
            ports.setdefault(p.gateway_id, []).append(Port(p.name, p.switchback))
            port_ref[p.id] = PortRef(gw_names[p.gateway_id], p.name)
        for g in s.execute(select(GatewayRow).order_by(GatewayRow.id)).scalars():
            inv.put_gateway(
                Gateway(
                    name=g.name,
                    vtep_ip=g.vtep_ip,
                    management=Management(g.driver, g.address, g.dialect, g.credentials_ref, g.trust_on_first_use,
                                          g.host_key),
                    capacity=g.capacity,
                    ports=tuple(ports.get(g.id, ())),
                    silo=silo_names.get(g.silo_id) if g.silo_id else None,
                    mode=g.mode,
                    pair=g.pair,
                )
            )
            if g.decommissioning:
                inv.decommissioning.add(g.name)
        members: dict[int, list[PortRef]] = {}
        sbs: dict[int, list[PortRef]] = {}
        for gp in s.execute(select(GroupPortRow).order_by(GroupPortRow.id)).scalars():
            target = sbs if gp.sb_gateway_id is not None else members
            target.setdefault(gp.group_id, []).append(port_ref[gp.port_id])
        group_names: dict[int, str] = {}
        for grp in s.execute(select(GroupRow).order_by(GroupRow.id)).scalars():
            group_names[grp.id] = grp.name
            inv.put_group(
                InterfaceGroup(
                    name=grp.name,
                    members=tuple(members.get(grp.id, ())),
                    switchback=tuple(sbs.get(grp.id, ())),
                    silo=silo_names.get(grp.silo_id) if grp.silo_id else None,
                )
            )
        net_names: dict[int, str] = {}
        for n in s.execute(select(NetworkRow).order_by(NetworkRow.id)).scalars():
            net_names[n.id] = n.name
            inv.put_network(VirtualNetwork(n.name, n.tenant, n.vni))
        for a in s.execute(select(AttachmentRow).order_by(AttachmentRow.id)).scalars():
            inv.attach(Attachment(group_names[a.group_id], a.vlan, net_names[a.network_id], a.generation))
        if policy is not None:
            inv.policy = policy
        return inv

    def realizations(self, gateways: Iterable[str] | None = None, observed: bool = True,
                     actual: bool = True) -> dict[str, Realization]:
        """Realization records; ``observed=False`` leaves out what the devices hold (``actual``,
        ``foreign``, ``faults``: large) when only generations, errors and owners matter (the
        owner says why a gateway is pending: plan/status.py); ``actual=False`` keeps the faults
        alone of them (a status read: a thousand gateways' ``actual`` is megabytes of JSON)."""
        q = prepared.realizations(self.s.get_bind().dialect.name, observed, gateways is not None, actual)
        out = {}
        result = prepared.run(self.s, q, None if gateways is None else {"names": list(gateways)})
        # each field by its column's place in what the query selects (None: not selected): a row's
        # ``_mapping`` and a look-up per column were a quarter of a status read of 1,000 gateways
        place = {name: i for i, name in enumerate(result.keys())}
        at = [place.get(name) for name in _REALIZATION_COLUMNS]
        contact = _REALIZATION_COLUMNS.index("last_contact")
        for row in result.all():
            values = [None if i is None else row[i] for i in at]
            values[contact] = utc(values[contact])
            out[values[0]] = Realization(*values)
        return out

    def learned_macs(self) -> dict[str, actual_json.LearnedMacs]:
        """MACs each gateway learned, as its last recorded pass read them (``actual``'s part, kept in a
        table of its own: other replicas read it for the gateways they do not drive, after each
        lease round); a gateway that learned none is not listed."""
        return {name: actual_json.macs(part) for name, part in prepared.run(self.s, prepared.LEARNED_MACS)}

    def empty(self) -> bool:
        """No silo, gateway, interface group or network (tokens aside)."""
        return not any(self.s.execute(select(row.id).limit(1)).first()
                       for row in (SiloRow, GatewayRow, GroupRow, NetworkRow))

    def audit_entries(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(AuditRow.id < before_id)
        return [
            AuditEntry(r.id, utc(r.time), r.actor, r.action, r.object, r.before, r.after)
            for r in self.s.execute(q).scalars()
        ]

    # ------------------------------------------------------------------ helpers
    def _id(self, table: Any, name: str) -> int:
        return prepared.run(self.s, prepared.row_id(table), {"name": name}).scalar_one()

    def _opt_id(self, table: Any, name: str | None) -> int | None:
        return None if name is None else self._id(table, name)

    def _port_id(self, ref: PortRef) -> int:
        return self.s.execute(
            select(PortRow.id).join(GatewayRow, GatewayRow.id == PortRow.gateway_id)
            .where(GatewayRow.name == ref.gateway, PortRow.name == ref.port)
        ).scalar_one()

    def _upsert(self, table: Any, name: str, values: dict, apply_set: str | None = None) -> int:
        """Insert or update by name; ``apply_set``: the apply set writing it (None: keep the row's)."""
        if apply_set is not None:
            values = {**values, "apply_set": apply_set}
        row_id = prepared.run(self.s, prepared.row_id(table), {"name": name}).scalar_one_or_none()
        if row_id is None:
            return prepared.run(self.s, prepared.insert_named(table), {"name": name, **values}).scalar_one()
        prepared.run(self.s, prepared.update_row(table), {"rid": row_id, **values})
        return row_id

    # ------------------------------------------------------------------ writes
    def save_silo(self, silo: Silo, apply_set: str | None = None) -> None:
        self._upsert(SiloRow, silo.name, {"kind": silo.kind.value, "description": silo.description}, apply_set)

    def delete_silo(self, name: str) -> None:
        self.s.execute(delete(SiloRow).where(SiloRow.name == name))

    def save_gateway(self, gw: Gateway, apply_set: str | None = None) -> None:
        m = gw.management
        gid = self._upsert(GatewayRow, gw.name, {
            "silo_id": self._opt_id(SiloRow, gw.silo), "vtep_ip": gw.vtep_ip, "driver": m.driver,
            "address": m.address, "dialect": m.dialect, "credentials_ref": m.credentials,
            "trust_on_first_use": m.trust_on_first_use, "host_key": m.host_key, "mode": gw.mode,
            "capacity": gw.capacity, "pair": gw.pair,
        }, apply_set)
        have = dict(self.s.execute(select(PortRow.name, PortRow.id).where(PortRow.gateway_id == gid)).all())
        want = {p.name: p for p in gw.ports}
        gone = [have[n] for n in have.keys() - want.keys()]
        if gone:
            self.s.execute(delete(PortRow).where(PortRow.id.in_(gone)))
        for port in gw.ports:
            if port.name in have:
                self.s.execute(update(PortRow).where(PortRow.id == have[port.name]).values(switchback=port.switchback))
            else:
                self.s.execute(insert(PortRow).values(gateway_id=gid, name=port.name, switchback=port.switchback))
        exists = self.s.execute(select(GatewayStatusRow.gateway_id).where(GatewayStatusRow.gateway_id == gid)).first()
        if exists is None:
            self.s.execute(insert(GatewayStatusRow).values(gateway_id=gid, desired_generation=0, realized_generation=0))

    def decommission_gateway(self, name: str) -> None:
        """Keep the row, marked: its reconciler cleans the device, then ``delete_gateway`` forgets it."""
        self.s.execute(update(GatewayRow).where(GatewayRow.name == name).values(decommissioning=True))

    def delete_gateway(self, name: str) -> None:
        gid = self._id(GatewayRow, name)
        self.s.execute(delete(GatewayStatusRow).where(GatewayStatusRow.gateway_id == gid))
        self.s.execute(delete(GatewayActualRow).where(GatewayActualRow.gateway_id == gid))
        self.s.execute(delete(GatewayMacsRow).where(GatewayMacsRow.gateway_id == gid))
        self.s.execute(delete(PortRow).where(PortRow.gateway_id == gid))
        self.s.execute(delete(GatewayRow).where(GatewayRow.id == gid))

    def save_group(self, group: InterfaceGroup, apply_set: str | None = None) -> None:
        gid = self._upsert(GroupRow, group.name, {"silo_id": self._opt_id(SiloRow, group.silo)}, apply_set)
        self.s.execute(delete(GroupPortRow).where(GroupPortRow.group_id == gid))
        for ref in group.members:
            self.s.execute(insert(GroupPortRow).values(group_id=gid, port_id=self._port_id(ref)))
        for ref in group.switchback:
            self.s.execute(insert(GroupPortRow).values(
                group_id=gid, port_id=self._port_id(ref), sb_gateway_id=self._id(GatewayRow, ref.gateway)))

    def delete_group(self, name: str) -> None:
        gid = self._id(GroupRow, name)
        self.s.execute(delete(GroupPortRow).where(GroupPortRow.group_id == gid))
        self.s.execute(delete(GroupRow).where(GroupRow.id == gid))

    def save_network(self, net: VirtualNetwork, apply_set: str | None = None) -> None:
        self._upsert(NetworkRow, net.name, {"tenant": net.tenant, "vni": net.vni}, apply_set)

    def delete_network(self, name: str) -> None:
        nid = self._id(NetworkRow, name)
        self.s.execute(delete(AttachmentRow).where(AttachmentRow.network_id == nid))
        self.s.execute(delete(NetworkRow).where(NetworkRow.id == nid))

    def insert_networks(self, nets: list[VirtualNetwork], apply_set: str | None = None) -> None:
        """New networks in one statement (``apply`` creates thousands at a time)."""
        if nets:
            prepared.run(self.s, insert(NetworkRow.__table__), [{"name": n.name, "tenant": n.tenant, "vni": n.vni,
                                                                 "apply_set": apply_set} for n in nets])

    def add_attachments(self, atts: list[Attachment], generation: int, apply_set: str | None = None) -> None:
        """New attachments in one statement, names resolved with one query per table."""
        if not atts:
            return
        groups = dict(self.s.execute(select(GroupRow.name, GroupRow.id).where(
            GroupRow.name.in_({a.group for a in atts}))).all())
        nets = dict(self.s.execute(select(NetworkRow.name, NetworkRow.id).where(
            NetworkRow.name.in_({a.network for a in atts}))).all())
        prepared.run(self.s, insert(AttachmentRow.__table__), [
            {"group_id": groups[a.group], "vlan": a.vlan, "network_id": nets[a.network], "generation": generation,
             "apply_set": apply_set} for a in atts])

    def add_attachment(self, att: Attachment, generation: int) -> None:
        prepared.run(self.s, prepared.ADD_ATTACHMENT, {"group": att.group, "vlan": att.vlan, "network": att.network,
                                                        "generation": generation})

    def delete_attachment(self, att: Attachment) -> None:
        self.s.execute(delete(AttachmentRow).where(
            AttachmentRow.group_id == self._id(GroupRow, att.group), AttachmentRow.vlan == att.vlan))

    def outside_apply_set(self, name: str) -> dict[str, dict[Any, str | None]]:
        """Per kind (``APPLY_SET_KINDS``), the stored objects not in apply set ``name`` -> the set
        they are in (None: made directly, in none); attachments keyed (group, VLAN). Every other
        stored object is in ``name``: one query per table, returning only the others."""
        out: dict[str, dict[Any, str | None]] = {}
        for kind, table in APPLY_SET_KINDS.items():
            q = select(table.name, table.apply_set).where(or_(table.apply_set.is_(None), table.apply_set != name))
            out[kind] = {n: s for n, s in self.s.execute(q)}
        a = AttachmentRow
        q = (select(GroupRow.name, a.vlan, a.apply_set).join(GroupRow, GroupRow.id == a.group_id)
             .where(or_(a.apply_set.is_(None), a.apply_set != name)))
        out["attachment"] = {(g, v): s for g, v, s in self.s.execute(q)}
        return out

    def stamp_apply_set(self, kind: str, keys: Iterable[Any], name: str) -> None:
        """Put existing objects in apply set ``name`` (the set that applied an object last owns it)."""
        keys = list(keys)
        if not keys:
            return
        conn = self.s.connection()
        if kind == "attachment":
            groups = dict(self.s.execute(select(GroupRow.name, GroupRow.id).where(
                GroupRow.name.in_({g for g, _ in keys}))).all())
            at = AttachmentRow.__table__
            conn.execute(update(at).where(at.c.group_id == bindparam("gid"), at.c.vlan == bindparam("v"))
                         .values(apply_set=name), [{"gid": groups[g], "v": v} for g, v in keys])
            return
        t = APPLY_SET_KINDS[kind].__table__
        conn.execute(update(t).where(t.c.name == bindparam("n")).values(apply_set=name), [{"n": k} for k in keys])

    def bump(self, gateways: Iterable[str], generation: int, vnis: Iterable[int] | None = None) -> Bumped:
        """Mark the gateways' desired state as changed at ``generation``; ``vnis``: only what
        these VNIs mean changed (None: anything may have changed). Returns the note the writer
        hands its transaction (``IntentCache.Write.note``), which tells the reconciler after commit
        (with VNIs it compiles just those)."""
        names = frozenset(gateways)
        if not names:
            return Bumped(names, frozenset())
        prepared.run(self.s, prepared.BUMP, {"names": sorted(names), "generation": generation})
        return Bumped(names, None if vnis is None else frozenset(vnis))

    def record_realized(self, gateway: str, generation: int, error: str | None) -> None:
        """Shorthand for a pass that reached ``generation`` (no error) or failed with ``error``."""
        self.record(gateway, Observation(reachable=error is None, realized_generation=None if error else generation,
                                         error=error))

    def record_many(self, batch: Iterable[tuple[str, Observation | ActualSnapshot]]) -> None:
        """Several gateways' observations, names resolved with one query."""
        batch = list(batch)
        ids = dict(prepared.run(self.s, prepared.GATEWAY_IDS, {"names": sorted({g for g, _ in batch})}).all())
        self._write([(ids[gateway], obs) for gateway, obs in batch if gateway in ids])

    def record(self, gateway: str, obs: Observation | ActualSnapshot, gateway_id: int | None = None) -> None:
        """What a reconcile pass saw and reached."""
        self._write([(gateway_id if gateway_id is not None else self._id(GatewayRow, gateway), obs)])

    def _write(self, batch: list[tuple[int, Observation | ActualSnapshot]]) -> None:
        """Observations by gateway id: the status columns (Core executemany, one statement per shape
        of observation), and the actual states in their own rows."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        actual: list[dict[str, Any]] = []
        for gid, obs in batch:
            if values := self._observed(obs):
                shapes.setdefault(tuple(values), []).append({**values, "gid": gid})
            if (held := self._held(obs)) is not None:
                actual.append({"gid": gid, "actual": held})
        for columns, rows in shapes.items():
            prepared.run(self.s, prepared.record_status(columns), rows)
        if actual:
            dialect = self.s.get_bind().dialect.name
            prepared.run(self.s, prepared.record_actual(dialect), actual)
            # what each gateway learned, as its last state in the batch says: a row where it learned
            # any, none where nothing (peers read every row after each lease round: few rows, little read)
            last = {a["gid"]: a["actual"].get(actual_json.LOCAL_MACS) or {} for a in actual}
            if learned := [{"gid": gid, "local_macs": macs} for gid, macs in last.items() if any(macs.values())]:
                prepared.run(self.s, prepared.record_macs(dialect), learned)
            if nothing := [{"gid": gid} for gid, macs in last.items() if not any(macs.values())]:
                prepared.run(self.s, prepared.FORGET_MACS, nothing)

    @staticmethod
    def _held(obs: Observation | ActualSnapshot) -> dict | None:
        """The actual state an observation records (its own row: ``GatewayActualRow``), if any: an
        unreachable device keeps what it last showed."""
        if isinstance(obs, ActualSnapshot):
            return obs.actual
        return obs.actual if obs.reachable else None

    @staticmethod
    def _observed(obs: Observation | ActualSnapshot) -> dict[str, Any]:
        """The status columns an observation sets (an unreachable device keeps what it last showed;
        an actual state alone sets none)."""
        if isinstance(obs, ActualSnapshot):
            return {}
        values: dict[str, Any] = {"last_error": obs.error, "reachable": obs.reachable}
        if obs.reachable:
            values["last_contact"] = datetime.now(UTC)
            values.update(faults=obs.faults, binding_errors=obs.binding_errors, foreign=obs.foreign, drift=obs.drift,
                          pending_operations=obs.pending_operations)
        elif obs.reachable is None:  # not contacted (maintenance): what a pass would do or fail is unknown
            values.update(pending_operations=None, binding_errors=None, drift=None)
        if obs.realized_generation is not None:
            values["realized_generation"] = obs.realized_generation
        return values

    def audit(self, actor: str, action: str, obj: str, before: dict | None, after: dict | None) -> Audited:
        """Write an audit entry; returns its log line, for the writer to note (logged on commit)."""
        prepared.run(self.s, prepared.INSERT_AUDIT, {"time": datetime.now(UTC), "actor": actor, "action": action,
                                                      "object": obj, "before": before, "after": after})
        events.intent(self.s, actor, [(action, obj, before, after)])  # the stream's intent event, same transaction
        return Audited(f"{actor}: {action} {obj}")

    def audit_many(self, actor: str, entries: list[tuple[str, str, dict | None, dict | None]]) -> Audited | None:
        """Several audit entries (action, object, before, after) in one statement; their one log line."""
        if not entries:
            return None
        now = datetime.now(UTC)
        prepared.run(self.s, prepared.INSERT_AUDIT, [
            {"time": now, "actor": actor, "action": act, "object": obj, "before": b, "after": a}
            for act, obj, b, a in entries])
        events.intent(self.s, actor, entries)
        return Audited(f"{actor}: {len(entries)} change(s) ({entries[0][0]} ...)")

    def count(self, table: Any) -> int:
        return self.s.execute(select(func.count()).select_from(table)).scalar_one()
