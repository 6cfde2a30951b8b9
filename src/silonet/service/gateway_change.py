"""Changing a gateway in place: ``PATCH /v1/gateways/{name}`` (a JSON merge patch, RFC 7396) and
``silonet gateway mode`` (a patch of ``mode`` alone).

One transaction: the patch is merged into the gateway as a create would write it
(``model/patch.py``), the result is checked exactly as a create is (``GatewayIn``, the credentials
fence, one device per gateway, ``Inventory.put_gateway``'s invariants), written, the desired
generation of every gateway it moves is bumped, and the change is audited with before and after.
A refusal writes nothing; a patch that changes nothing writes nothing either (not even the
generation moves).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from silonet.model import rules
from silonet.model.patch import mode_only, patched, tunnel_peers
from silonet.model.refusals import check_management
from silonet.service import schemas as S
from silonet.store.repo import Repository

if TYPE_CHECKING:
    from silonet.service.manager import Manager


class _Unchanged(Exception):
    """Rolls back a patch that changes nothing (the write had bumped the generation)."""


def patch_gateway(mgr: Manager, name: str, patch: Any, actor: str) -> S.GatewayOut:
    """Merge ``patch`` into gateway ``name``; the gateway as it is then. Raises NotFound,
    InvalidInput (naming the field and the rule), Conflict or InUse, and then writes nothing."""
    try:
        with mgr.cache.transaction(mgr.db) as tx:
            repo, inv = Repository(tx.session), tx.inventory
            before = inv.gateway(name)
            body: S.GatewayIn = S.validate(S.GatewayIn, patched(before, patch))
            m = body.management
            after = body.entity(mgr.policy.default_capacity(m.driver, m.dialect))
            if after == before:
                out = S.gateway_out(before, inv.usage(name), mgr.settings.secrets_dir)
                raise _Unchanged
            if after.management.credentials != before.management.credentials:  # an unchanged (older) one loads
                rules.fenced_credentials(after.management.credentials, mgr.settings.secrets_dir)
            check_management(inv, after)  # one device, one gateway (an unchanged endpoint is not asked)
            inv.put_gateway(after)
            repo.save_gateway(after)
            tx.note(repo.bump([name], tx.generation))  # the gateway: its worker restarts with the new one
            if after.vtep_ip != before.vtep_ip:  # its peers' flood lists and remote MACs name the tunnel IP
                peers, vnis = tunnel_peers(inv, name)
                tx.note(repo.bump(peers, tx.generation, vnis=vnis))
            out = S.gateway_out(after, inv.usage(name), mgr.settings.secrets_dir)
            action = "gateway.mode" if mode_only(before, after) else "gateway.update"
            tx.note(repo.audit(actor, action, f"gateway/{name}", S.dump(S.gateway_out(before, 0)),
                               S.dump(S.gateway_out(after, 0))))
    except _Unchanged:
        pass
    return out


def set_mode(mgr: Manager, name: str, mode: str, actor: str) -> S.GatewayOut:
    """``patch_gateway`` of the mode alone (a bad mode: InvalidInput naming ``mode`` and the rule)."""
    return patch_gateway(mgr, name, {"mode": rules.mode(mode)}, actor)
