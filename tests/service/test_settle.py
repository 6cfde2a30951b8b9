"""Wait, then read again (``Manager.settle*``): what a ``?wait=`` / ``--wait`` answers is the state
as the wait ended, blocking (the CLI's local store) and on the event loop (the API) alike."""

from __future__ import annotations

import threading

import anyio
import pytest

from silonet.service import Manager
from silonet.service import schemas as S

GATEWAY = {"name": "gw-x", "vtep_ip": "198.18.0.200",
           "management": {"driver": "ovsdb", "address": "tcp:198.18.1.200:6640"}}


@pytest.mark.parametrize("blocking", [True, False])
def test_a_gateway_waited_for_is_gone_or_read_again(seeded: Manager, blocking: bool) -> None:
    m = seeded
    m.create_gateway(S.validate(S.GatewayIn, GATEWAY))

    def settle(timeout: float) -> S.RealizationOut | None:
        return m.settle_gateway("gw-x", timeout) if blocking else anyio.run(m.settle_gateway_async, "gw-x", timeout)

    still = settle(0.05)  # not forgotten when the wait ends: its state then
    assert isinstance(still, S.RealizationOut) and still.gateway == "gw-x" and still == m.gateway_state("gw-x")
    timer = threading.Timer(0.2, m.delete_gateway, args=("gw-x",), kwargs={"force": True})
    timer.start()
    assert settle(5) is None  # forgotten meanwhile: gone
    timer.join()


def test_an_attachment_waited_for_is_read_again(seeded: Manager) -> None:
    net = next(n for n in seeded.list_networks() if n.attachments)
    att = net.attachments[0]
    stale = att.model_copy(update={"status": "realized", "reason": "stale"})
    fresh = seeded.get_attachment(att.network, att.interface_group, att.vlan)
    assert seeded.settle(stale, 0.05) == fresh
    assert anyio.run(seeded.settle_async, stale, 0.05) == fresh
