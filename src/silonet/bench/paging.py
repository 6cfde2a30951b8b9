"""Control-plane benchmark: how long one page of ``GET /v1/attachments`` takes on a big fleet.

``measure_paging`` fills an empty database with a synthetic fleet through bulk core
inserts (no use cases: minutes become seconds), then walks the pages through the real
FastAPI application, following ``next_cursor`` (from the start again when it reaches the
end), and reports p50/p99 of the request time.

The fleet: gateways of 48 ports (p48 a switch-back port), interface groups of 10 gateways
(p1..p47 members, p48 the switch-back of each), networks of 4 groups each (one VLAN per
group), as many attachments as asked for, and a realization row per gateway (most realized,
some behind, a few failed or with binding errors, so every branch of the status is taken).
Tunnel and management addresses are from 198.18.0.0/15 only.

``layout`` says which groups a network spans. ``spread`` (default, the harder case):
consecutive networks go to different groups, so one page touches up to every group of the
fleet (bounded by the page size, not by the fleet). ``clustered``: consecutive networks
share their groups, so a page touches a handful of groups.
"""

from __future__ import annotations

import ipaddress
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy import func, insert, select, update

from silonet import heap
from silonet.store.db import Database
from silonet.store.tables import (
    AttachmentRow,
    GatewayRow,
    GatewayStatusRow,
    GroupPortRow,
    GroupRow,
    Meta,
    NetworkRow,
    PortRow,
)

PORTS = 48  # p48 is the switch-back port
GATEWAYS_PER_GROUP = 10
GROUPS_PER_NETWORK = 4
VNI_BASE = 10_000
VLAN_MAX = 4094
VTEP_NET = ipaddress.IPv4Network("198.18.0.0/16")  # tunnel addresses
MGMT_NET = ipaddress.IPv4Network("198.19.0.0/16")  # management addresses
GENERATION = 10  # every attachment's; most gateways realized it
Layout = Literal["spread", "clustered"]


@dataclass(frozen=True)
class PagingResult:
    p50_ms: float
    p99_ms: float
    pages: int
    attachments: int
    page: int = 100
    gateways: int = 0
    fill_s: float = 0.0
    layout: str = "spread"

    def to_dict(self) -> dict:
        return asdict(self)


