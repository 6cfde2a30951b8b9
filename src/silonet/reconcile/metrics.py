"""The reconciler's Prometheus metrics, one set per Reconciler (registered in its app's registry,
never the global one, so several apps in one process do not collide).

Cardinality: a histogram per gateway would be 1,000 gateways x buckets series, so pass
durations form one histogram (label ``result`` only); per gateway there are only cheap single
series (passes, device errors, up, generation lag), for the gateways this replica drives.
Those are computed when scraped from tallies the workers keep: a pass costs a few attribute
updates, and a gateway that leaves the intent or this replica leaves the output.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from silonet.plan.ops import Operation
from silonet.store.repo import Observation

if TYPE_CHECKING:
    from silonet.reconcile.reconciler import Reconciler

PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


@dataclass
class _Tally:
    """One gateway's figures since this process began driving it."""

    passes: int = 0
    errors: int = 0
    up: bool | None = None
    realized: int = 0  # the newest generation it was realized at


class ReconcileMetrics(Collector):
    """Pass durations, operations by kind, and per gateway: passes, device errors, up, lag."""

    def __init__(self, rec: Reconciler) -> None:
        self.rec = rec
        self.passes = Histogram("silonet_reconcile_pass_duration_seconds",
                                "Duration of reconcile passes (read, diff, apply, read back, record)",
                                ["result"], buckets=PASS_BUCKETS, registry=None)
        self.operations = Counter("silonet_reconcile_operations", "Device operations applied, by kind",
                                  ["kind"], registry=None)
        self.scopes = Counter("silonet_reconcile_settled_passes", "Settled passes by what they compared: whole "
                              "(every VNI and binding) or part (only what the intent and the device changed)",
                              ["scope"], registry=None)
        self._scope = {s: self.scopes.labels(s) for s in ("whole", "part")}
        self._ok = self.passes.labels("ok")
        self._failed = self.passes.labels("error")
        self._kinds: dict[type, Counter] = {}
        self.gateways: dict[str, _Tally] = {}

    def register(self, registry: CollectorRegistry) -> None:
        for collector in (self.passes, self.operations, self.scopes, self):
            registry.register(collector)

    # ----------------------------------------------------------- worker hooks
    def _tally(self, gateway: str) -> _Tally:
        tally = self.gateways.get(gateway)
        if tally is None:
            tally = self.gateways[gateway] = _Tally()
        return tally

    def pass_done(self, gateway: str, started: float, ok: bool) -> None:
        """A pass ended (``started``: its ``time.perf_counter()``)."""
        (self._ok if ok else self._failed).observe(time.perf_counter() - started)
        self._tally(gateway).passes += 1

    def settled(self, scope: str) -> None:
        self._scope[scope].inc()

    def applied(self, ops: Iterable[Operation]) -> None:
        counts: dict[type, int] = {}
        for op in ops:
            counts[type(op)] = counts.get(type(op), 0) + 1
        for kind, n in counts.items():
            child = self._kinds.get(kind)
            if child is None:
                child = self._kinds[kind] = self.operations.labels(_snake(kind.__name__))
            child.inc(n)

    def observed(self, gateway: str, obs: Observation) -> None:
        tally = self._tally(gateway)
        tally.up = obs.reachable
        if obs.error is not None:
            tally.errors += 1
        if obs.realized_generation is not None:
            tally.realized = max(tally.realized, obs.realized_generation)

    # ------------------------------------------------------------- on scrape
    def describe(self) -> Iterable:
        return ()  # computed on each scrape (the gateways come and go)

    def collect(self) -> Iterator:
        rec = self.rec
        passes = CounterMetricFamily("silonet_gateway_reconcile_passes", "Reconcile passes per gateway "
                                     "(this replica's gateways)", labels=["gateway"])
        errors = CounterMetricFamily("silonet_gateway_device_errors", "Failed passes the gateway's status "
                                     "recorded (not those while it first connects)", labels=["gateway"])
        up = GaugeMetricFamily("silonet_gateway_up", "1 when the gateway's device was reachable at its last "
                               "pass, else 0", labels=["gateway"])
        lag = GaugeMetricFamily("silonet_gateway_generation_lag", "Desired generation minus the generation the "
                                "gateway was last realized at (0: in sync; absent in observe or maintenance mode, "
                                "where silonet writes nothing)", labels=["gateway"])
        leaving = GaugeMetricFamily("silonet_gateway_decommissioning", "1 while the gateway is deleted from "
                                    "intent and silonet removes its configuration from the device", labels=["gateway"])
        pair = GaugeMetricFamily("silonet_gateway_pair_info", "1 for a member of a redundant pair (its anycast VTEP "
                                 "shared with the partner): `silonet_gateway_up * on(gateway) group_left(pair) "
                                 "silonet_gateway_pair_info` counts each pair's members up", labels=["gateway", "pair"])
        driven = rec.held & rec.gateways.keys()
        for name in [n for n in list(self.gateways) if n not in rec.gateways]:  # list(): a thread may add one
            self.gateways.pop(name, None)
        for name, tally in sorted(list(self.gateways.items())):
            if name not in driven:
                continue
            passes.add_metric([name], tally.passes)
            errors.add_metric([name], tally.errors)
            if tally.up is not None:
                up.add_metric([name], 1.0 if tally.up else 0.0)
            worker = rec.workers.get(name)
            desired = max(rec.desired_at.get(name, 0), worker.desired_seen if worker is not None else 0)
            if worker is None or worker.mode == "enforce":  # a held gateway lags on purpose: no alarm
                lag.add_metric([name], max(0, desired - tally.realized))
            leaving.add_metric([name], 1.0 if name in rec.leaving else 0.0)
            if (gw := rec.gateways.get(name)) is not None and gw.pair is not None:
                pair.add_metric([name, gw.pair], 1.0)
        yield from (passes, errors, up, lag, leaving, pair)


def merge(parts: list[list[Metric]]) -> list[Metric]:
    """Several processes' families as one: a sample both name (same name and labels) is summed
    (counters, histograms' buckets, counts and sums), or for a gauge the larger kept (a gateway
    handed from one process to the other may show in both for a moment)."""
    merged: dict[str, tuple[Metric, dict[tuple, Any]]] = {}
    for families in parts:
        for family in families:
            if family.name not in merged:
                merged[family.name] = (Metric(family.name, family.documentation, family.type, family.unit), {})
            samples = merged[family.name][1]
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                old = samples.get(key)
                if old is None:
                    samples[key] = s
                else:
                    value = max(old.value, s.value) if family.type == "gauge" else old.value + s.value
                    samples[key] = old._replace(value=value)
    out = []
    for metric, samples in merged.values():
        metric.samples = list(samples.values())
        out.append(metric)
    return out
