"""A tenant's contract (the interface groups it may attach to, its VNI pool, its quotas) and the
rules that hold a tenant token to it. Pure: the service reads the records and asks these rules.

A tenant without a record is held to nothing (what silonet always did); a record locks it down:
it attaches only to the groups it is granted (none granted: nowhere), takes VNIs only from its
pool, and stays within its quotas (None: no limit). Admins are never held to a contract. The
pools of all tenants are reserved: the global pool never hands out a VNI inside one, and a
tenant with a record but no pool of its own may not take one either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from silonet.errors import Forbidden, InvalidInput
from silonet.model import rules
from silonet.model.inventory import Inventory

QUOTA_MAX = 2**31 - 1  # the columns are INTEGER on PostgreSQL
QUOTA_RULE = f"must be an integer 0..{QUOTA_MAX} (null: no limit)"


def quota(value: object, field: str = "quota") -> int:
    """A quota: how many networks (or attachments) a tenant may hold; 0 holds none."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= QUOTA_MAX:
        raise InvalidInput(field=field, rule=f"{value!r}: {QUOTA_RULE}")
    return value


@dataclass(frozen=True)
class VniPool:
    """VNIs ``first``..``last`` (both included)."""

    first: int
    last: int

    @property
    def range(self) -> range:
        return range(self.first, self.last + 1)

    def __contains__(self, vni: object) -> bool:
        return isinstance(vni, int) and self.first <= vni <= self.last

    def overlaps(self, other: VniPool) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def pool(first: object, last: object, field: str = "vni_pool") -> VniPool:
    """A pool within the VNI range, ``first`` not past ``last``."""
    rules.vni(first, f"{field}.first")
    rules.vni(last, f"{field}.last")
    assert isinstance(first, int) and isinstance(last, int)
    if first > last:
        raise InvalidInput(field=field, rule=f"first ({first}) must not exceed last ({last})")
    return VniPool(first, last)


@dataclass(frozen=True)
class Contract:
    """A tenant's record: ``groups`` granted (empty: none), ``pool`` (None: no pool of its own),
    quotas (None: no limit)."""

    name: str
    groups: frozenset[str] = frozenset()
    pool: VniPool | None = None
    max_networks: int | None = None
    max_attachments: int | None = None


@dataclass(frozen=True)
class Use:
    """What a tenant holds now: its networks and their attachments."""

    networks: int = 0
    attachments: int = 0


def use_of(inv: Inventory, tenant: str) -> Use:
    nets = [n for n, net in inv.networks.items() if net.tenant == tenant]
    return Use(len(nets), sum(len(inv.attachment_keys(n)) for n in nets))


def overlapping(new: VniPool, name: str, contracts: Iterable[Contract]) -> Contract | None:
    """Another tenant whose pool shares a VNI with ``new`` (the lowest pool first), or None."""
    hits = [c for c in contracts if c.name != name and c.pool is not None and c.pool.overlaps(new)]
    return min(hits, key=lambda c: (c.pool.first if c.pool else 0, c.name), default=None)


def _refused(problems: list[Forbidden]) -> Forbidden | None:
    return problems[0].with_more(problems[1:]) if problems else None  # type: ignore[return-value]


def refuse_network(c: Contract, use: Use, vni: int | None, reserved: Iterable[VniPool] = ()) -> Forbidden | None:
    """Why ``c``'s tenant may not create one more network (with ``vni``, None: allocated), every
    reason at once; None: it may. ``reserved``: the other tenants' pools."""
    problems = []
    if c.max_networks is not None and use.networks >= c.max_networks:
        problems.append(Forbidden(field="max_networks", rule=(
            f"tenant '{c.name}' may hold at most {c.max_networks} network(s) (its max_networks) and holds "
            f"{use.networks}: delete one first, or ask the provider for more")))
    if vni is not None and c.pool is not None and vni not in c.pool:
        problems.append(Forbidden(field="vni", rule=(
            f"VNI {vni} is outside the VNI pool {c.pool} of tenant '{c.name}': give one inside it, or none "
            "(one is allocated from it)")))
    elif vni is not None and c.pool is None and any(vni in p for p in reserved):
        problems.append(Forbidden(field="vni", rule=(
            f"VNI {vni} is reserved (it lies in another tenant's VNI pool): give another one, or none")))
    return _refused(problems)


def refuse_attach(c: Contract, use: Use, group: str) -> Forbidden | None:
    """Why ``c``'s tenant may not attach one more VLAN of ``group``, every reason at once; None: it may."""
    problems = []
    if group not in c.groups:
        granted = ", ".join(sorted(c.groups)) or "none"
        problems.append(Forbidden(field="interface_group", rule=(
            f"tenant '{c.name}' is not granted interface group '{group}' (its interface_groups: {granted})")))
    if c.max_attachments is not None and use.attachments >= c.max_attachments:
        problems.append(Forbidden(field="max_attachments", rule=(
            f"tenant '{c.name}' may hold at most {c.max_attachments} attachment(s) (its max_attachments) and "
            f"holds {use.attachments}: detach one first, or ask the provider for more")))
    return _refused(problems)


@dataclass(frozen=True)
class Pools:
    """Every tenant's pool, by tenant: where a new network's VNI comes from when none is given."""

    by_tenant: dict[str, VniPool] = field(default_factory=dict)

    def reserved(self, but: str | None = None) -> list[VniPool]:
        return [p for t, p in self.by_tenant.items() if t != but]

    def allocate(self, inv: Inventory, tenant: str, global_pool: range) -> int:
        """From the tenant's own pool if it has one, else from the global pool outside every pool."""
        own = self.by_tenant.get(tenant)
        if own is not None:
            return inv.allocate_vni(own.range)
        return inv.allocate_vni(global_pool, skip=[p.range for p in self.by_tenant.values()])
