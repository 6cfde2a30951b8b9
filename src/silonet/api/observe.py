"""Request ids and Prometheus metrics for the API: one pure ASGI middleware does both (each
middleware layer costs every request; Starlette's BaseHTTPMiddleware costs the most), and
``GET /metrics`` serves the app's own registry (never the process-global one: tests build
several apps in one process, and each reconciler's figures belong to its app): in full to an
admin, to a tenant only the aggregate families of ``TENANT_FAMILIES`` (no gateway names, no
error texts: the per-gateway series say which gateway is down or failing, which ``/v1/status``
tells admins only). With reconcile workers in processes of their own (``serve --workers N``), a
scrape asks each for its families and merges them (``merge``): the same series one process shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from silonet import __version__
from silonet.logs import HEADER, REQUEST_ID, request_id
from silonet.reconcile import Reconciler
from silonet.reconcile.metrics import merge
from silonet.service.auth import Principal

if TYPE_CHECKING:
    from silonet.workers import WorkerPool

REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HEADER = HEADER.encode()
# What a tenant's scrape shows: families (as the registry names them) whose series carry only
# these labels, none naming a gateway, a network or an error.
TENANT_FAMILIES = frozenset({
    "silonet_build",  # silonet_build_info{version}
    "silonet_http_request_duration_seconds",  # {method, route template, status}
    "silonet_reconcile_pass_duration_seconds",  # {result}
    "silonet_reconcile_operations",  # silonet_reconcile_operations_total{kind}
    "silonet_reconcile_settled_passes",  # silonet_reconcile_settled_passes_total{scope}
    "silonet_reconcile_workers", "silonet_reconcile_workers_answered",  # serve --workers N: no labels
})
TENANT_LABELS = frozenset({"version", "method", "route", "status", "result", "kind", "scope", "le"})


class Scrape:
    """One scrape's families: the app's registry, then those its reconcile workers told."""

    def __init__(self, registry: CollectorRegistry, told: list[Metric]) -> None:
        self.registry, self.told = registry, told

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.told


async def _workers_told(workers: WorkerPool) -> list[Metric]:
    """The workers' reconcile families, merged, and how many of them answered."""
    parts, answered_n = await workers.metrics()
    count = GaugeMetricFamily("silonet_reconcile_workers", "Reconcile processes (serve --workers)",
                              value=len(workers.children))
    answered = GaugeMetricFamily("silonet_reconcile_workers_answered", "Reconcile processes whose metrics this "
                                 "scrape asked and got (one busy past the scrape's wait shows its last answer)",
                                 value=answered_n)
    return [*merge(parts), count, answered]


class TenantView:
    """The registry as a tenant scrapes it: ``TENANT_FAMILIES`` only, and of those only series
    whose labels are all in ``TENANT_LABELS`` (a label added later is left out, not shown)."""

    def __init__(self, registry: CollectorRegistry | Scrape) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            if family.name in TENANT_FAMILIES:
                family.samples = [s for s in family.samples if TENANT_LABELS.issuperset(s.labels)]
                yield family


class Observe:
    """Takes the client's ``X-Request-ID`` when it is a sane token (else makes one), sets it for
    every log line of the request, echoes it in the response, and times the request by route
    template (``/v1/networks/{name}``, never the raw path: one series per route, not per name)."""

    def __init__(self, app: ASGIApp, requests: Histogram) -> None:
        self.app = app
        self.requests = requests
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER), None)
        rid = request_id(offered)
        echo = (_HEADER, rid.encode())
        status = 500  # the app raised before answering

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, answer)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"  # the router sets it on a match
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(method, route, str(status))
        child.observe(seconds)


def install(app: FastAPI, reconciler: Reconciler | None, caller: Callable[..., Any],
            workers: WorkerPool | None = None) -> CollectorRegistry:
    """The middleware and ``GET /metrics`` on ``app``; ``caller`` is the API's token check; the
    reconcile metrics are the ``reconciler``'s, or those its ``workers`` tell at each scrape."""
    disable_created_metrics()  # process-wide: no ``_created`` series, which would double the count
    registry = CollectorRegistry()
    Info("silonet_build", "The silonet version serving", registry=registry).info({"version": __version__})
    requests = Histogram("silonet_http_request_duration_seconds", "API requests by method, route template and "
                         "status", ["method", "route", "status"], buckets=REQUEST_BUCKETS, registry=registry)
    if reconciler is not None:
        reconciler.metrics.register(registry)
    app.add_middleware(Observe, requests=requests)
    app.state.metrics = registry

    @app.get("/metrics", tags=["meta"], include_in_schema=False)
    async def metrics(who: Principal = Depends(caller)) -> Response:  # noqa: B008 (a local: Annotated cannot name it)
        """Prometheus text format. Needs a bearer token, as every route but /healthz: an admin
        token reads every series, a tenant token the aggregate ones (``TENANT_FAMILIES``)."""
        # async: runs on the event loop, where the reconciler's workers update what it reads
        scrape = Scrape(registry, await _workers_told(workers) if workers is not None else [])
        text = generate_latest(scrape if who.admin else TenantView(scrape))  # type: ignore[arg-type]
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return registry
