"""What an operator reads in the server log about each gateway: its state changes, once each.

A gateway's state is its status (``pending`` until a pass is recorded, ``realized``, ``failed``),
whether its device answered, and why it failed. A worker retries a failing gateway with backoff
for as long as it fails; a line per retry would bury everything else, and no line at all left an
unreachable gateway invisible. So each change is one line, on logger ``silonet.gateway``: WARNING
when a gateway goes to failed or unreachable (naming it and the reason), INFO when it is realized
(first, again after a failure, or after observe or maintenance mode). A held pass (those modes)
says nothing here; it ends a failure quietly (the operator chose the mode), so the next one is
told again. A new reason while it keeps failing is one more WARNING, for the first few distinct
reasons of one failure (REASONS_PER_FAILURE): a reason that alternates or carries a counter
cannot turn into a line per retry either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from silonet.store.repo import Observation

log = logging.getLogger("silonet.gateway")
REASONS_PER_FAILURE = 3  # distinct reasons logged while a gateway keeps failing; later ones are DEBUG


@dataclass
class _Last:
    """What was last logged of one gateway."""

    status: str = "pending"
    reachable: bool | None = None
    reason: str | None = None
    reasons: set[str] = field(default_factory=set)  # logged during the current failure


class Transitions:
    """Each gateway's last state (one instance per reconciler); ``observe`` logs only its changes."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.log = logger
        self._last: dict[str, _Last] = {}

    def observe(self, gateway: str, obs: Observation) -> None:
        """A pass's outcome, as the worker records it (an error: failed; a generation: realized)."""
        if obs.error is not None:
            self.failed(gateway, bool(obs.reachable), obs.error)
        elif obs.realized_generation is not None:
            self.realized(gateway, obs.realized_generation)
        elif obs.held:
            self._last[gateway] = _Last(status="held", reachable=obs.reachable)

    def failed(self, gateway: str, reachable: bool, reason: str) -> None:
        last = self._last.setdefault(gateway, _Last())
        was_failed, was_reachable = last.status == "failed", last.reachable
        last.status, last.reachable, last.reason = "failed", reachable, reason
        if not was_failed:
            last.reasons = {reason}
            if reachable:
                self.log.warning("gateway %s failed: %s", gateway, reason)
            else:
                self.log.warning("gateway %s unreachable: %s", gateway, reason)
        elif was_reachable and not reachable:
            last.reasons.add(reason)
            self.log.warning("gateway %s unreachable: %s", gateway, reason)
        elif reachable and was_reachable is False:
            last.reasons.add(reason)
            self.log.warning("gateway %s reachable again, still failing: %s", gateway, reason)
        elif reason not in last.reasons:
            if len(last.reasons) < REASONS_PER_FAILURE:
                last.reasons.add(reason)
                self.log.warning("gateway %s still failing, now: %s", gateway, reason)
            else:
                self.log.debug("gateway %s still failing, now: %s", gateway, reason)

    def realized(self, gateway: str, generation: int) -> None:
        last = self._last.setdefault(gateway, _Last())
        before, why = last.status, last.reason
        last.status, last.reachable, last.reason, last.reasons = "realized", True, None, set()
        if before == "failed":
            self.log.info("gateway %s recovered: reachable, realized at generation %d (it had failed: %s)",
                          gateway, generation, why)
        elif before in ("pending", "held"):
            self.log.info("gateway %s reachable, realized at generation %d", gateway, generation)

    def forget(self, gateway: str) -> None:
        """The gateway left this replica (deleted, or its lease moved): a later worker starts afresh."""
        self._last.pop(gateway, None)
