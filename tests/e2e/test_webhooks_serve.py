"""Webhooks end to end: a real ``silonet serve`` (in-memory gateways) and a receiver on loopback.
The webhook is made with the CLI against the server (the remote backend); each attach is heard by
the webhook (its ``intent`` event, and the ``attachment`` status change when the reconciler
announces it), signed with the secret the reference names; the deliveries show as delivered.
Prints attach -> webhook received latency (p50/p99): measured, not judged (shared machines)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from silonet.bench.fleet import Server
from tests.service.test_dispatch import Got, Receiver
from tests.support.cli import ROOT, silonet

pytestmark = pytest.mark.slow

SECRET_ENV = "SILONET_SECRET_E2E_HOOK"
SECRET = "e2e-hook-secret"
ATTACHES = 30


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv(SECRET_ENV, SECRET)  # the server inherits it
    server = Server(tmp_path / "server", period=10.0).start()
    try:
        yield server
    finally:
        server.stop()


def readme_receiver() -> Callable[..., bool]:
    """The receiver's check the README shows (its Python block under "Webhooks"), as written."""
    text = (ROOT / "README.md").read_text().split("### Webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, flags=re.S)
    assert code is not None
    scope: dict = {}
    exec(code.group(1), scope)
    return scope["verified"]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def _attach_events(got: list[Got], kind: str) -> dict[int, Got]:
    """Arrivals by VLAN: the attach's ``intent`` event, or its ``attachment`` event saying realized."""
    want = {"type": "intent", "action": "attach"} if kind == "intent" else {"type": "attachment", "status": "realized"}
    out: dict[int, Got] = {}
    for g in got:
        body = json.loads(g.body)
        if all(body.get(k) == v for k, v in want.items()):
            out.setdefault(body.get("vlan"), g)
    return out


def test_attaches_are_delivered_signed_to_a_webhook(served: Server, tmp_path: Path) -> None:
    receiver = Receiver()
    http = httpx.Client(base_url=served.url, headers=served.headers, timeout=30)
    try:
        for i, name in enumerate(("gw-a", "gw-b"), start=1):
            assert http.post("/v1/gateways", json={"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                                                   "management": {"driver": "memory"}}).status_code == 201
            assert http.post("/v1/interface-groups", json={
                "name": f"g{i}", "members": [{"gateway": name, "port": "p1"}]}).status_code == 201
        assert http.post("/v1/networks", json={"name": "web", "tenant": "acme", "vni": 5000}).status_code == 201
        r = http.post("/v1/networks/web/attachments?wait=10", json={"interface_group": "g2", "vlan": 1})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text

        cli = ("--server", served.url, "--token", served.token)
        made = silonet(tmp_path / "cli", *cli, "webhook", "create", receiver.url, "--secret", f"env:{SECRET_ENV}",
                       "--event", "intent", "--event", "attachment", "--json")
        assert made.returncode == 0, made.stderr
        hook = json.loads(made.stdout)

        intent, realized = [], []
        for i in range(ATTACHES):
            vlan = 100 + i
            t0 = time.perf_counter()
            r = http.post("/v1/networks/web/attachments", json={"interface_group": "g1", "vlan": vlan})
            assert r.status_code == 201, r.text
            assert receiver.wait_for(lambda got, v=vlan: v in _attach_events(got, "intent"), timeout=10), vlan
            intent.append((_attach_events(receiver.got, "intent")[vlan].at - t0) * 1000)
            if receiver.wait_for(lambda got, v=vlan: v in _attach_events(got, "realized"), timeout=10):
                realized.append((_attach_events(receiver.got, "realized")[vlan].at - t0) * 1000)

        print(f"\nattach -> webhook received (intent), {len(intent)} attaches: p50 {_pct(intent, 50):.1f} ms, "
              f"p99 {_pct(intent, 99):.1f} ms")
        if realized:
            print(f"attach -> webhook received (attachment realized), {len(realized)}: "
                  f"p50 {_pct(realized, 50):.1f} ms, p99 {_pct(realized, 99):.1f} ms")

        verified, seen = readme_receiver(), set()
        for g in receiver.got:  # every request signed with the secret's value, over the exact body
            expected = "sha256=" + hmac.new(SECRET.encode(), g.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(g.headers["x-silonet-signature"], expected)
            assert g.headers["x-silonet-event"] == json.loads(g.body)["type"]
            headers = {"X-Silonet-Signature": g.headers["x-silonet-signature"],
                       "X-Silonet-Delivery": g.headers["x-silonet-delivery"]}
            assert verified(g.body, headers, SECRET.encode(), seen)
            assert not verified(g.body, headers, SECRET.encode(), seen)  # a repeat
            assert not verified(g.body + b" ", {**headers, "X-Silonet-Delivery": "new"}, SECRET.encode(), seen)
        assert len({g.headers["x-silonet-delivery"] for g in receiver.got}) == len(receiver.got)  # none twice

        shown = silonet(tmp_path / "cli", *cli, "webhook", "deliveries", str(hook["id"]), "--limit", "5", "--json")
        assert shown.returncode == 0, shown.stderr
        page = json.loads(shown.stdout)
        assert len(page) == 5 and all(d["state"] == "delivered" and d["attempts"][-1]["status"] == 200 for d in page)
        assert SECRET not in (shown.stdout + made.stdout + (Path(served.dir) / "server.log").read_text())
        assert silonet(tmp_path / "cli", *cli, "webhook", "delete", str(hook["id"])).returncode == 0
        assert http.get("/v1/webhooks").json() == []
    finally:
        http.close()
        receiver.close()
