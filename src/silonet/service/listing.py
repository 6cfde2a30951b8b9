"""Paged listing of attachments: keyset pages on ``attachments.id``, each computed from SQL
for just the page (its attachments, the groups of its networks, the gateways of those
groups and their realization rows), so the cost of a page does not grow with the fleet.

The status of each item is the one ``Manager._attachment_out`` computes from the whole
inventory, by the same rule (``plan/status.py``): per gateway of the attachment's network (every
group attached to it, the attachment's own included), with the binding error of one of the
group's bound ports at that VLAN if there is one; then over them, its own group's gateways
apart from the others.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy import Select, String, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from silonet.errors import InvalidInput, NotFound
from silonet.model.legacy import quarantine_reason, quarantine_rule
from silonet.plan.status import Verdict, gateway_status, may_pend, summarize
from silonet.service import schemas as S
from silonet.service.auth import errors_for
from silonet.store.leases import owner_now
from silonet.store.tables import (
    AttachmentRow,
    GatewayLeaseRow,
    GatewayRow,
    GatewayStatusRow,
    GroupPortRow,
    GroupRow,
    NetworkRow,
    PortRow,
)

LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 1000, 100
CURSOR_MAX = 256
_CURSOR_RULE = "not a cursor this server handed out (pass next_cursor of the previous page as it is)"
_NONE: frozenset[str] = frozenset()
_OWNERS: dict[str, Select] = {}  # per dialect: the lease owners of some gateways (``_owners``)


# ------------------------------------------------------------------------ cursor
def encode_cursor(after_id: int) -> str:
    """Opaque to clients: URL-safe base64 (no padding) of ``{"after": <last id>}``."""
    raw = json.dumps({"after": after_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The last id of the previous page (0 before the first one)."""
    if cursor is None or cursor == "":
        return 0
    if not isinstance(cursor, str) or len(cursor) > CURSOR_MAX:
        raise InvalidInput(field="cursor", rule=_CURSOR_RULE)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput(field="cursor", rule=_CURSOR_RULE) from None
    after = data.get("after") if isinstance(data, dict) else None
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63 or set(data) != {"after"}:
        raise InvalidInput(field="cursor", rule=_CURSOR_RULE)
    return after


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not LIMIT_MIN <= limit <= LIMIT_MAX:
        raise InvalidInput(field="limit", rule=f"{limit!r}: must be an integer {LIMIT_MIN}..{LIMIT_MAX}")
    return limit


# ------------------------------------------------------------------------- reads
@dataclass(frozen=True, slots=True)
class _Real:
    """The scalar part of a realization row, plus its binding errors (a ``plan.status.Record``)."""

    realized_generation: int
    last_error: str | None
    reachable: bool | None
    owner: str | None
    binding_errors: dict[str, str]
    error_vlans: frozenset[int]  # VLANs named by a binding error, to skip the port lookup otherwise
    mode: str = "enforce"  # the gateway's: observe and maintenance hold it
    pair: str | None = None  # its redundant pair: a member down degrades (plan/status.py)


def _error_vlans(errors: dict[str, str]) -> frozenset[int]:
    out = set()
    for key in errors:
        _port, _, vlan = key.rpartition("/")
        if vlan.isdigit():
            out.add(int(vlan))
    return frozenset(out)


def _json_dict(raw: str | dict | None) -> dict:
    """A JSON column read as text (SQLite; PostgreSQL drivers may hand back the dict): most
    rows hold nothing, which is not worth a json.loads per gateway per page."""
    if raw is None or raw in ("null", "{}"):
        return {}
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _id_of(session: Session, table: type[GroupRow] | type[NetworkRow], name: str, kind: str, field: str,
           tenant: str | None = None) -> int:
    q = select(table.id).where(table.name == name)
    if tenant is not None:  # another tenant's network is as unknown as a missing one
        q = q.where(NetworkRow.tenant == tenant)
    row_id = session.execute(q).scalar_one_or_none()
    if row_id is None:
        raise NotFound(field=field, kind=kind, name=name)
    return row_id


def _groups_of_networks(session: Session, network_ids: Iterable[int]) -> dict[int, set[int]]:
    """network id -> ids of the groups attached to it (one index range per network)."""
    out: dict[int, set[int]] = defaultdict(set)
    q = (select(AttachmentRow.network_id, AttachmentRow.group_id).distinct()
         .where(AttachmentRow.network_id.in_(sorted(network_ids))))
    for nid, gid in session.execute(q):
        out[nid].add(gid)
    return out


