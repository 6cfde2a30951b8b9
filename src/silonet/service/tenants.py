"""Tenants' contracts: ``/v1/tenants`` (admin writes; a tenant token reads its own record) and
what holds a tenant token to its record when it creates a network or attaches a VLAN.

The rules are ``model/tenancy.py``'s; here the records are read and written (``tenants``,
``tenant_groups``) inside the Manager's transactions: a write is one audited transaction that
moves the generation (the write lock), so a pool or quota checked here cannot change before the
network or attachment it admits commits. A refusal writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StrictInt, model_validator
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from silonet.errors import Conflict, InUse, InvalidInput, NotFound, SilonetError
from silonet.model import Inventory, rules, tenancy
from silonet.model.patch import merge_patch
from silonet.model.tenancy import Contract, Pools, VniPool
from silonet.service import schemas as S
from silonet.store.repo import Repository
from silonet.store.tables import GroupRow, TenantGroupRow, TenantRow

if TYPE_CHECKING:
    from silonet.service.manager import Manager

GROUPS_MAX = 4096
NAME_RULE = "cannot change (a tenant keeps its name: its networks name it)"
Quota = Annotated[StrictInt, AfterValidator(lambda v: tenancy.quota(v)),
                  S._doc(minimum=0, maximum=tenancy.QUOTA_MAX)]


class PoolIn(S._In):
    first: S.Vni
    last: S.Vni

    @model_validator(mode="after")
    def _ordered(self) -> PoolIn:
        tenancy.pool(self.first, self.last)
        return self


class TenantIn(S._In):
    """A tenant's contract; every field but ``name`` may be null (absent): no grants, no pool, no limit."""

    name: S.Name
    interface_groups: list[S.Name] | None = Field(
        default=None, max_length=GROUPS_MAX, description="the interface groups its tokens may attach to "
                                                         "(null or empty: none)")
    vni_pool: PoolIn | None = Field(default=None, description="VNIs its networks take (allocated from here when "
                                                              "none is given); no two tenants' pools overlap")
    max_networks: Quota | None = Field(default=None, description="networks it may hold (null: no limit)")
    max_attachments: Quota | None = Field(default=None, description="attachments its networks may hold "
                                                                    "(null: no limit)")

    @model_validator(mode="after")
    def _unique(self) -> TenantIn:
        groups = self.interface_groups or []
        twice = sorted({g for g in groups if groups.count(g) > 1})
        if twice:
            raise InvalidInput(field="interface_groups", rule=f"listed twice: {', '.join(twice)}")
        return self

    def contract(self) -> Contract:
        p = self.vni_pool
        return Contract(self.name, frozenset(self.interface_groups or ()),
                        None if p is None else VniPool(p.first, p.last), self.max_networks, self.max_attachments)


class PoolOut(BaseModel):
    first: int
    last: int


class UseOut(BaseModel):
    networks: int = Field(description="networks it holds")
    attachments: int = Field(description="attachments of its networks")


class TenantOut(BaseModel):
    name: str
    interface_groups: list[str] = Field(description="granted interface groups (empty: none)")
    vni_pool: PoolOut | None
    max_networks: int | None = Field(description="null: no limit")
    max_attachments: int | None = Field(description="null: no limit")
    use: UseOut


def _doc(c: Contract) -> dict[str, Any]:
    """The contract as created (``TenantIn``'s shape): what a merge patch applies to and the audit keeps."""
    return {"name": c.name, "interface_groups": sorted(c.groups),
            "vni_pool": None if c.pool is None else {"first": c.pool.first, "last": c.pool.last},
            "max_networks": c.max_networks, "max_attachments": c.max_attachments}


def _out(c: Contract, inv: Inventory) -> TenantOut:
    use = tenancy.use_of(inv, c.name)
    return TenantOut(**_doc(c), use=UseOut(networks=use.networks, attachments=use.attachments))


# ------------------------------------------------------------------- records
def _named(tenant: str | None) -> bool:
    """A name a record may have (a token's scope without a tenant is no name: never asked)."""
    return tenant is not None and len(tenant) <= rules.NAME_MAX and bool(rules.NAME_RE.fullmatch(tenant))


