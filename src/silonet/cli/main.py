"""`silonet`: the same operations as the API, plus apply, serve, db and (later) lab."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # newer Typer carries its own copy of click
    from typer._click import exceptions as _click
except ImportError:  # pragma: no cover
    from click import exceptions as _click  # type: ignore[no-redef]

from silonet import __version__
from silonet.cli import config as cli_config
from silonet.cli import render
from silonet.cli.backend import Backend, LocalBackend, RemoteBackend
from silonet.cli.bench import bench_app
from silonet.cli.lab import lab_app
from silonet.errors import InvalidInput, SilonetError
from silonet.model import rules

app = typer.Typer(help="silonet: connect silo VLANs across silos through VXLAN gateways.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
silo_app = typer.Typer(help="Silos: parts of the data center with their own VLANs.", no_args_is_help=True)
gateway_app = typer.Typer(help="VXLAN gateways at the silo edges.", no_args_is_help=True)
group_app = typer.Typer(help="Interface groups: ports sharing one VLAN domain.", no_args_is_help=True)
network_app = typer.Typer(help="Virtual networks (one VNI each).", no_args_is_help=True)
attachment_app = typer.Typer(help="Attachments: (interface group, VLAN) -> virtual network.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (admin): roles admin and tenant.", no_args_is_help=True)
for sub, name in ((silo_app, "silo"), (gateway_app, "gateway"), (group_app, "group"), (network_app, "network"),
                  (attachment_app, "attachment"), (db_app, "db"), (token_app, "token"), (lab_app, "lab"),
                  (bench_app, "bench")):
    app.add_typer(sub, name=name)


class State:
    server: str | None = None
    token: str | None = None
    json: bool = False
    _backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        """The server (flag, environment or `silonet login`'s config file), else the local store."""
        if self._backend is None:
            cfg = cli_config.resolve(self.server, self.token)
            self._backend = RemoteBackend(cfg.server, cfg.token) if cfg.server else LocalBackend()
        return self._backend


state = State()

JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of tables")]


def _seconds(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 300:  # NaN too: a wait on it would never end
        raise typer.BadParameter(f"{value} is not a number of seconds 0..300")
    return value


WaitOpt = Annotated[float | None, typer.Option(help="seconds to wait until the gateways realize it (0..300)",
                                               callback=_seconds)]


@app.callback()
def _main(
    server: Annotated[str | None, typer.Option(envvar="SILONET_SERVER", help="URL of a running silonet server; "
                                                "without it the CLI works on the local store")] = None,
    token: Annotated[str | None, typer.Option(envvar="SILONET_TOKEN", help="bearer token for --server")] = None,
) -> None:
    state.server, state.token = server, token


def _show(kind: str, data: Any, as_json: bool) -> None:
    if as_json:
        render.as_json(data)
    else:
        render.RENDER[kind](data if isinstance(data, list) else [data])


def _int(value: str, check: Any, field: str) -> int:
    if not re.fullmatch(r"-?[0-9]+", value):
        raise InvalidInput(field=field, rule=f"{value!r} is not an integer")
    return check(int(value), field)


def _ref(value: str, field: str) -> dict:
    gw, sep, port = value.partition(":")
    if not sep:
        raise InvalidInput(field=field, rule=f"{value!r} must be GATEWAY:PORT")
    return {"gateway": gw, "port": port}


# -------------------------------------------------------------------------- silos
@silo_app.command("create")
def silo_create(name: str, kind: Annotated[str, typer.Option(help="vsphere, kvm, baremetal, paas or other")] = "other",
                description: str = "", json_: JsonOpt = False) -> None:
    _show("silo", state.backend.create("silo", {"name": name, "kind": kind, "description": description}), json_)


# ----------------------------------------------------------------------- gateways
@gateway_app.command("create")
def gateway_create(
    name: str,
    vtep_ip: Annotated[str, typer.Option(help="tunnel (VTEP) IPv4 address")],
    address: Annotated[str, typer.Option(help="management address, e.g. tcp:198.18.1.1:6640")],
    driver: Annotated[str, typer.Option(help="ovsdb or ssh")] = "ovsdb",
    silo: str | None = None,
    capacity: Annotated[str | None, typer.Option(help="VLAN->VNI entries the device holds "
                                                      "(default: the dialect's, else 4096)")] = None,
    port: Annotated[list[str] | None, typer.Option(help="NAME or NAME:switchback; repeat")] = None,
    dialect: str | None = None,
    credentials: Annotated[str | None, typer.Option(help="reference to credentials, never the secret")] = None,
    json_: JsonOpt = False,
) -> None:
    ports = []
    for p in port or []:
        pname, _, flag = p.partition(":")
        if flag not in ("", "switchback"):
            raise InvalidInput(field="port", rule=f"{p!r} must be NAME or NAME:switchback")
        ports.append({"name": pname, "switchback": flag == "switchback"})
    mgmt: dict[str, Any] = {"driver": driver, "address": address}
    if dialect:
        mgmt["dialect"] = dialect
    if credentials:
        mgmt["credentials"] = credentials
    body = {"name": name, "silo": silo, "vtep_ip": vtep_ip, "management": mgmt,
            "ports": ports}
    if capacity is not None:
        body["capacity"] = _int(capacity, rules.capacity, "capacity")
    _show("gateway", state.backend.create("gateway", body), json_)


# ------------------------------------------------------------------------- groups
@group_app.command("create")
def group_create(
    name: str,
    member: Annotated[list[str] | None, typer.Option(help="GATEWAY:PORT; repeat")] = None,
    switchback: Annotated[list[str] | None, typer.Option(help="GATEWAY:PORT, at most one per gateway")] = None,
    silo: str | None = None,
    json_: JsonOpt = False,
) -> None:
    body = {"name": name, "silo": silo, "members": [_ref(m, "member") for m in member or []],
            "switchback": [_ref(s, "switchback") for s in switchback or []]}
    _show("group", state.backend.create("group", body), json_)


# ----------------------------------------------------------------------- networks
@network_app.command("create")
def network_create(name: str, tenant: Annotated[str, typer.Option()],
                   vni: Annotated[str | None, typer.Option(help="1..16777215; allocated when absent")] = None,
                   json_: JsonOpt = False) -> None:
    body: dict[str, Any] = {"name": name, "tenant": tenant}
    if vni is not None:
        body["vni"] = _int(vni, rules.vni, "vni")
    _show("network", state.backend.create("network", body), json_)


def _crud(kind: str, sub: typer.Typer) -> None:
    """list/show/delete are the same for every collection."""

    @sub.command("list")
    def _list(json_: JsonOpt = False) -> None:
        _show(kind, state.backend.list(kind), json_)

    @sub.command("show")
    def _get(name: str, json_: JsonOpt = False) -> None:
        data = state.backend.get(kind, name)
        _show(kind, data, json_)
        if kind == "network" and not json_ and data["attachments"]:
            render.attachments(data["attachments"])

    if kind == "network":
        @sub.command("delete")
        def _delete_net(name: str, cascade: Annotated[bool, typer.Option(help="detach its attachments")] = False
                        ) -> None:
            state.backend.delete(kind, name, cascade=cascade)
            render.out.print(f"deleted {kind} {name}")
    else:
        @sub.command("delete")
        def _delete(name: str) -> None:
            state.backend.delete(kind, name)
            render.out.print(f"deleted {kind} {name}")


for _kind, _sub in (("silo", silo_app), ("gateway", gateway_app), ("group", group_app), ("network", network_app)):
    _crud(_kind, _sub)


# -------------------------------------------------------------------- attachments
NEGATIVE_OK = {"ignore_unknown_options": True}  # so that a VLAN of -1 reaches our own check


@app.command(context_settings=NEGATIVE_OK)
def attach(network: str, group: str, vlan: str, wait: WaitOpt = None, json_: JsonOpt = False) -> None:
    """Attach VLAN of an interface group to a virtual network."""
    data = state.backend.attach(network, group, _int(vlan, rules.vlan, "vlan"), wait)
    if json_:
        render.as_json(data)
    else:
        render.attachments([data])


@app.command(context_settings=NEGATIVE_OK)
def detach(network: str, group: str, vlan: str, wait: WaitOpt = None) -> None:
    """Detach VLAN of an interface group from a virtual network."""
    state.backend.detach(network, group, _int(vlan, rules.vlan, "vlan"), wait)
    render.out.print(f"detached {group} VLAN {vlan} from {network}")


@attachment_app.command("list")
def attachment_list(
    network: Annotated[str | None, typer.Option(help="only this network's attachments")] = None,
    group: Annotated[str | None, typer.Option(help="only this interface group's attachments")] = None,
    limit: Annotated[str, typer.Option(help="attachments per page, 1..1000")] = "100",
    cursor: Annotated[str | None, typer.Option(help="start after this page (next_cursor of the previous one)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="follow the cursors to the last page")] = False,
    json_: JsonOpt = False,
) -> None:
    """Attachments of every network with their status, a page at a time, oldest first."""
    size = _int(limit, lambda v, _field: v, "limit")
    page = state.backend.attachments(size, cursor, network, group)
    if all_:
        items = list(page["items"])
        while page["next_cursor"]:
            page = state.backend.attachments(size, page["next_cursor"], network, group)
            items += page["items"]
        page = {"items": items, "next_cursor": None, "limit": size}
    if json_:
        render.as_json(page)
        return
    render.attachments(page["items"], title=f"Attachments ({len(page['items'])})" if all_ else "Attachments")
    if page["next_cursor"]:
        render.out.print(f"more: --cursor {page['next_cursor']} (or --all)", highlight=False)


# ------------------------------------------------------------- plan, status, audit
@app.command()
def plan(gateway: Annotated[str | None, typer.Option(help="only this gateway")] = None,
         json_: JsonOpt = False) -> None:
    """Dry run: what the next reconcile would change on each gateway."""
    data = state.backend.plan(gateway)
    render.as_json(data) if json_ else render.plan(data)


@app.command()
def status(gateway: Annotated[str | None, typer.Argument()] = None, json_: JsonOpt = False) -> None:
    """Realization state of every gateway, or desired/actual/drift of one."""
    data = state.backend.status(gateway)
    if json_:
        render.as_json(data)
    elif gateway:
        render.gateway_status(data)
    else:
        render.statuses(data)


@app.command()
def audit(limit: int = 50, json_: JsonOpt = False) -> None:
    """The newest entries of the audit log."""
    data = state.backend.audit(limit)
    render.as_json(data) if json_ else render.audit(data)


@app.command()
def apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="topology YAML (or JSON); - for stdin")],
    prune: Annotated[bool, typer.Option(help="remove what the file no longer has")] = False,
    dry_run: Annotated[bool, typer.Option(help="check and show the changes, write nothing")] = False,
    wait: WaitOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Make the inventory and networks match a topology file (idempotent)."""
    from silonet.service.topology import parse_topology

    if str(file) == "-":
        text, source = sys.stdin.read(), "<stdin>"
    else:
        try:
            text, source = file.read_text(), str(file)
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidInput(field="file", rule=f"cannot read {file}: {getattr(err, 'strerror', None) or err}"
                               ) from None
    data = state.backend.apply(parse_topology(text, source), prune, dry_run, wait)
    render.as_json(data) if json_ else render.changes(data)
    if data.get("status") not in (None, "realized"):
        raise typer.Exit(1)


# ------------------------------------------------------------------ tokens, login
@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin or tenant")] = "tenant",
    tenant: Annotated[str | None, typer.Option(help="the tenant of a tenant token")] = None,
    description: Annotated[str, typer.Option(help="what the token is for")] = "",
    json_: JsonOpt = False,
) -> None:
    """A new token; its secret is printed this once (only its hash is stored)."""
    data = state.backend.token_create(role, tenant, description)
    if json_:
        render.as_json(data)
    else:
        render.tokens([data])
        render.out.print(f"token (shown once): {data['token']}")


@token_app.command("list")
def token_list(json_: JsonOpt = False) -> None:
    """Every token (never the secrets)."""
    data = state.backend.token_list()
    render.as_json(data) if json_ else render.tokens(data)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by id: it stops working at once on this server, within 5 s on replicas."""
    state.backend.token_revoke(_int(token_id, lambda v, _f: v, "id"))
    render.out.print(f"token {token_id} revoked")


@app.command()
def login(
    server: Annotated[str, typer.Option(help="URL of the silonet server")],
    token: Annotated[str, typer.Option(help="bearer token (from SILONET_ADMIN_TOKEN or `silonet token create`)",
                                       prompt=True, hide_input=True)],
) -> None:
    """Check the token against the server and keep both in the CLI's config file (0600)."""
    RemoteBackend(server, token).list("network")  # a wrong token or server fails here, nothing written
    path = cli_config.save(cli_config.CliConfig(server=server, token=token))
    render.out.print(f"logged in to {server}; saved in {path} (mode 0600)")


@app.command()
def logout() -> None:
    """Forget the saved server and token."""
    gone = cli_config.forget()
    render.out.print(f"removed {cli_config.path()}" if gone else "nothing saved")


# ------------------------------------------------------------------ serve, db, misc
@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    reconcile: Annotated[bool, typer.Option(help="drive the gateways (off: API only)")] = True,
    period: Annotated[float, typer.Option(help="seconds between periodic passes per gateway")] = 10.0,
    replica_id: Annotated[str | None, typer.Option(help="this replica's name among several serving one database "
                                                         "(default: host-pid-random)")] = None,
    log_format: Annotated[str, typer.Option(help="text, or json: one object per line with its request_id")] = "text",
) -> None:
    """Run the REST API and the reconciler (migrates the database first). Several replicas may
    serve one PostgreSQL database: each gateway is driven by one of them at a time (leases)."""
    import logging

    import uvicorn

    from silonet import heap
    from silonet.api.app import create_app
    from silonet.config import Settings
    from silonet.reconcile import Reconciler
    from silonet.service import Manager
    from silonet.service.auth import Tokens, check_admin_secret
    from silonet.store.db import Database

    settings = Settings()
    if settings.admin_token:
        check_admin_secret(settings.admin_token)  # before anything is written
    db = Database(settings.database_url)
    db.upgrade()
    if not settings.admin_token and not Tokens(db).any_admin():
        raise InvalidInput(field="SILONET_ADMIN_TOKEN", rule="set it to a secret of your choice: every API call "
                                                             "needs a token and this database has no admin token yet")
    from silonet import logs

    if log_format not in logs.FORMATS:
        raise InvalidInput(field="--log-format", rule=f"one of {', '.join(logs.FORMATS)}")
    logs.configure(log_format, logging.INFO)
    banner = f"silonet {__version__} on http://{host}:{port} (database {_safe_url(settings.database_url)})"
    if log_format == "json":  # every line of the output is JSON then
        logging.getLogger("silonet.serve").info("%s", banner)
    else:
        render.err.print(banner)
    rec = Reconciler(db, period=period, replica=replica_id) if reconcile else None
    api = create_app(Manager(db, settings), rec)
    heap.settle()
    uvicorn.run(api, host=host, port=port, log_level="info", log_config=None)  # its lines too: logs.configure


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from silonet.config import Settings
    from silonet.store.db import Database

    url = Settings().database_url
    Database(url).upgrade()
    render.out.print(f"database at newest schema: {_safe_url(url)}")


@app.command()
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


@app.command()
def version() -> None:
    """Print the version."""
    render.out.print(__version__)


def error_line(err: SilonetError) -> str:
    """One line that names the field and the rule."""
    msg = err.message
    if err.field and not msg.startswith(f"{err.field}:"):
        msg = f"{err.field}: {msg}"
    return msg


def main() -> None:
    """Entry point: every error is one red line; exit 1 for a refused request, 2 for usage."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    try:
        code = typer.main.get_command(app).main(standalone_mode=False)
    except SilonetError as err:
        render.error(error_line(err))
        sys.exit(1)
    except _click.UsageError as err:
        if isinstance(err, getattr(_click, "NoArgsIsHelpError", ())):
            sys.exit(0)  # the help was printed
        hint = f" (see: {err.ctx.command_path} --help)" if err.ctx else ""
        render.error(f"{err.format_message()}{hint}")
        sys.exit(2)
    except _click.ClickException as err:
        render.error(err.format_message())
        sys.exit(err.exit_code)
    except typer.Abort:
        render.err.print("[red]aborted[/red]")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
