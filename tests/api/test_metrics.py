"""GET /metrics: Prometheus text an actual parser reads; API calls move the request histogram by
route template; a reconciler driving real vtep ovsdb-servers moves passes, operations, up and
generation lag (a gateway whose device stops shows up 0, device errors and a lag)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from silonet.api.app import create_app
from silonet.devices.vtepdb import VtepDb
from silonet.service import Manager
from tests.conftest import ADMIN
from tests.functional.conftest import two_gateways

Samples = dict[tuple[str, frozenset], float]


def scrape(client: TestClient) -> tuple[set[str], Samples]:
    """The family names and every sample, keyed by (sample name, labels)."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(r.text))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_a_token(client: TestClient) -> None:
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer snt_wrong"}).status_code == 401
    r = client.post("/v1/tokens", json={"role": "tenant", "tenant": "metrics", "description": "prometheus"})
    assert r.status_code == 201, r.text
    scraper = {"Authorization": f"Bearer {r.json()['token']}"}  # any role may scrape
    assert client.get("/metrics", headers=scraper).status_code == 200


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    families, before = scrape(client)
    assert {"silonet_build_info", "silonet_http_request_duration_seconds"} <= families
    assert not any(n.startswith("silonet_reconcile") for n in families)  # an API-only app has no reconciler
    assert client.post("/v1/silos", json={"name": "dc-1"}).status_code == 201
    for name in ("dc-1", "nope-1", "nope-2"):
        client.get(f"/v1/silos/{name}")
    client.get("/no/such/path")
    _, after = scrape(client)
    count = "silonet_http_request_duration_seconds_count"
    route = "/v1/silos/{name}"
    assert value(after, count, method="POST", route="/v1/silos", status="201") == 1
    assert value(after, count, method="GET", route=route, status="200") == 1
    assert value(after, count, method="GET", route=route, status="404") == 2
    assert value(after, count, method="GET", route="unmatched", status="404") == 1
    assert value(after, "silonet_http_request_duration_seconds_bucket", method="GET", route=route, status="404",
                 le="+Inf") == 2
    assert value(after, count, method="GET", route="/metrics", status="200") == value(
        before, count, method="GET", route="/metrics", status="200") + 1
    assert not any("nope" in str(labels) for _, labels in after), "raw paths must not become labels"


def test_each_app_has_its_own_registry(manager: Manager, client: TestClient) -> None:
    """Two apps in one process: no 'Duplicated timeseries' error, and separate counts."""
    with TestClient(create_app(manager), headers=ADMIN) as other:
        other.get("/v1/silos")
        other.get("/v1/silos")
        _, theirs = scrape(other)
    client.get("/v1/silos")
    _, mine = scrape(client)
    count = "silonet_http_request_duration_seconds_count"
    assert value(theirs, count, method="GET", route="/v1/silos", status="200") == 2
    assert value(mine, count, method="GET", route="/v1/silos", status="200") == 1


