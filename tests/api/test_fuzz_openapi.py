"""Schemathesis against a live ``silonet serve``: every operation of the published OpenAPI,
valid and malformed input, with an admin token. No answer may be a 5xx, and every answer
must be one the schema declares (status, content type, body shape); malformed input must be
refused with a 4xx.

The server runs without its reconciler: a fuzzer makes up gateways with arbitrary management
addresses, and nothing may dial those. The example inventory is applied again before each
operation, so GET/DELETE by name also meet real, referenced objects (half of the names are
drawn from it). Failures are collected, not raised, so one run reports all of them in
bounded time (no shrinking).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from silonet.bench.fleet import Server

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra: pip install -e .[dev]")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"
EXAMPLES_PER_MODE = 30  # x 2 modes x 29 operations, less duplicates: about 1,400 cases
MIN_CASES = 1000
TIME_BOUND_S = 120.0
WAIT_CAP_S = 0.05  # ?wait= blocks until the bound: nothing realizes without a reconciler
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


def _known(topology: dict) -> dict[str, list[str]]:
    """Names that exist after the example is applied, per path prefix."""
    return {
        "/v1/silos/": [s["name"] for s in topology["silos"]],
        "/v1/gateways/": [g["name"] for g in topology["gateways"]],
        "/v1/interface-groups/": [g["name"] for g in topology["interface_groups"]],
        "/v1/networks/": [n["name"] for n in topology["networks"]],
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("fuzz") / "server", reconcile=False).start()
    try:
        yield server
    finally:
        server.stop()


def _strategy(op: Any, mode: GenerationMode, topology: dict, headers: dict, keep: set[int]) -> st.SearchStrategy:
    plain = op.as_strategy(generation_mode=mode, headers=headers)
    params = {p.name for p in op.path_parameters}
    if "token_id" in params:  # revoking the fuzzer's own token would turn the rest of the run into 401s
        return plain.filter(lambda case: (case.path_parameters or {}).get("token_id") not in keep)
    if mode is not GenerationMode.POSITIVE or "name" not in params:
        return plain
    prefix = next((k for k in _known(topology) if op.path.startswith(k)), None)
    if prefix is None:
        return plain
    fixed = []
    for name in _known(topology)[prefix]:
        path: dict[str, Any] = {"name": name}
        if {"group", "vlan"} <= params:  # a real attachment of that network
            atts = next(n["attachments"] for n in topology["networks"] if n["name"] == name)
            path |= {"group": atts[0]["interface_group"], "vlan": atts[0]["vlan"]}
        fixed.append(op.as_strategy(generation_mode=mode, headers=headers, path_parameters=path))
    return st.one_of(plain, *fixed)


def _cap_wait(case: Any) -> None:
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > WAIT_CAP_S:
        case.query["wait"] = WAIT_CAP_S
    if case.path == "/v1/events":  # the endless stream, read with a bound
        timeout = (case.query or {}).get("timeout")
        if timeout is None:
            case.query = {**(case.query or {}), "timeout": 0.5}
        elif isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 1:
            case.query["timeout"] = 1  # still valid, and over in a second (a malformed one answers 422)


class Tally:
    """What a run saw: cases per operation and mode, statuses, and the first report of each failure."""

    def __init__(self) -> None:
        self.cases: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.failures: dict[str, str] = {}
        self.seconds: dict[str, float] = {}


def _fuzz(op: Any, mode: GenerationMode, topology: dict, live: Server, tally: Tally, keep: set[int]) -> None:
    """One operation in one mode; failures are collected, so Hypothesis neither stops nor shrinks."""
    label = f"{op.label} [{mode.value}]"
    checks = CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS

    @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=_strategy(op, mode, topology, live.headers, keep))
    def run(case: Any) -> None:
        _cap_wait(case)
        tally.cases[label] = tally.cases.get(label, 0) + 1
        try:
            response = case.call(base_url=live.url, headers=live.headers, timeout=30)
            tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=checks, headers=live.headers)
        except (Exception, FailureGroup) as err:  # collected: the run reports each distinct failure once
            kinds = sorted({getattr(f, "title", type(f).__name__) for f in getattr(err, "exceptions", [err])})
            tally.failures.setdefault(f"{label}: {', '.join(kinds)}", str(err)[:3000])

    try:
        run()
    except Unsatisfiable:  # no parameters and no body (GET /v1/status): nothing to make malformed
        assert mode is GenerationMode.NEGATIVE, label


def test_openapi_fuzz(live: Server) -> None:
    topology = yaml.safe_load(EXAMPLE.read_text())
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", headers=live.headers)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20, [o.label for o in operations]
    tally = Tally()
    started = time.monotonic()
    with httpx.Client(base_url=live.url, headers=live.headers, timeout=30) as http:
        tokens = http.get("/v1/tokens")
        assert tokens.status_code == 200, tokens.text
        keep = {t["id"] for t in tokens.json() if t["role"] == "admin"}
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                reseed = http.post("/v1/apply", json=topology)  # what a DELETE removed is back
                assert reseed.status_code == 200, reseed.text
                t0 = time.monotonic()
                _fuzz(op, mode, topology, live, tally, keep)
                tally.seconds[f"{op.label} [{mode.value}]"] = time.monotonic() - t0
    elapsed = time.monotonic() - started
    total = sum(tally.cases.values())
    print(f"\nfuzz: {total} cases over {len(operations)} operations in {elapsed:.1f} s; "
          f"statuses {sorted(tally.statuses.items())}")
    for label, secs in sorted(tally.seconds.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {secs:5.1f} s  {tally.cases.get(label, 0):3d} cases  {label}")
    assert not tally.failures, "\n\n".join(f"== {k}\n{v}" for k, v in tally.failures.items())
    assert total >= MIN_CASES, tally.cases
    assert {op.label for op in operations} <= {k.rsplit(" [", 1)[0] for k in tally.cases}
    assert elapsed <= TIME_BOUND_S, f"{total} cases took {elapsed:.0f} s"


# Values a generator rarely reaches: integers past 64 bits, bodies that are not UTF-8 or nest
# deeply, NUL and lone surrogates, strange cursors and waits. The first three were bugs.
EDGES = [
    ("GET", "/v1/audit?before=99999999999999999999999", None),  # was 500: OverflowError in SQLite
    ("GET", "/v1/audit?before=2147483648", None),  # past the id column (INTEGER on PostgreSQL)
    ("POST", "/v1/silos", b"\xff\xfe"),  # was 400 with no field: not UTF-8
    ("POST", "/v1/silos", b"[" * 100_000 + b"]" * 100_000),
    ("POST", "/v1/networks", b'{"name": "n", "tenant": "t", "vni": 1' + b"0" * 5000 + b"}"),
    ("POST", "/v1/networks", b'{"name": "n", "tenant": "t", "vni": NaN}'),
    ("POST", "/v1/networks", b'{"name": "n\\u0000", "tenant": "t"}'),
    ("POST", "/v1/networks", b'{"name": "n\\ud800", "tenant": "t"}'),
    ("POST", "/v1/networks", b""),
    ("GET", "/v1/networks/%FF", None),
    ("GET", "/v1/networks/a%00b", None),
    ("GET", "/v1/attachments?cursor=%FF%FE", None),
    ("GET", "/v1/attachments?cursor=eyJ4IjoxfQ", None),
    ("GET", "/v1/attachments?limit=99999999999999999999999", None),
    ("POST", "/v1/networks/cust-42/attachments?wait=nan", b'{"interface_group": "bmc", "vlan": 5}'),
    ("DELETE", "/v1/networks/cust-42/attachments/bmc/99999999999999999999999", None),
    ("DELETE", "/v1/tokens/99999999999999999999999", None),
    ("GET", "/v1/plan?gateway=%00", None),
]


@pytest.mark.parametrize(("method", "url", "body"), EDGES, ids=[f"{m} {u}"[:60] for m, u, _ in EDGES])
def test_edge_inputs(live: Server, method: str, url: str, body: bytes | None) -> None:
    headers = {**live.headers, "Content-Type": "application/json"}
    r = httpx.request(method, f"{live.url}{url}", content=body, headers=headers, timeout=30)
    assert r.status_code in (200, 404, 409, 422), (r.status_code, r.text)
    if r.status_code >= 400:
        err = r.json()
        assert set(err) == {"error", "field", "message", "problems"} and err["field"] and err["message"], err


@pytest.mark.parametrize(("method", "url", "allow"), [("OPTIONS", "/v1/networks", "GET, POST"),
                                                      ("PUT", "/v1/networks/cust-42", "DELETE, GET"),
                                                      ("TRACE", "/v1/status", "GET")])
def test_405_names_every_method(live: Server, method: str, url: str, allow: str) -> None:
    """Starlette's Allow named the first route's methods only (schemathesis ST205)."""
    r = httpx.request(method, f"{live.url}{url}", headers=live.headers, timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == allow, (r.status_code, r.headers)
    assert r.json()["error"] == "method_not_allowed"
