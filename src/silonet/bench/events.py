"""`silonet bench events`: how soon the portal hears of an attach. A real `silonet serve` on
in-memory gateways; a reader of `GET /v1/events` and a webhook receiver on loopback; N attaches,
one at a time. Per attach: the attach request's round trip (the baseline of the same run), and
from the moment it was sent until the stream's ``intent`` event, the stream's ``attachment``
``realized`` event, and the webhook's ``intent`` delivery arrived. Figures as p50/p99 and as
ratios to the baseline; JSON and a PNG.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from silonet.bench.fleet import Server, ok

SECRET_ENV = "SILONET_SECRET_BENCH_EVENTS"
WAIT_S = 10.0  # per attach and event: the loop is bounded
console = Console()


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


class Arrivals:
    """When each awaited thing arrived (perf_counter), by key, from any thread."""

    def __init__(self) -> None:
        self.at: dict[tuple, float] = {}
        self.cond = threading.Condition()

    def saw(self, key: tuple) -> None:
        with self.cond:
            self.at.setdefault(key, time.perf_counter())
            self.cond.notify_all()

    def wait(self, key: tuple, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: key in self.at, timeout)
            return self.at.get(key)


def _keys(data: dict[str, Any], source: str) -> list[tuple]:
    if data.get("type") == "intent" and data.get("action") == "attach":
        return [(source, "intent", data.get("vlan"))]
    if data.get("type") == "attachment" and data.get("status") == "realized":
        return [(source, "realized", data.get("vlan"))]
    return []


def _reader(url: str, headers: dict[str, str], after: int, arrivals: Arrivals, stop: threading.Event) -> None:
    with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=url, headers=headers, timeout=None) as http, \
            http.stream("GET", "/v1/events", headers={"Last-Event-ID": str(after)}) as r:
        for line in r.iter_lines():  # until the server stops (the end of the run)
            if stop.is_set():
                return
            if line.startswith("data: "):
                for key in _keys(json.loads(line[6:]), "stream"):
                    arrivals.saw(key)


def _receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name for it
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with contextlib.suppress(ValueError):
                for key in _keys(json.loads(body), "webhook"):
                    arrivals.saw(key)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, name="bench-webhook", daemon=True).start()
    return server


def measure(attaches: int, work: Path) -> dict[str, Any]:
    os.environ.setdefault(SECRET_ENV, "bench-secret")  # the server inherits it: the webhook's secret
    server = Server(work / "server")
    arrivals, stop = Arrivals(), threading.Event()
    hook = _receiver(arrivals)
    samples: dict[str, list[float]] = {"attach_rtt": [], "stream_intent": [], "stream_realized": [],
                                       "webhook_intent": []}
    try:
        server.start()
        http = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
        for i, name in enumerate(("gw-a", "gw-b"), start=1):
            ok(http.post("/v1/gateways", json={"name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}],
                                                "management": {"driver": "memory"}}))
            ok(http.post("/v1/interface-groups", json={"name": f"g{i}", "members": [{"gateway": name, "port": "p1"}]}))
        ok(http.post("/v1/networks", json={"name": "bench", "tenant": "bench", "vni": 5000}))
        ok(http.post("/v1/networks/bench/attachments?wait=10", json={"interface_group": "g2", "vlan": 1}))
        webhook = http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{hook.server_port}/hook",
                                                  "secret": f"env:{SECRET_ENV}", "events": ["intent"]})
        hooked = webhook.status_code == 201
        reader = threading.Thread(target=_reader, args=(server.url, server.headers, 0, arrivals, stop),
                                  name="bench-events", daemon=True)
        reader.start()
        time.sleep(0.5)  # the reader is connected and caught up
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{attaches} attaches", total=attaches)
            for i in range(attaches):
                vlan = 100 + i
                t0 = time.perf_counter()
                ok(http.post("/v1/networks/bench/attachments", json={"interface_group": "g1", "vlan": vlan}))
                samples["attach_rtt"].append((time.perf_counter() - t0) * 1000)
                for source, kind, name in (("stream", "intent", "stream_intent"),
                                           ("stream", "realized", "stream_realized"),
                                           ("webhook", "intent", "webhook_intent")):
                    if source == "webhook" and not hooked:
                        continue
                    at = arrivals.wait((source, kind, vlan), WAIT_S)
                    if at is not None:
                        samples[name].append((at - t0) * 1000)
                bar.advance(task)
    finally:
        stop.set()
        hook.shutdown()
        server.stop()
    figures: dict[str, Any] = {"attaches": attaches, "webhooks": hooked}
    for name, values in samples.items():
        figures[f"{name}_p50_ms"] = round(_pct(values, 50), 2)
        figures[f"{name}_p99_ms"] = round(_pct(values, 99), 2)
        figures[f"{name}_n"] = len(values)
    base = figures["attach_rtt_p50_ms"]
    for name in ("stream_intent", "stream_realized", "webhook_intent"):
        figures[f"{name}_p50_ratio"] = round(figures[f"{name}_p50_ms"] / base, 2) if base else None
    figures["samples_ms"] = {k: [round(v, 2) for v in vs] for k, vs in samples.items()}
    return figures


def plot(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in figures["samples_ms"].items():
        if values:
            s = sorted(values)
            ax.plot(s, [(i + 1) / len(s) for i in range(len(s))], label=name.replace("_", " "))
    ax.axvline(100, color="grey", ls="--", lw=0.8, label="100 ms aim")
    ax.set_xlabel("ms from sending the attach")
    ax.set_ylabel("fraction of attaches")
    ax.set_title("silonet bench events: attach -> the portal hears of it")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(attaches: int, out: Path, work: Path) -> dict[str, Any]:
    figures = measure(attaches, work)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-events.json").write_text(json.dumps(figures, indent=1))
    with contextlib.suppress(ImportError):
        plot(figures, out / "bench-events.png")
    table = Table(title=f"attach -> event, {attaches} attaches (memory driver)", title_justify="left")
    for col in ("figure", "p50 ms", "p99 ms", "p50 / attach round trip", "n"):
        table.add_column(col)
    for name in ("attach_rtt", "stream_intent", "stream_realized", "webhook_intent"):
        table.add_row(name, str(figures[f"{name}_p50_ms"]), str(figures[f"{name}_p99_ms"]),
                      str(figures.get(f"{name}_p50_ratio", "1 (baseline)")), str(figures[f"{name}_n"]))
    console.print(table)
    console.print(f"saved {out / 'bench-events.json'} and {out / 'bench-events.png'}")
    return figures