def contracts(s: Session, name: str | None = None) -> dict[str, Contract]:
    """The records (of ``name`` only, if given), by tenant."""
    q = select(TenantRow)
    g = select(TenantRow.name, GroupRow.name).join(TenantGroupRow, TenantGroupRow.tenant_id == TenantRow.id) \
        .join(GroupRow, GroupRow.id == TenantGroupRow.group_id)
    if name is not None:
        if not _named(name):
            return {}
        q, g = q.where(TenantRow.name == name), g.where(TenantRow.name == name)
    grants: dict[str, set[str]] = {}
    for tenant, group in s.execute(g):
        grants.setdefault(tenant, set()).add(group)
    return {r.name: Contract(r.name, frozenset(grants.get(r.name, ())),
                             None if r.vni_first is None or r.vni_last is None else VniPool(r.vni_first, r.vni_last),
                             r.max_networks, r.max_attachments)
            for r in s.execute(q.order_by(TenantRow.name)).scalars()}


def pools(s: Session) -> Pools:
    q = select(TenantRow.name, TenantRow.vni_first, TenantRow.vni_last).where(
        TenantRow.vni_first.is_not(None), TenantRow.vni_last.is_not(None))
    return Pools({name: VniPool(first, last) for name, first, last in s.execute(q)})


def _save(s: Session, c: Contract) -> None:
    row = s.execute(select(TenantRow).where(TenantRow.name == c.name)).scalar_one_or_none()
    if row is None:
        row = TenantRow(name=c.name)
        s.add(row)
    row.vni_first, row.vni_last = (None, None) if c.pool is None else (c.pool.first, c.pool.last)
    row.max_networks, row.max_attachments = c.max_networks, c.max_attachments
    s.flush()
    s.execute(delete(TenantGroupRow).where(TenantGroupRow.tenant_id == row.id))
    if c.groups:
        ids = s.execute(select(GroupRow.id).where(GroupRow.name.in_(sorted(c.groups)))).scalars().all()
        s.execute(insert(TenantGroupRow), [{"tenant_id": row.id, "group_id": i} for i in ids])


def _check(s: Session, inv: Inventory, c: Contract) -> None:
    """What a record must hold against the stored state: its groups exist (404), its pool overlaps
    no other tenant's (409); every problem at once."""
    problems: list[SilonetError] = [
        NotFound(field="interface_groups", kind="interface group", name=g, by=f"tenant '{c.name}' is granted it")
        for g in sorted(c.groups - set(inv.groups))]
    if c.pool is not None and (other := tenancy.overlapping(c.pool, c.name, contracts(s).values())) is not None:
        problems.append(Conflict(field="vni_pool", rule=f"VNI pool {c.pool} overlaps the VNI pool {other.pool} of "
                                                        f"tenant '{other.name}': tenants' pools are disjoint"))
    if problems:
        raise problems[0].with_more(problems[1:])


# ----------------------------------------------------------------- use cases
def create(mgr: Manager, body: TenantIn, actor: str) -> TenantOut:
    c = body.contract()
    with mgr._tx() as (repo, inv, tx):
        if contracts(repo.s, c.name):
            raise Conflict(field="name", rule=f"tenant '{c.name}' already has a record (change it with PATCH)")
        _check(repo.s, inv, c)
        _save(repo.s, c)
        tx.note(repo.audit(actor, "tenant.create", f"tenant/{c.name}", None, _doc(c)))
        return _out(c, inv)


def list_(mgr: Manager, scope: str | None = None) -> list[TenantOut]:
    """Every record; a tenant token (``scope``: its tenant) reads its own only."""
    with mgr._view() as (repo, inv):
        if scope is not None and not _named(scope):
            return []
        return [_out(c, inv) for c in contracts(repo.s, scope).values()]


def get(mgr: Manager, name: str, scope: str | None = None) -> TenantOut:
    """One record; another tenant's is as unknown to a tenant token as a missing one."""
    with mgr._view() as (repo, inv):
        found = contracts(repo.s, name).get(name) if scope is None or scope == name else None
        if found is None:
            raise NotFound(field="name", kind="tenant", name=name)
        return _out(found, inv)