def _gateways_of_groups(session: Session, group_ids: Iterable[int]
                        ) -> tuple[dict[int, set[int]], dict[int, str], dict[int, _Real]]:
    """group id -> ids of the gateways its ports (members and switch-back) are on; those
    gateways' names; their realization rows (scalar columns and binding errors, never the big
    ``actual``; the lease owner only where ``_owners`` adds it), in one statement."""
    pairs = (select(GroupPortRow.group_id, PortRow.gateway_id).distinct()
             .join(PortRow, PortRow.id == GroupPortRow.port_id)
             .where(GroupPortRow.group_id.in_(sorted(group_ids))).subquery())
    st = GatewayStatusRow
    q = (select(pairs.c.group_id, GatewayRow.id, GatewayRow.name, st.realized_generation, st.last_error,
                st.reachable, type_coerce(st.binding_errors, String), GatewayRow.mode,
                GatewayRow.pair)
         .join(GatewayRow, GatewayRow.id == pairs.c.gateway_id)
         .outerjoin(st, st.gateway_id == GatewayRow.id))
    group_gws: dict[int, set[int]] = defaultdict(set)
    names: dict[int, str] = {}
    real: dict[int, _Real] = {}
    for gid, gwid, name, realized, last_error, reachable, errors, mode, pair in session.execute(q):
        group_gws[gid].add(gwid)
        if gwid in names:
            continue
        names[gwid] = name
        if realized is not None:
            errors = _json_dict(errors)
            real[gwid] = _Real(realized, last_error, reachable, None, errors, _error_vlans(errors), mode, pair)
    return group_gws, names, real


def _owners(session: Session, real: dict[int, _Real], generation: int) -> dict[int, _Real]:
    """``real`` with the lease owner of every gateway that may be pending for ``generation``
    (``plan.status.may_pend``): it says why (``plan.status.pending_reason``); the rest need none,
    so most pages ask nothing."""
    behind = sorted(gw for gw, st in real.items() if may_pend(st, generation, st.mode))
    if not behind:
        return real
    dialect = session.get_bind().dialect.name
    if (q := _OWNERS.get(dialect)) is None:  # built once: building it cost more than running it
        q = _OWNERS[dialect] = (select(GatewayLeaseRow.gateway_id, owner_now(dialect))
                                .where(GatewayLeaseRow.gateway_id.in_(bindparam("ids", expanding=True))))
    owners = {gw: owner for gw, owner in session.execute(q, {"ids": behind})}
    return {gw: replace(st, owner=owners[gw]) if owners.get(gw) else st for gw, st in real.items()}


def _bound_ports(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, ...]]:
    """(group id, gateway id) -> the ports that carry the group's entries there: its
    switch-back port there if it has one, else its member ports there (sorted), as
    ``InterfaceGroup.bound_ports`` says."""
    if not pairs:
        return {}
    q = (select(GroupPortRow.group_id, PortRow.gateway_id, PortRow.name, GroupPortRow.sb_gateway_id)
         .join(PortRow, PortRow.id == GroupPortRow.port_id)
         .where(GroupPortRow.group_id.in_(sorted({g for g, _ in pairs})),
                PortRow.gateway_id.in_(sorted({gw for _, gw in pairs}))))
    members: dict[tuple[int, int], list[str]] = defaultdict(list)
    switchback: dict[tuple[int, int], str] = {}
    for gid, gwid, port, sb_gateway in session.execute(q):
        if (gid, gwid) not in pairs:
            continue
        if sb_gateway is not None:
            switchback[(gid, gwid)] = port
        else:
            members[(gid, gwid)].append(port)
    return {p: (switchback[p],) if p in switchback else tuple(sorted(members.get(p, ()))) for p in pairs}