def _chunks(rows: list[dict], size: int = 20_000):  # type: ignore[no-untyped-def]
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def fill(db: Database, attachments: int, gateways: int, layout: Layout = "spread") -> None:
    """Write the synthetic fleet into an empty, migrated database (one transaction)."""
    if gateways < 1 or attachments < 0:
        raise ValueError("need at least one gateway and a non-negative number of attachments")
    if gateways > VTEP_NET.num_addresses - 2:
        raise ValueError(f"at most {VTEP_NET.num_addresses - 2} gateways (one 198.18.0.0/16 address each)")
    groups = math.ceil(gateways / GATEWAYS_PER_GROUP)
    span = min(GROUPS_PER_NETWORK, groups)
    blocks = groups // span  # networks go to blocks of `span` consecutive groups
    networks = math.ceil(attachments / span) if attachments else 0
    vlans = math.ceil(networks / blocks) if networks else 0  # VLANs used per group
    if vlans > VLAN_MAX:
        raise ValueError(f"{attachments} attachments need {vlans} VLANs per group; at most {VLAN_MAX}")

    gw_rows, port_rows, status_rows = [], [], []
    for g in range(1, gateways + 1):
        gw_rows.append({"id": g, "name": f"gw-{g:05d}", "silo_id": None, "vtep_ip": str(VTEP_NET[g]),
                        "driver": "ovsdb", "address": f"tcp:{MGMT_NET[g]}:6640", "dialect": None,
                        "credentials_ref": None, "trust_on_first_use": False, "capacity": 16_384})
        for p in range(1, PORTS + 1):
            port_rows.append({"id": (g - 1) * PORTS + p, "gateway_id": g, "name": f"p{p}", "switchback": p == PORTS})
        behind = g % 97 == 3  # about 1 in 100 gateways is behind: 3 (pending), 100 (failed), 197, ...
        down = behind and (g // 97) % 2 == 1  # unreachable, as a reconciler records it: with its error
        status_rows.append({
            "gateway_id": g, "desired_generation": GENERATION,
            "realized_generation": GENERATION - 1 if behind else GENERATION,
            "last_error": "connection refused" if down else None, "reachable": not down,
            "binding_errors": {f"p{PORTS}/{v}": "VLAN in use by another VNI" for v in range(1, 21)}
            if g % 100 == 7 else None,
        })
    group_rows, gp_rows = [], []
    for k in range(groups):
        group_rows.append({"id": k + 1, "name": f"grp-{k + 1:04d}", "silo_id": None})
        for g in range(k * GATEWAYS_PER_GROUP + 1, min((k + 1) * GATEWAYS_PER_GROUP, gateways) + 1):
            for p in range(1, PORTS + 1):
                port_id = (g - 1) * PORTS + p
                gp_rows.append({"id": port_id, "group_id": k + 1, "port_id": port_id,
                                "sb_gateway_id": g if p == PORTS else None})
    net_rows, att_rows = [], []
    for n in range(networks):
        if layout == "spread":
            block, vlan = n % blocks, n // blocks + 1
        else:
            block, vlan = (n // vlans) % blocks, n % vlans + 1
        net_rows.append({"id": n + 1, "name": f"net-{n + 1:06d}", "tenant": f"tenant-{n % 1000:03d}",
                         "vni": VNI_BASE + n})
        for j in range(span):
            if len(att_rows) == attachments:
                break
            att_rows.append({"id": len(att_rows) + 1, "group_id": block * span + j + 1, "vlan": vlan,
                             "network_id": n + 1, "generation": GENERATION})

    with db.engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(GatewayRow)).scalar_one():
            raise ValueError(f"{db.url} already holds gateways: measure_paging needs an empty database")
        conn.execute(update(Meta).where(Meta.id == 1).values(generation=GENERATION))
        for table, rows in ((GatewayRow, gw_rows), (PortRow, port_rows), (GatewayStatusRow, status_rows),
                            (GroupRow, group_rows), (GroupPortRow, gp_rows), (NetworkRow, net_rows),
                            (AttachmentRow, att_rows)):
            for chunk in _chunks(rows):
                conn.execute(insert(table), chunk)


def _percentile(samples: list[float], q: int) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def measure_paging(db_url: str, attachments: int, gateways: int, page: int = 100, pages: int = 200,
                   layout: Layout = "spread") -> PagingResult:
    """Fill an empty database at ``db_url``, then time ``pages`` requests of ``page``
    attachments each through the API (one untimed request first warms the caches)."""
    from fastapi.testclient import TestClient

    from silonet.api.app import create_app
    from silonet.config import Settings
    from silonet.runtime import Runtime
    from silonet.service import Manager
    from silonet.service.auth import new_secret

    if pages < 1:
        raise ValueError("pages must be at least 1")
    db = Database(db_url)
    try:
        db.upgrade()
        t0 = time.perf_counter()
        fill(db, attachments, gateways, layout)
        fill_s = time.perf_counter() - t0
        samples: list[float] = []
        token = new_secret()
        manager = Manager(Runtime(db), Settings(database_url=db.url, admin_token=token))
        with TestClient(create_app(manager), headers={"Authorization": f"Bearer {token}"}) as client:
            cursor: str | None = None

            def get() -> str | None:
                params: dict[str, str | int] = {"limit": page}
                if cursor:
                    params["cursor"] = cursor
                start = time.perf_counter()
                r = client.get("/v1/attachments", params=params)
                samples.append((time.perf_counter() - start) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"GET /v1/attachments: HTTP {r.status_code}: {r.text}")
                return r.json()["next_cursor"]

            get()  # warm-up
            samples.clear()
            before = heap.settle()  # as `silonet serve` does before it serves
            try:
                while len(samples) < pages:
                    cursor = get()
            finally:
                heap.unsettle(before)
        return PagingResult(p50_ms=round(_percentile(samples, 50), 3), p99_ms=round(_percentile(samples, 99), 3),
                            pages=len(samples), attachments=attachments, page=page, gateways=gateways,
                            fill_s=round(fill_s, 2), layout=layout)
    finally:
        db.dispose()
