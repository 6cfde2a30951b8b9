"""`silonet serve`, `db upgrade`, `dialects` and `version`: the commands that run or describe
silonet itself rather than call its API (registered on the app in ``cli.main``)."""

from __future__ import annotations

from typing import Annotated

import typer

from silonet import __version__
from silonet.cli import params, render
from silonet.cli.backend import open_database
from silonet.errors import InvalidInput

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on, 1..65535",
                                      parser=params.number("--port", params.between(1, 65535)))] = 8080,
    reconcile: Annotated[bool, typer.Option(help="drive the gateways (off: API only)")] = True,
    period: Annotated[float, typer.Option(help="seconds between periodic passes per gateway")] = 10.0,
    replica_id: Annotated[str | None, typer.Option(help="this replica's name among several serving one database "
                                                         "(default: host-pid-random)")] = None,
    log_format: Annotated[str, typer.Option(help="text, or json: one object per line with its request_id")] = "text",
    workers: Annotated[int, typer.Option(help="reconcile processes, 1..64 (1: the API's own process drives the "
                                              "gateways; N: N processes behind the API share them by lease)",
                                         parser=params.number("--workers", params.between(1, 64)))] = 1,
) -> None:
    """Run the REST API and the reconciler (migrates the database first). Several replicas may
    serve one PostgreSQL database: each gateway is driven by one of them at a time (leases)."""
    import logging

    from silonet import heap, limits
    from silonet.api import calm
    from silonet.api.app import create_app
    from silonet.config import Settings
    from silonet.reconcile import Reconciler
    from silonet.runtime import Runtime
    from silonet.service import Manager
    from silonet.service.auth import check_admin_secret

    settings = Settings()
    if settings.admin_token:
        check_admin_secret(settings.admin_token)  # before anything is written
    runtime = Runtime(open_database(settings.database_url))  # the API's use cases and the reconciler share it
    manager = Manager(runtime, settings)
    if not settings.admin_token and not manager.tokens.any_admin():
        raise InvalidInput(field="SILONET_ADMIN_TOKEN", rule="set it to a secret of your choice: every API call "
                                                             "needs a token and this database has no admin token yet")
    from silonet import logs

    if log_format not in logs.FORMATS:
        raise InvalidInput(field="--log-format", rule=f"one of {', '.join(logs.FORMATS)}")
    logs.configure(log_format, logging.INFO)
    files = limits.raise_open_files()[1]  # before any gateway connects
    limits.quicker_switches()
    banner = (f"silonet {__version__} on http://{host}:{port} (database {_safe_url(settings.database_url)}; "
              f"open files up to {files})")
    if log_format == "json":  # every line of the output is JSON then
        logging.getLogger("silonet.serve").info("%s", banner)
    else:
        render.err.print(banner)
    pool = None
    if reconcile and workers > 1:
        if replica_id:
            raise InvalidInput(field="--replica-id", rule="names one reconciling process; with --workers each "
                                                          "worker process is a replica of its own name")
        from silonet.workers import WorkerPool

        pool = WorkerPool(runtime, workers, settings.database_url, period=period, log_format=log_format)
    rec = Reconciler(runtime, period=period, replica=replica_id) if reconcile and pool is None else None
    api = create_app(manager, rec, workers=pool)
    heap.settle()
    heap.Trimmer().start()
    calm.run(api, host, port)  # uvicorn, its log lines too (logs.configure), ticking once a second


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from silonet.config import Settings

    url = Settings().database_url
    open_database(url).dispose()
    render.out.print(f"database at newest schema: {_safe_url(url)}")


def dialects(json_: JsonOpt = False) -> None:
    """The SSH dialects (vendor CLIs) silonet speaks."""
    from silonet.drivers.ssh.dialect import dialects as registry

    rows = [{"name": d.name, "platform": d.platform, "scope": d.scope, "style": d.style, "verified": d.verified,
             "remote_macs": d.remote_macs, "default_capacity": d.default_capacity} for d in registry().values()]
    if json_:
        render.as_json(rows)
        return
    render.table("SSH dialects", ["name", "platform", "VLAN->VNI", "session", "verified against", "remote MACs"],
                 [[r["name"], r["platform"], f"per {r['scope']}", r["style"], r["verified"],
                   "yes" if r["remote_macs"] else "no"] for r in rows])


def version() -> None:
    """Print the version."""
    render.out.print(__version__)
