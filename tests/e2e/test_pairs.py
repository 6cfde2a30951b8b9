"""Issue 20, end to end: a PaaS silo behind a redundant pair of ovs-vtep gateways sharing one
anycast VTEP, joined to a KVM silo. The active member dies (``Lab.fault``: daemons stopped, links
down, the fabric moves the anycast address and the ToR's uplink to the survivor): traffic comes
back with no write to any gateway (the reconciler's apply log says so), the attachment is
``degraded`` with the member unreachable; a VLAN attached meanwhile is realized on the survivor;
the member comes back and is resynced (the change made meanwhile included, per ``vtep-ctl``), and
the attachments are ``realized`` again. The event stream tells each step (the member unreachable,
the attachment degraded, the member up, the VLAN attached meanwhile realized). Failover and resync
times are printed (the note reports them).

A lab of its own (prefix ``sp``, index 20): gw-pa and gw-pb (pair ``paas``) behind one dual-homed
ToR with hosts on VLANs 500 and 501; gw-k with hosts on VLANs 300 and 301.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.lab import GatewaySpec, Group, Host, Lab, LabTopology, Silo, Tor
from silonet.reconcile import Reconciler
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.store.db import Database
from tests.conftest import ADMIN, ADMIN_TOKEN, fresh_lab
from tests.e2e.conftest import _missing, eventually, lab_inventory

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]

TOPO = LabTopology("pairs", (
    GatewaySpec("gw-pa", "paas", pair="paas"), GatewaySpec("gw-pb", "paas", pair="paas"), GatewaySpec("gw-k", "kvm"),
), (
    Silo("paas", "paas", (Group("paas", (Tor("paas", "p1", (
        Host("pa500", 500, "203.0.113.51"), Host("pa501", 501, "203.0.113.52")), "paas-tor"),)),)),
    Silo("kvm", "kvm", (Group("kvm", (Tor("gw-k", "p1", (
        Host("k300", 300, "203.0.113.31"), Host("k301", 301, "203.0.113.32")), "kvm-tor"),)),)),
))
FAILOVER_S = 5.0  # the bounds
SECRET = "SILONET_SECRET_E2E_PAIRS"
RESYNC_S = 10.0


class _Applies(logging.Handler):
    """The reconciler's apply log: one line per device write."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Pair:
    lab: Lab
    client: TestClient
    applies: _Applies


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if why := _missing():
        pytest.skip(why)
    base = tmp_path_factory.mktemp("pairs")
    lab = fresh_lab("sp", 20)
    applies = _Applies()
    log = logging.getLogger("silonet.reconcile.apply")
    old_level = log.level
    log.addHandler(applies)
    log.setLevel(logging.INFO)
    try:
        lab.up(TOPO, driver="ovsdb")
        db = Database(f"sqlite:///{base / 'silonet.db'}")
        db.upgrade()
        manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10100),
                                                admin_token=ADMIN_TOKEN))
        manager.apply(lab_inventory(lab))
        rec = Reconciler(manager.runtime, period=5.0, poll=0.5)
        with TestClient(create_app(manager, rec), headers=ADMIN) as client:
            yield Pair(lab, client, applies)
        db.dispose()
    finally:
        log.removeHandler(applies)
        log.setLevel(old_level)
        lab.down()


def _attach(client: TestClient, net: str, group: str, vlan: int) -> dict:
    r = client.post(f"/v1/networks/{net}/attachments?wait=30", json={"interface_group": group, "vlan": vlan})
    assert r.status_code == 201, r.text
    return r.json()


def _attachment(client: TestClient, net: str, group: str) -> dict:
    return next(a for a in client.get(f"/v1/networks/{net}").json()["attachments"] if a["interface_group"] == group)