# ------------------------------------------------------------ with a reconciler
@pytest.fixture
def fabric(tmp_path: Path, manager: Manager) -> Iterator[tuple[TestClient, dict[str, VtepDb]]]:
    with two_gateways(tmp_path, manager) as fab:
        yield fab


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.ovs
def test_reconcile_moves_passes_operations_up_and_lag(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    r = client.post("/v1/networks/cust-42/attachments?wait=15", json={"interface_group": "ga", "vlan": 100})
    assert r.status_code == 201 and r.json()["status"] == "realized", r.text
    r = client.post("/v1/networks/cust-42/attachments?wait=15", json={"interface_group": "gb", "vlan": 200})
    assert r.status_code == 201 and r.json()["status"] == "realized", r.text
    families, s = scrape(client)
    assert {"silonet_reconcile_pass_duration_seconds", "silonet_reconcile_operations",
            "silonet_gateway_reconcile_passes", "silonet_gateway_device_errors", "silonet_gateway_up",
            "silonet_gateway_generation_lag"} <= families
    assert value(s, "silonet_reconcile_pass_duration_seconds_count", result="ok") >= 2
    assert value(s, "silonet_reconcile_operations_total", kind="bind") == 2
    assert value(s, "silonet_reconcile_operations_total", kind="ensure_logical_switch") == 2
    for gw in dbs:
        assert value(s, "silonet_gateway_reconcile_passes_total", gateway=gw) >= 1
        assert value(s, "silonet_gateway_up", gateway=gw) == 1
        assert value(s, "silonet_gateway_generation_lag", gateway=gw) == 0
        assert value(s, "silonet_gateway_device_errors_total", gateway=gw) == 0

    dbs["gw-b"].stop()  # the device goes away: its next passes fail
    r = client.delete("/v1/networks/cust-42/attachments/gb/200")  # gw-b's desired state moves on without it
    assert r.status_code == 204

    def gw_b_is_down_and_behind() -> bool:
        _, s = scrape(client)
        return (value(s, "silonet_gateway_up", gateway="gw-b") == 0
                and value(s, "silonet_gateway_device_errors_total", gateway="gw-b") >= 1
                and value(s, "silonet_gateway_generation_lag", gateway="gw-b") >= 1
                and value(s, "silonet_gateway_generation_lag", gateway="gw-a") == 0)

    eventually(gw_b_is_down_and_behind)
    _, s = scrape(client)
    assert value(s, "silonet_reconcile_pass_duration_seconds_count", result="error") >= 1
    assert value(s, "silonet_gateway_up", gateway="gw-a") == 1


@pytest.mark.ovs
def test_a_gateway_held_in_observe_mode_reports_no_generation_lag(fabric) -> None:  # type: ignore[no-untyped-def]
    """In observe mode silonet writes nothing on purpose: the lag there is no alarm, so no series."""
    client, _dbs = fabric
    assert client.patch("/v1/gateways/gw-b", json={"mode": "observe"}).status_code == 200
    r = client.post("/v1/networks/cust-42/attachments?wait=15", json={"interface_group": "gb", "vlan": 200})
    assert r.status_code == 201 and r.json()["status"] == "held", r.text

    def only_gw_a_has_a_lag() -> bool:
        _, s = scrape(client)
        return (value(s, "silonet_gateway_reconcile_passes_total", gateway="gw-b") >= 1
                and value(s, "silonet_gateway_generation_lag", gateway="gw-a") == 0
                and ("silonet_gateway_generation_lag", frozenset({("gateway", "gw-b")})) not in s
                and ("silonet_gateway_generation_lag", frozenset({("gateway", "gw-a")})) in s)

    eventually(only_gw_a_has_a_lag)


# ------------------------------------------------------------ who sees what
TENANT_SEES = {"silonet_build_info", "silonet_http_request_duration_seconds", "silonet_reconcile_pass_duration_seconds",
               "silonet_reconcile_operations", "silonet_reconcile_settled_passes"}


def tenant_headers(client: TestClient) -> dict[str, str]:
    r = client.post("/v1/tokens", json={"role": "tenant", "tenant": "metrics", "description": "prometheus"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.ovs
def test_a_tenant_scrapes_aggregates_only_an_admin_everything(fabric) -> None:  # type: ignore[no-untyped-def]
    """Per-gateway series name every gateway and tell which is down or failing (what /v1/status
    tells admins only): a tenant's scrape leaves them out."""
    client, dbs = fabric
    for group, vlan in (("ga", 100), ("gb", 200)):
        r = client.post("/v1/networks/cust-42/attachments?wait=15", json={"interface_group": group, "vlan": vlan})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text
    dbs["gw-b"].stop()  # a gateway that fails: device errors, down
    eventually(lambda: value(scrape(client)[1], "silonet_gateway_up", gateway="gw-b") == 0)

    families, full = scrape(client)
    assert {"silonet_gateway_up", "silonet_gateway_device_errors"} <= families
    assert {dict(labels).get("gateway") for _, labels in full} >= {"gw-a", "gw-b"}

    r = client.get("/metrics", headers=tenant_headers(client))
    assert r.status_code == 200
    seen = list(text_string_to_metric_families(r.text))
    assert {f.name for f in seen} == TENANT_SEES
    labels = {name for f in seen for s in f.samples for name in s.labels}
    assert labels <= {"version", "method", "route", "status", "result", "kind", "scope", "le"}, labels
    assert not any(gw in r.text for gw in dbs), "a gateway's name reached a tenant's scrape"
    assert "silonet_gateway_" not in r.text
    # the aggregates are the admin's figures, not a copy that drifts
    tenant = {(s.name, frozenset(s.labels.items())): s.value for f in seen for s in f.samples}
    assert tenant[("silonet_reconcile_operations_total", frozenset({("kind", "bind")}))] == value(
        full, "silonet_reconcile_operations_total", kind="bind")


def test_without_a_reconciler_a_tenant_reads_the_api_series(client: TestClient) -> None:
    r = client.get("/metrics", headers=tenant_headers(client))
    assert r.status_code == 200
    assert {f.name for f in text_string_to_metric_families(r.text)} == {
        "silonet_build_info", "silonet_http_request_duration_seconds"}


def test_workers_families_merge_as_one_process_would_show_them() -> None:
    """``serve --workers N``: each child's registry, collected, merged into one set of series."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

    from silonet.reconcile.metrics import merge

    disable_created_metrics()
    parts = []
    for ops, seconds, lag in ((3, 0.02, {"gw-a": 0}), (4, 0.3, {"gw-a": 2, "gw-b": 1})):
        registry = CollectorRegistry()
        Counter("silonet_reconcile_operations", "ops", ["kind"], registry=registry).labels("bind").inc(ops)
        Histogram("silonet_reconcile_pass_duration_seconds", "passes", ["result"], buckets=(0.05, 1.0),
                  registry=registry).labels("ok").observe(seconds)
        gauge = Gauge("silonet_gateway_generation_lag", "lag", ["gateway"], registry=registry)
        for gateway, v in lag.items():
            gauge.labels(gateway).set(v)
        parts.append(list(registry.collect()))
    merged = {f.name: f for f in merge(parts)}
    assert set(merged) == {"silonet_reconcile_operations", "silonet_reconcile_pass_duration_seconds",
                           "silonet_gateway_generation_lag"}
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in merged.values() for s in f.samples}
    assert samples[("silonet_reconcile_operations_total", frozenset({("kind", "bind")}))] == 7
    ok = {("result", "ok")}
    assert samples[("silonet_reconcile_pass_duration_seconds_bucket", frozenset(ok | {("le", "0.05")}))] == 1
    assert samples[("silonet_reconcile_pass_duration_seconds_bucket", frozenset(ok | {("le", "+Inf")}))] == 2
    assert samples[("silonet_reconcile_pass_duration_seconds_count", frozenset(ok))] == 2
    assert samples[("silonet_reconcile_pass_duration_seconds_sum", frozenset(ok))] == pytest.approx(0.32)
    assert samples[("silonet_gateway_generation_lag", frozenset({("gateway", "gw-a")}))] == 2  # the larger
    assert samples[("silonet_gateway_generation_lag", frozenset({("gateway", "gw-b")}))] == 1
    assert merge([]) == []
