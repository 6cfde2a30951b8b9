"""Deleting a gateway from intent: first remove what silonet owns on its device, then forget it.

A gateway a reconciler has reached goes ``decommissioning``: its row stays (its name and
tunnel IP stay taken), it carries nothing, and its worker removes every owned logical switch,
binding and remote MAC (never foreign ones) and forgets it once a read-back shows nothing
owned is left (``reconcile/decommission.py``). Forgotten at once instead: a gateway never
reached (nothing can be on it), any gateway when the operator forces it, a gateway in observe
or maintenance mode (silonet writes nothing there), and any gateway when no reconciler runs on
the database; then what may be left on the device (the owned
part of its last read state) is audited and told.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from silonet.model import Inventory
from silonet.plan import actual_json
from silonet.plan.status import HOLDING_MODES
from silonet.service import schemas as S
from silonet.service.waits import WAIT_MAX_S
from silonet.store.leases import live_replicas
from silonet.store.repo import Realization, Repository

if TYPE_CHECKING:
    from silonet.service.manager import Manager
    from silonet.store.cache import Write

SHOWN = 3  # named rows per kind in a message; the rest counted
DECOMMISSIONING = ("gateway '{name}' is decommissioning: silonet removes its configuration from the device, "
                   "then forgets it")


@dataclass(frozen=True)
class Outcome:
    """What a delete did: ``decommissioning`` (a reconciler cleans the device first) or forgotten,
    with what may be left on the device (None: nothing)."""

    gateway: str
    decommissioning: bool
    left: dict | None = None
    message: str = ""


def owned_part(actual: dict | None) -> dict | None:
    """The rows silonet owns in a recorded actual state (None: never read)."""
    return None if actual is None else actual_json.owned_rows(actual)


def holds_nothing(left: dict | None) -> bool:
    return left is not None and not any(left.values())


def summary(left: dict | None) -> str:
    """One line: counts per kind, the first few named."""
    if left is None:
        return "unknown (silonet never read the device)"
    J = actual_json
    names = {
        J.LOGICAL_SWITCHES: lambda r: f"{r['network']} (VNI {r['vni']})",
        J.BINDINGS: lambda r: f"{r['port']} VLAN {r['vlan']}",
        J.REMOTE_MACS: lambda r: f"{r['mac']} on VNI {r['vni']}",
    }
    words = {J.LOGICAL_SWITCHES: "logical switch(es)", J.BINDINGS: "binding(s)", J.REMOTE_MACS: "remote MAC(s)"}
    parts = []
    for kind in actual_json.OWNED:
        rows = left.get(kind, [])
        if rows:
            shown = ", ".join(names[kind](r) for r in rows[:SHOWN])
            more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
            parts.append(f"{len(rows)} {words[kind]}: {shown}{more}")
    return "; ".join(parts) or "nothing"


def begin(repo: Repository, tx: Write, name: str, actor: str, force: bool = False,
          fresh: dict | None = None) -> Outcome:
    """Delete ``name`` from intent inside the caller's write ``tx`` (``fresh``: its actual state as
    this process's reconciler last read it, if it drives it). Raises NotFound, or InUse while a
    group uses it; writes and audits what it did, and notes it in ``tx``."""
    inv = tx.inventory
    gw = inv.gateway(name)
    again = name in inv.decommissioning
    if again and not force:
        return Outcome(name, True, message=DECOMMISSIONING.format(name=name))
    if not again:
        inv.decommission(name)  # refuses a gateway still in a group
    real: Realization | None = repo.realizations([name]).get(name)
    reached = fresh is not None or (real is not None and real.last_contact is not None)
    left = owned_part(fresh if fresh is not None else real.actual if real is not None else None) if reached else {}
    before = S.dump(S.gateway_out(gw, 0))
    held = gw.mode in HOLDING_MODES  # silonet writes nothing there: not even to clean it
    if not reached or force or held or not live_replicas(repo.s):
        inv.remove_gateway(name)
        repo.delete_gateway(name)
        if holds_nothing(left):
            tx.note(repo.audit(actor, "delete", f"gateway/{name}", before, None))
            return Outcome(name, False)
        why = ("forgotten without cleaning its device (force)" if force else
               f"forgotten without cleaning its device: it is in {gw.mode} mode" if held else
               "forgotten at once: no reconciler runs on this database (no `silonet serve`)")
        tx.note(repo.audit(actor, "forget", f"gateway/{name}", {**(before or {}), "left": left}, None))
        return Outcome(name, False, left, f"gateway '{name}' {why}; silonet's configuration may be left on "
                                          f"the device: {summary(left)}")
    repo.decommission_gateway(name)
    tx.note(repo.bump([name], tx.generation),  # its worker wakes and compiles the empty state
            repo.audit(actor, "decommission", f"gateway/{name}", before, {"state": "decommissioning"}))
    return Outcome(name, True, message=DECOMMISSIONING.format(name=name))


def silo_stays(inv: Inventory, name: str) -> str | None:
    """Why a silo a prune removes must stay: its only users are gateways being decommissioned."""
    gateways = sorted(g.name for g in inv.gateways.values() if g.silo == name)
    if not gateways or not set(gateways) <= inv.decommissioning or any(g.silo == name for g in inv.groups.values()):
        return None
    listed = ", ".join(f"'{g}'" for g in gateways)
    return (f"silo '{name}' stays until its decommissioning gateway(s) {listed} are gone; "
            "a later prune removes it")


def _deadline(timeout: float) -> float:
    return time.monotonic() + (0.0 if math.isnan(timeout) else min(max(timeout, 0.0), WAIT_MAX_S))


def wait_gone(mgr: Manager, name: str, timeout: float) -> bool:
    """Block up to ``timeout`` s until a decommissioning gateway is forgotten."""
    deadline = _deadline(timeout)
    while True:
        seq = mgr.board.seq()
        if mgr.gateway_state(name) is None:
            return True
        if time.monotonic() >= deadline:
            return False
        mgr.board.wait(seq, min(0.2, max(deadline - time.monotonic(), 0.0)))


async def wait_gone_async(mgr: Manager, name: str, timeout: float) -> bool:
    """``wait_gone`` for the API, on the event loop: a reconciler of this process wakes it at each
    pass and at the forgetting; another process's forgetting is seen within 0.2 s."""
    deadline = _deadline(timeout)
    while True:
        seq = mgr.board.seq()
        if await anyio.to_thread.run_sync(mgr.gateway_state, name) is None:
            return True
        if time.monotonic() >= deadline:
            return False
        await mgr.board.wait_async(seq, min(0.2, max(deadline - time.monotonic(), 0.0)))