def _pings(lab: Lab, src: str, dst_ip: str, within: float) -> float | None:
    """Seconds until one ping from ``src`` is answered (bounded by ``within``), None if none was."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if lab.ping(src, dst_ip, count=1, timeout=0.3):
            return time.monotonic() - t0
    return None


def _active(lab: Lab) -> str:
    return next(g["name"] for g in lab.status()["gateways"] if g.get("pair") == "paas" and g.get("active"))


def test_failover_without_a_write_and_resync_of_the_member_that_comes_back(pair: Pair) -> None:
    lab, client = pair.lab, pair.client
    gws = {g["name"]: g for g in client.get("/v1/gateways").json()}
    assert gws["gw-pa"]["pair"] == gws["gw-pb"]["pair"] == "paas" and gws["gw-pa"]["vtep_ip"] == gws["gw-pb"]["vtep_ip"]
    for name, vni in (("web", 7020), ("api", 7021)):
        assert client.post("/v1/networks", json={"name": name, "tenant": "e2e", "vni": vni}).status_code == 201
    assert _attach(client, "web", "kvm", 300)["status"] == "realized"
    assert _attach(client, "web", "paas", 500)["status"] == "realized"
    assert _pings(lab, "pa500", "203.0.113.31", 20) is not None, "no ping across the silos before the fault"
    anycast = gws["gw-pa"]["vtep_ip"]
    assert _flood(lab, "gw-k", 7020) == [anycast]  # the pair is one VTEP to the others, listed once
    for member in ("gw-pa", "gw-pb"):
        assert _flood(lab, member, 7020) == ["198.18.40.3"]  # gw-k's; never the pair's own address

    # the active member dies: the fabric fails over, silonet pushes nothing
    dead = _active(lab)
    survivor = "gw-pb" if dead == "gw-pa" else "gw-pa"
    _settle(pair.applies)  # the writes the pings' MAC learning caused (remote MACs) are done
    mark = len(pair.applies.lines)
    since = max((e["id"] for e in _events(client) if "id" in e), default=0)  # the event stream's position now
    hooked = _Receiver()  # and a webhook taking attachment events, on loopback
    os.environ[SECRET] = "e2e-pairs"
    r = client.post("/v1/webhooks", json={"url": hooked.url, "secret": f"env:{SECRET}", "events": ["attachment"]})
    assert r.status_code == 201, r.text
    t0 = time.monotonic()
    lab.fault(dead, "down")
    back = _pings(lab, "pa500", "203.0.113.31", FAILOVER_S)
    failover = time.monotonic() - t0
    assert back is not None, f"traffic not back within {FAILOVER_S} s of {dead} going down"
    assert _active(lab) == survivor
    eventually(lambda: client.get(f"/v1/gateways/{dead}/status").json()["reachable"] is False, 15,
               f"{dead} unreachable")
    _settle(pair.applies)  # whatever the failover made silonet do (the survivor's MACs relearned) is done
    written = [line for line in pair.applies.lines[mark:] if "applied" in line]
    assert written == [], f"a failover must push nothing, yet: {written}"
    seen = _events(client, since)  # the portal heard of it: the member down, the attachment degraded
    assert any(e["event"] == "gateway" and e["data"]["gateway"] == dead and e["data"]["condition"] == "unreachable"
               for e in seen), seen
    assert any(e["event"] == "attachment" and e["data"]["interface_group"] == "paas" and e["data"]["vlan"] == 500
               and e["data"]["status"] == "degraded" for e in seen), seen
    eventually(lambda: any(b.get("vlan") == 500 and b.get("status") == "degraded" for b in hooked.bodies), 10,
               "the webhook told of the degraded attachment")
    hooked.stop()
    att = _attachment(client, "web", "paas")
    assert att["status"] == "degraded", att
    assert f"'{dead}'" in att["reason"] and f"'{survivor}' carries the traffic" in att["reason"], att["reason"]

    # a change while the member is down is realized on the survivor
    assert _attach(client, "api", "kvm", 301)["status"] == "realized"
    att = _attach(client, "api", "paas", 501)
    assert att["status"] == "degraded", att
    by_gw = {g["gateway"]: g["status"] for g in att["gateways"]}
    assert by_gw[survivor] == "realized" and by_gw[dead] == "failed", by_gw
    assert _pings(lab, "pa501", "203.0.113.32", 20) is not None, "the VLAN attached meanwhile does not forward"

    # the member comes back: resynced to the intent of now, then the pair is whole again
    t1 = time.monotonic()
    lab.fault(dead, "up")
    eventually(lambda: all(_attachment(client, net, "paas")["status"] == "realized" for net in ("web", "api")),
               RESYNC_S, f"{dead} resynced and both attachments realized")
    resync = time.monotonic() - t1
    back_up = _events(client, since)
    assert any(e["event"] == "gateway" and e["data"]["gateway"] == dead and e["data"]["condition"] == "up"
               for e in back_up), back_up
    assert any(e["event"] == "attachment" and e["data"]["vlan"] == 501 and e["data"]["status"] == "realized"
               for e in back_up), back_up
    bindings = lab.vtep_ctl(dead, "list-bindings", dead, "p1")
    assert "0501" in bindings and "0500" in bindings, bindings  # the change made meanwhile is there
    assert _active(lab) == survivor  # no preemption
    assert _pings(lab, "pa500", "203.0.113.31", 10) is not None
    print(f"\nfailover: traffic back {failover:.2f} s after {dead} went down (first answered ping "
          f"{back:.2f} s); resync: {dead} realized again {resync:.2f} s after it came up")


class _Receiver:
    """A webhook receiver on loopback: the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        bodies: list[dict] = []

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name for it
                bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _events(client: TestClient, after: int = 0) -> list[dict]:
    """The event stream after ``after``, read for half a second (id, event, data per event)."""
    out, cur = [], {}
    with client.stream("GET", "/v1/events", params={"timeout": 0.5}, headers={"Last-Event-ID": str(after)}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line and cur:
                out.append(cur)
                cur = {}
            elif line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                cur[key] = json.loads(value) if key == "data" else int(value) if key == "id" else value
    return out


def _settle(applies: _Applies, quiet: float = 2.0, within: float = 20.0) -> None:
    """Until the apply log has been quiet for ``quiet`` s (bounded)."""
    deadline = time.monotonic() + within
    seen, since = len(applies.lines), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"the reconciler kept writing for {within} s: {applies.lines[-3:]}"
        time.sleep(0.2)
        if len(applies.lines) != seen:
            seen, since = len(applies.lines), time.monotonic()


def _flood(lab: Lab, gateway: str, vni: int) -> list[str]:
    """The tunnel addresses of the VNI's flood list (``unknown-dst``) on a gateway, as vtep-ctl lists them."""
    out = lab.vtep_ctl(gateway, "list-remote-macs", _ls_name(lab, gateway, vni))
    return sorted(line.split("vxlan_over_ipv4/", 1)[1].strip() for line in out.splitlines()
                  if line.strip().startswith("unknown-dst") and "vxlan_over_ipv4/" in line)


def _ls_name(lab: Lab, gateway: str, vni: int) -> str:
    """The logical switch of ``vni`` on a gateway, as vtep-ctl names it."""
    for name in lab.vtep_ctl(gateway, "list-ls").split():
        if lab.vtep_ctl(gateway, "get", "Logical_Switch", name, "tunnel_key").strip() == str(vni):
            return name
    raise AssertionError(f"no logical switch for VNI {vni} on {gateway}")