class _Unchanged(Exception):
    """Rolls back a patch that changes nothing (the write had moved the generation)."""


def patch(mgr: Manager, name: str, document: Any, actor: str) -> TenantOut:
    """A JSON merge patch (RFC 7396) of the record as created, checked as a create is."""
    if not isinstance(document, dict):
        raise InvalidInput(field="body", rule="a merge patch of a tenant is a JSON object (RFC 7396)")
    if "name" in document and document["name"] != name:
        raise InvalidInput(field="name", rule=NAME_RULE)
    try:
        with mgr._tx() as (repo, inv, tx):
            before = contracts(repo.s, name).get(name)
            if before is None:
                raise NotFound(field="name", kind="tenant", name=name)
            merged = merge_patch({k: v for k, v in _doc(before).items() if v is not None}, document)
            after = S.validate(TenantIn, merged).contract()
            out = _out(after, inv)
            if after == before:
                raise _Unchanged
            _check(repo.s, inv, after)
            _save(repo.s, after)
            tx.note(repo.audit(actor, "tenant.update", f"tenant/{name}", _doc(before), _doc(after)))
    except _Unchanged:
        pass
    return out


def delete_(mgr: Manager, name: str, actor: str) -> None:
    """Refused (409) while the tenant has networks: its record is what holds them to the contract."""
    with mgr._tx() as (repo, inv, tx):
        before = contracts(repo.s, name).get(name)
        if before is None:
            raise NotFound(field="name", kind="tenant", name=name)
        nets = sorted(n for n, net in inv.networks.items() if net.tenant == name)
        if nets:
            shown = ", ".join(f"'{n}'" for n in nets[:5]) + (f" and {len(nets) - 5} more" if len(nets) > 5 else "")
            raise InUse(field="name", kind="tenant", name=name,
                        users=f"{len(nets)} network(s): {shown} (delete them first)")
        tenant_id = repo.s.execute(select(TenantRow.id).where(TenantRow.name == name)).scalar_one()
        repo.s.execute(delete(TenantGroupRow).where(TenantGroupRow.tenant_id == tenant_id))
        repo.s.execute(delete(TenantRow).where(TenantRow.id == tenant_id))
        tx.note(repo.audit(actor, "tenant.delete", f"tenant/{name}", _doc(before), None))


# ------------------------------------------------- what the Manager asks here
def network_vni(repo: Repository, inv: Inventory, body: S.NetworkIn, caller: str | None, pool: range) -> int:
    """The VNI of a new network: the one given, else allocated (from its tenant's pool if it has one,
    else from ``pool`` outside every tenant's pool). ``caller``: the tenant of the token (None: an
    admin, held to nothing); a tenant with a record is held to it (403 naming the rule)."""
    own = contracts(repo.s, caller).get(caller) if caller is not None else None
    if body.vni is not None and own is None:
        return body.vni
    every = pools(repo.s)
    if own is not None:
        refused = tenancy.refuse_network(own, tenancy.use_of(inv, own.name), body.vni, every.reserved(own.name))
        if refused is not None:
            raise refused
    return body.vni if body.vni is not None else every.allocate(inv, body.tenant, pool)


def check_attach(repo: Repository, inv: Inventory, group: str, caller: str | None) -> None:
    """A tenant token with a record attaches only to its granted groups, within its quota (403).
    An unknown group is left to the model (404)."""
    if caller is None or group not in inv.groups:
        return
    own = contracts(repo.s, caller).get(caller)
    if own is not None and (refused := tenancy.refuse_attach(own, tenancy.use_of(inv, caller), group)) is not None:
        raise refused


def allocator(s: Session, inv: Inventory, pool: range) -> Callable[[str], int]:
    """VNIs for networks given none (an apply): as ``network_vni``, the pools read once."""
    every: Pools | None = None

    def allocate(tenant: str) -> int:
        nonlocal every
        if every is None:
            every = pools(s)
        return every.allocate(inv, tenant, pool)

    return allocate
