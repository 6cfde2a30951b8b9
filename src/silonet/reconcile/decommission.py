"""The end of a gateway's decommissioning: its worker's pass removed what silonet owns on the
device (the desired state of a gateway in no group is empty) and read back that nothing owned
is left; then the gateway is forgotten, in one intent write, and that is audited.

A restart between the delete and this point resumes it: the ``decommissioning`` flag is intent,
so the restarted reconciler starts the gateway's worker again and its first pass cleans.
"""

from __future__ import annotations

import logging

from silonet.plan import GatewayState
from silonet.signals import RealizationBoard
from silonet.store.cache import IntentCache
from silonet.store.db import Database
from silonet.store.repo import Repository

log = logging.getLogger("silonet.reconcile")


class _NotLeaving(Exception):
    """Rolls back a forgetting whose gateway is no longer decommissioning (forced, or gone)."""


def holds_nothing(owned: GatewayState) -> bool:
    return not (owned.logical_switches or owned.bindings or owned.remote_macs)


def leaving(db: Database, intent: IntentCache, gateway: str) -> bool:
    """Whether the intent has the gateway decommissioning (call in a thread: it may wait for a writer)."""
    with db.read() as s, intent.lock:
        inv, _gen = intent.current(s)
        return gateway in inv.decommissioning


def forget(db: Database, intent: IntentCache, board: RealizationBoard, gateway: str, actor: str) -> bool:
    """Forget a decommissioning gateway whose device holds nothing silonet owns (a read-back
    showed it): True when it did."""
    try:
        with intent.transaction(db) as tx:
            if gateway not in tx.inventory.decommissioning:
                raise _NotLeaving
            gw = tx.inventory.remove_gateway(gateway)
            repo = Repository(tx.session)
            repo.delete_gateway(gateway)
            nothing: dict[str, list] = {"logical_switches": [], "bindings": [], "remote_macs": []}
            tx.note(repo.audit(actor, "decommissioned", f"gateway/{gateway}",
                               {"name": gateway, "vtep_ip": gw.vtep_ip, "state": "decommissioning", "left": nothing},
                               None))
    except _NotLeaving:
        return False
    log.info("gateway %s: decommissioned (nothing silonet owns is left on the device) and forgotten", gateway)
    board.recorded()  # ?wait= of the DELETE in this process hears of it at once
    return True
