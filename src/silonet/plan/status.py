"""The status rule: what an attachment's (or a wait's) status is, from what each gateway's
realization record says. The manager, the paged listing and every ``?wait=`` ask here, so the
vocabulary is written once (README, "Status and exit codes").

Per gateway, for a change at ``generation``: ``failed`` with a binding error of the attachment's
own ports there, ``held`` in ``observe`` or ``maintenance`` mode, ``failed`` when unreachable
(what it holds cannot be known) or behind with an error, ``realized`` once it reached the
generation, else ``pending`` with the reason why (no reconciler, lease not held, connecting).

Per attachment: its *own* gateways are those of its interface group, its *peers* the other
gateways of its network. ``failed`` when an own gateway failed, ``held`` when one is held,
``pending`` while one is pending, ``degraded`` when all of its own realized it but a peer failed
or is held (it forwards on its own gateways, not to every site), ``pending`` while a peer
catches up, else ``realized``. Reasons name every gateway behind the status, not the first.

Redundant pairs (model/pairs.py): a member that failed or is held while the other member on the
same side (own, or peer) realized it only degrades the attachment (the pair still forwards); while
that other member is pending, the failed one waits with it (a wait ends once the reachable
member realized it); ``failed`` only when no member of the pair that carries it is left. A member
that comes back counts again only once it reached the generation (resynced).

A gateway's own state (``record_state``, ``silonet status``) is measured against its desired
generation: ``decommissioning``, ``held`` (observe or maintenance mode: silonet writes nothing
there, whatever it lacks), ``realized``, ``failed`` (behind with an error) or ``pending``.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from silonet.model.rules import MODES  # noqa: F401 (the list lives in model/rules; re-exported here)

Status = Literal["pending", "realized", "degraded", "held", "failed"]
GatewayStatus = Literal["pending", "realized", "held", "failed"]
RecordState = Literal["pending", "realized", "failed", "held", "decommissioning"]
HOLDING_MODES = frozenset({"observe", "maintenance"})
# what a ``--wait`` exits with, per status (README, "Status and exit codes")
EXIT_CODES: dict[str, int] = {"realized": 0, "failed": 1, "degraded": 3, "held": 3, "pending": 4}
# What a tenant reads instead of a gateway's own error, which may name other tenants' networks and MACs.
TENANT_GATEWAY_ERROR = "the gateway reports an error (shown to admins)"
NO_RECONCILER = "not reached yet: no reconciler drives it (is `silonet serve` running?)"
NO_LEASE = "no reconciler holds its lease (is `silonet serve` running?)"
CONNECTING = "connecting to the device"


class Record(Protocol):
    """What the rule reads of a gateway's realization record."""

    @property
    def realized_generation(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def reachable(self) -> bool | None: ...
    @property
    def owner(self) -> str | None: ...


class Entry(Protocol):
    """One gateway's status for one attachment (``AttachmentGatewayOut`` is one)."""

    @property
    def gateway(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def pair(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Seen:
    """An ``Entry`` of the rule's own, for callers without a schema object (waits)."""

    gateway: str
    status: GatewayStatus
    reason: str | None = None
    pair: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A status, why, and the gateways it is about (failing, held, pending or degrading ones)."""

    status: Status
    reason: str | None = None
    gateways: tuple[str, ...] = ()


def gateway_status(record: Record | None, generation: int, binding_error: str | None = None,
                   mode: str = "enforce") -> tuple[GatewayStatus, str | None]:
    """One gateway's status for a change made at ``generation``; ``binding_error``: why the
    attachment's own port there is not bound (None: bound, or not its gateway); ``mode``: the
    gateway's (observe and maintenance hold it: silonet changes nothing there)."""
    if binding_error:
        return "failed", binding_error
    if mode in HOLDING_MODES:
        return "held", f"in {mode} mode: silonet changes nothing there"
    if record is None:
        return "pending", NO_RECONCILER
    if record.reachable is False:
        return "failed", record.last_error or "unreachable"
    if record.realized_generation >= generation:
        return "realized", None
    if record.last_error:
        return "failed", record.last_error
    return "pending", pending_reason(record, generation)


def may_pend(record: Record, generation: int, mode: str = "enforce") -> bool:
    """Whether ``gateway_status`` may say the gateway is pending for ``generation`` (without a
    binding error, not held): then ``pending_reason`` needs the record's ``owner``."""
    return (mode not in HOLDING_MODES and record.realized_generation < generation and record.reachable is not False
            and not record.last_error)


def record_state(desired_generation: int, realized_generation: int, last_error: str | None,
                 decommissioning: bool = False, mode: str = "enforce") -> RecordState:
    """A gateway's own state against its desired generation, whatever it carries (``silonet status``):
    ``decommissioning`` once deleted from intent, ``held`` in observe or maintenance mode, else
    ``realized`` once it reached the generation, ``failed`` behind with an error, else ``pending``."""
    if decommissioning:
        return "decommissioning"
    if mode in HOLDING_MODES:
        return "held"
    if realized_generation >= desired_generation:
        return "realized"
    return "failed" if last_error else "pending"


def pending_reason(record: Record, generation: int) -> str:
    """Why a gateway has not reached ``generation`` yet."""
    if record.owner is None:
        return NO_RECONCILER if record.reachable is None else NO_LEASE
    if record.reachable is None:
        return CONNECTING
    return f"reconciling (generation {record.realized_generation} reached, {generation} wanted)"


def name_them(entries: Sequence[Entry], peer: bool = False) -> str:
    """``gateway 'a': why; gateways 'b', 'c': why``: every one named, those with one reason together."""
    by_reason: dict[str, list[str]] = {}
    for e in entries:
        by_reason.setdefault(e.reason or e.status, []).append(e.gateway)
    kind = "peer gateway" if peer else "gateway"
    return "; ".join(f"{kind}{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)}: {why}"
                     for why, names in by_reason.items())


def summarize(entries: Sequence[Entry], own: Collection[str] | None = None, tenant: bool = False,
              quarantined: str | None = None, peers: int | None = None) -> Verdict:
    """The status of an attachment (``own``: its interface group's gateways) or of a change
    every one of whose gateways counts as its own (``own=None``: apply, network delete);
    ``tenant``: a tenant reads that some sites are unreachable, not which gateways and why;
    ``quarantined``: why its network is on no device (then it failed, whatever they say);
    ``peers``: how many of all the gateways are not its own, when ``entries`` leaves out
    realized ones (they say nothing else)."""
    if quarantined is not None:
        return Verdict("failed", quarantined)
    mine: dict[str, list[Entry]] = {"failed": [], "held": [], "pending": []}
    others: dict[str, list[Entry]] = {"failed": [], "held": [], "pending": []}
    covered = _covered(entries, own) if any(e.pair for e in entries) else {}
    spared: list[Entry] = []  # pair members down while their partner carries the traffic
    total_peers = 0
    for e in entries:  # one pass: a page of listing asks this per item
        peer = own is not None and e.gateway not in own
        total_peers += peer
        if e.status == "realized":
            continue
        if e.gateway in covered:
            if covered[e.gateway] is not None:
                spared.append(e)
            continue  # its partner is pending: the verdict waits with that one
        (others if peer else mine)[e.status].append(e)
    if peers is not None:
        total_peers = peers
    if mine["failed"]:
        failed, down = mine["failed"], others["failed"]
        reason = name_them(failed) + (f"; {name_them(down, peer=True)}" if down else "")
        return Verdict("failed", reason, tuple(e.gateway for e in failed + down))
    for status in ("held", "pending"):
        if these := mine[status]:
            return Verdict(status, name_them(these), tuple(e.gateway for e in these))  # type: ignore[arg-type]
    down = sorted(others["failed"] + others["held"], key=lambda e: e.gateway)
    if spared and not down and others["pending"]:  # the pair forwards: wait for the peers still catching up
        waiting = others["pending"]
        return Verdict("pending", name_them(waiting, peer=True), tuple(e.gateway for e in waiting))
    if down or spared:
        spared.sort(key=lambda e: e.gateway)
        if tenant:
            parts = [f"some sites of the network are unreachable ({len(down)} of {total_peers} other gateways)"
                     ] if down else []
            parts += [f"{len(spared)} member(s) of a redundant gateway pair are down"] if spared else []
        else:
            parts = [f"not to every site: {name_them(down, peer=True)}"] if down else []
            if spared:
                why = {peer: [Seen(e.gateway, "failed", f"{e.reason or e.status}; its pair partner "
                                                        f"'{covered[e.gateway]}' carries the traffic")
                              for e in spared if (own is not None and e.gateway not in own) == peer]
                       for peer in (False, True)}
                named = "; ".join(name_them(w, peer=peer) for peer, w in why.items() if w)
                parts.append(f"through one member of a redundant pair: {named}")
        reason = f"forwards{' on its own gateways' if down and not spared else ''}, but {'; '.join(parts)}"
        return Verdict("degraded", reason, tuple(e.gateway for e in spared + down))
    if waiting := others["pending"]:
        return Verdict("pending", name_them(waiting, peer=True), tuple(e.gateway for e in waiting))
    return Verdict("realized")


def _covered(entries: Sequence[Entry], own: Collection[str] | None) -> dict[str, str | None]:
    """Pair members that failed or are held, on the same side as a partner that is not: partner's
    name if it realized the change (the pair forwards), None while it is pending (wait with it)."""
    sides: dict[tuple[str, bool], list[Entry]] = {}
    for e in entries:
        if e.pair:
            sides.setdefault((e.pair, own is None or e.gateway in own), []).append(e)
    out: dict[str, str | None] = {}
    for members in sides.values():
        for e in members:
            if e.status not in ("failed", "held"):
                continue
            partners = [m for m in members if m is not e]
            if up := next((m.gateway for m in partners if m.status == "realized"), None):
                out[e.gateway] = up
            elif any(m.status == "pending" for m in partners):
                out[e.gateway] = None
    return out


def counted(verdict: Verdict, total: int) -> str:
    """A verdict over ``total`` gateways as one line: ``failed on 2 of 5 gateway(s): ...``."""
    if verdict.status == "realized":
        return f"realized on {total} gateway(s)"
    return f"{verdict.status} on {len(verdict.gateways)} of {total} gateway(s): {verdict.reason}"