def list_attachments_page(session: Session, limit: int, cursor: str | None, network: str | None = None,
                          interface_group: str | None = None, tenant: str | None = None) -> S.AttachmentPageOut:
    """One page of attachments in id (creation) order, after ``cursor``, optionally only
    those of one network and/or one interface group; a tenant's call sees its own networks only."""
    check_limit(limit)
    after = decode_cursor(cursor)
    A = AttachmentRow
    q = (select(A.id, A.vlan, A.generation, A.group_id, A.network_id, GroupRow.name.label("group_name"),
                NetworkRow.name.label("network_name"), NetworkRow.vni)
         .join(GroupRow, GroupRow.id == A.group_id)
         .join(NetworkRow, NetworkRow.id == A.network_id)
         .where(A.id > after).order_by(A.id).limit(limit + 1))
    if network is not None:
        q = q.where(A.network_id == _id_of(session, NetworkRow, network, "network", "network", tenant))
    if tenant is not None:
        q = q.where(NetworkRow.tenant == tenant)
    if interface_group is not None:
        q = q.where(A.group_id == _id_of(session, GroupRow, interface_group, "interface group", "interface_group"))
    rows = session.execute(q).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return S.AttachmentPageOut(items=[], next_cursor=None, limit=limit)

    net_groups = _groups_of_networks(session, {r.network_id for r in rows})
    for r in rows:  # its own group, even if it was detached between the two reads
        net_groups[r.network_id].add(r.group_id)
    group_gws, names, real = _gateways_of_groups(session, set().union(*net_groups.values()))
    real = _owners(session, real, max(r.generation for r in rows))
    real = errors_for(real, tenant)  # a gateway's own error may name other tenants' networks and MACs
    by_name = names.__getitem__
    net_gws = {nid: sorted({gw for g in groups for gw in group_gws.get(g, ()) if gw in names}, key=by_name)
               for nid, groups in net_groups.items()}

    # Only where a gateway has a binding error at the attachment's VLAN do the group's bound
    # ports there matter: look those up, and nothing else.
    suspects = {r.id: [gw for gw in group_gws.get(r.group_id, ())
                       if (st := real.get(gw)) is not None and r.vlan in st.error_vlans] for r in rows}
    bound = _bound_ports(session, {(r.group_id, gw) for r in rows for gw in suspects[r.id]})

    # Without a binding error, what a gateway says depends only on the attachment's generation,
    # the list only on its network too, and the status only on its group too: each is made once
    # per page and shared.
    entries: dict[tuple[int, int], S.AttachmentGatewayOut] = {}
    shared: dict[tuple[int, int], list[S.AttachmentGatewayOut]] = {}
    unsettled: dict[tuple[int, int], list[S.AttachmentGatewayOut]] = {}  # of a shared list: the not realized
    owns: dict[int, frozenset[str]] = {}
    verdicts: dict[tuple[int, int, int, frozenset[str]], Verdict] = {}
    is_tenant = tenant is not None

    def plain(gw: int, generation: int) -> S.AttachmentGatewayOut:
        out = entries.get((gw, generation))
        if out is None:
            st = real.get(gw)
            status, reason = gateway_status(st, generation, None, "enforce" if st is None else st.mode)
            out = entries[(gw, generation)] = S.AttachmentGatewayOut(gateway=names[gw], status=status, reason=reason,
                                                                     pair=None if st is None else st.pair)
        return out

    def own(group_id: int) -> frozenset[str]:
        found = owns.get(group_id)
        if found is None:
            found = owns[group_id] = frozenset(names[gw] for gw in group_gws.get(group_id, ()) if gw in names)
        return found

    items = []
    for r in rows:
        rule = quarantine_rule(r.network_name)  # quarantined: on no device
        quarantined = None if rule is None else quarantine_reason(rule)
        if suspects[r.id]:
            per_gw = []
            for gw in net_gws[r.network_id]:
                ports = bound.get((r.group_id, gw), ())
                error = next((e for p in ports if (e := real[gw].binding_errors.get(f"{p}/{r.vlan}"))), None)
                if error:
                    status, reason = gateway_status(real[gw], r.generation, error, real[gw].mode)
                    per_gw.append(S.AttachmentGatewayOut(gateway=names[gw], status=status, reason=reason,
                                                         pair=real[gw].pair))
                else:
                    per_gw.append(plain(gw, r.generation))
            verdict = summarize(per_gw, own(r.group_id), is_tenant, quarantined)
        else:
            at = (r.network_id, r.generation)
            if (per_gw := shared.get(at)) is None:
                per_gw = shared[at] = [plain(gw, r.generation) for gw in net_gws[r.network_id]]
                unsettled[at] = [e for e in per_gw if e.status != "realized"]
            # the verdict depends on which of the unsettled gateways are its own (mostly none)
            mine, uneasy = own(r.group_id), unsettled[at]  # its own: all of them gateways of its network
            key = (r.network_id, r.generation, len(mine),
                   frozenset(e.gateway for e in uneasy if e.gateway in mine) if uneasy else _NONE)
            if any(e.pair for e in uneasy):  # whether a partner carries it depends on the group: no sharing
                verdict = summarize(per_gw, mine, is_tenant, quarantined)
            elif (verdict := verdicts.get(key)) is None:
                verdict = verdicts[key] = summarize(unsettled[at], mine, is_tenant, quarantined,
                                                    peers=len(per_gw) - len(mine))
        items.append(S.AttachmentOut(
            network=r.network_name, interface_group=r.group_name, vlan=r.vlan, vni=r.vni, generation=r.generation,
            status=verdict.status, reason=verdict.reason, gateways=per_gw,
        ))
    return S.AttachmentPageOut(items=items, next_cursor=encode_cursor(rows[-1].id) if more else None, limit=limit)
