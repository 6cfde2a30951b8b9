"""JSON logs and one request id from the API call through the service's write to the reconcile
passes it caused on each gateway it changed; the id is echoed in X-Request-ID; tokens never show."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from silonet import logs
from silonet.devices.vtepdb import free_port
from silonet.service.auth import new_secret
from tests.api.test_metrics import fabric  # noqa: F401 (a fixture: two real vtep ovsdb-servers, a reconciler)
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What ``silonet serve --log-format json`` writes, caught in memory for this test."""
    buf = io.StringIO()
    handler = logs.handler("json", buf)
    root, ours = logging.getLogger(), logging.getLogger("silonet")
    level = ours.level
    ours.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        ours.setLevel(level)


def parse(text: str) -> list[dict]:
    """Every line is one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_request_id_is_taken_or_made_and_echoed(client: TestClient) -> None:
    made = client.get("/v1/silos").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    assert client.get("/v1/silos").headers["x-request-id"] != made
    assert client.get("/v1/silos", headers={"X-Request-ID": "ops-4711.a:b"}).headers["x-request-id"] == "ops-4711.a:b"
    for insane in ('a b', 'x"; rm -rf /', "x" * 65, "-leading-dash", ""):
        got = client.get("/v1/silos", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", got), (insane, got)
    r = client.get("/v1/silos/nope", headers={"X-Request-ID": "err-1"})  # errors carry it too
    assert r.status_code == 404 and r.headers["x-request-id"] == "err-1"


@pytest.mark.ovs
def test_one_request_id_from_attach_to_each_gateways_pass(fabric, json_log: io.StringIO) -> None:  # noqa: F811
    client, _dbs = fabric
    r = client.post("/v1/networks/cust-42/attachments?wait=15", json={"interface_group": "ga", "vlan": 100},
                    headers={"X-Request-ID": "attach-req-1"})
    assert r.status_code == 201 and r.json()["status"] == "realized", r.text
    assert r.headers["x-request-id"] == "attach-req-1"
    r = client.post("/v1/networks/cust-42/attachments?wait=15", json={"interface_group": "gb", "vlan": 200},
                    headers={"X-Request-ID": "attach-req-2"})
    assert r.status_code == 201 and r.json()["status"] == "realized", r.text

    lines = parse(json_log.getvalue())
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)

    def tagged(rid: str, logger: str) -> list[str]:
        return [x["message"] for x in lines if rid in x.get("request_id", "").split(",") and x["logger"] == logger]

    # the service's write, then the pass on gw-a it caused
    [audit] = tagged("attach-req-1", "silonet.service.audit")
    assert re.fullmatch(r"generation \d+: admin: attach network/cust-42/attachments/ga/100; 1 gateway\(s\) to "
                        r"reconcile", audit)
    assert [m.split(":")[0] for m in tagged("attach-req-1", "silonet.reconcile.apply")] == ["gateway gw-a"]
    # the second attach changed both gateways (gw-b binds, gw-a floods to gw-b): both passes carry its id
    assert len(tagged("attach-req-2", "silonet.service.audit")) == 1
    assert sorted(m.split(":")[0] for m in tagged("attach-req-2", "silonet.reconcile.apply")) == [
        "gateway gw-a", "gateway gw-b"]
    assert ADMIN_TOKEN not in json_log.getvalue()


def test_serve_log_format_json(tmp_path: Path) -> None:
    """The real server: every line it writes is JSON, uvicorn's access lines and the service's
    audit line carry the client's id, and the admin token shows nowhere."""
    token, port = new_secret(), free_port()
    env = {**os.environ, "SILONET_DATA_DIR": str(tmp_path), "SILONET_ADMIN_TOKEN": token,
           "SILONET_DATABASE_URL": f"sqlite:///{tmp_path / 'silonet.db'}"}
    out = tmp_path / "server.log"
    with out.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "silonet.cli.main", "serve", "--no-reconcile", "--port",
                                 str(port), "--log-format", "json"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}", "X-Request-ID": "cli-req-7"}
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "silonet serve did not answer in 30 s"
            time.sleep(0.1)
        r = httpx.post(f"{url}/v1/silos", json={"name": "dc-9"}, headers=headers, timeout=10)
        assert r.status_code == 201 and r.headers["x-request-id"] == "cli-req-7"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    text = out.read_text()
    lines = parse(text)
    assert token not in text
    mine = [x for x in lines if x.get("request_id") == "cli-req-7"]
    assert {x["logger"] for x in mine} == {"silonet.service.audit", "uvicorn.access"}, mine
    assert any("POST /v1/silos" in x["message"] for x in mine)
    assert any(x["logger"] == "silonet.serve" for x in lines)
