"""`silonet`: the same operations as the API, plus apply, serve, db and (later) lab."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # newer Typer carries its own copy of click
    from typer._click import exceptions as _click
except ImportError:  # pragma: no cover
    from click import exceptions as _click  # type: ignore[no-redef]

from silonet.cli import config as cli_config
from silonet.cli import events, export, gateway_edit, params, probe, render, serving, tenants, webhooks
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

    def reading(self) -> Backend:
        """The backend for a read: an empty local store says which one it is (stderr)."""
        params.note_if_empty_local(self.backend)
        return self.backend


state = State()
gateway_app.command("probe")(probe.command(lambda: state.backend))
app.command("events")(events.command(lambda: state.reading()))
app.command("export")(export.command(lambda: state.reading()))  # the intent as a topology file
gateway_app.command("mode")(gateway_edit.mode_command(lambda: state.backend))
gateway_app.command("patch")(gateway_edit.patch_command(lambda: state.backend))
app.add_typer(tenants.commands(lambda: state.backend), name="tenant")  # tenants' contracts
app.add_typer(webhooks.commands(lambda: state.backend), name="webhook")  # where events are POSTed

JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of tables")]


def _seconds(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 300:  # NaN too: a wait on it would never end
        raise typer.BadParameter(f"{value} is not a number of seconds 0..300")
    return value


WaitOpt = Annotated[float | None, typer.Option(
    help="seconds to wait until the gateways realize it (0..300); then exit 0 realized, 1 failed, 3 degraded or "
         "held, 4 still pending", callback=_seconds)]


def _exit_with(status: str | None) -> None:
    """A --wait's exit code: 0 realized, 1 failed, 3 degraded or held, 4 still pending (README)."""
    from silonet.plan.status import EXIT_CODES

    code = EXIT_CODES.get(status, 1) if status is not None else 0
    if code:
        raise typer.Exit(code)


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


NameArg = Annotated[str, typer.Argument(help="its name", show_default=False)]
SiloOpt = Annotated[str | None, typer.Option(help="the silo it belongs to")]
VlanArg = Annotated[int, typer.Argument(help="VLAN 0..4094 (0: untagged)", parser=params.number("vlan", rules.vlan))]
NetworkArg = Annotated[str, typer.Argument(help="the virtual network")]
GroupArg = Annotated[str, typer.Argument(help="the interface group")]


def _ref(value: str, field: str) -> dict:
    gw, sep, port = value.partition(":")
    if not sep:
        raise InvalidInput(field=field, rule=f"{value!r} must be GATEWAY:PORT")
    return {"gateway": gw, "port": port}


# -------------------------------------------------------------------------- silos
@silo_app.command("create")
def silo_create(name: NameArg,
                kind: Annotated[str, typer.Option(help="vsphere, kvm, baremetal, paas or other")] = "other",
                description: Annotated[str, typer.Option(help="free text for people")] = "",
                json_: JsonOpt = False) -> None:
    """Create a silo."""
    _show("silo", state.backend.create("silo", {"name": name, "kind": kind, "description": description}), json_)


# ----------------------------------------------------------------------- gateways
@gateway_app.command("create")
def gateway_create(
    name: NameArg,
    vtep_ip: Annotated[str, typer.Option(help="tunnel (VTEP) IPv4 address")],
    address: Annotated[str, typer.Option(help="management address, e.g. tcp:198.18.1.1:6640")],
    driver: Annotated[str, typer.Option(help="ovsdb or ssh")] = "ovsdb",
    silo: SiloOpt = None,
    capacity: Annotated[int | None, typer.Option(help="VLAN->VNI entries the device holds "
                                                      "(default: the dialect's, else 4096)",
                                                 parser=params.number("capacity", rules.capacity))] = None,
    port: Annotated[list[str] | None, typer.Option(help="NAME or NAME:switchback; repeat")] = None,
    dialect: Annotated[str | None, typer.Option(help="with --driver ssh: the vendor CLI (`silonet dialects`)")] = None,
    credentials: Annotated[str | None, typer.Option(help="reference to credentials, never the secret")] = None,
    pair: Annotated[str | None, typer.Option(help="the redundant pair it is a member of: both members give the "
                                                  "pair's anycast address as --vtep-ip")] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a gateway: how silonet reaches it, its tunnel address and its ports."""
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
        body["capacity"] = capacity
    if pair is not None:
        body["pair"] = pair
    _show("gateway", state.backend.create("gateway", body), json_)


# ------------------------------------------------------------------------- groups
@group_app.command("create")
def group_create(
    name: NameArg,
    member: Annotated[list[str] | None, typer.Option(help="GATEWAY:PORT; repeat")] = None,
    switchback: Annotated[list[str] | None, typer.Option(help="GATEWAY:PORT, at most one per gateway")] = None,
    silo: SiloOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create an interface group: gateway ports that share one VLAN domain."""
    body = {"name": name, "silo": silo, "members": [_ref(m, "member") for m in member or []],
            "switchback": [_ref(s, "switchback") for s in switchback or []]}
    _show("group", state.backend.create("group", body), json_)


# ----------------------------------------------------------------------- networks
@network_app.command("create")
def network_create(name: NameArg, tenant: Annotated[str, typer.Option(help="the tenant that owns it")],
                   vni: Annotated[int | None, typer.Option(help="1..16777215; allocated when absent",
                                                           parser=params.number("vni", rules.vni))] = None,
                   json_: JsonOpt = False) -> None:
    """Create a virtual network (one VNI)."""
    body: dict[str, Any] = {"name": name, "tenant": tenant}
    if vni is not None:
        body["vni"] = vni
    _show("network", state.backend.create("network", body), json_)


def _crud(kind: str, sub: typer.Typer) -> None:
    """list/show/delete are the same for every collection."""

    @sub.command("list", help=f"Every {kind}.")
    def _list(json_: JsonOpt = False) -> None:
        _show(kind, state.reading().list(kind), json_)

    @sub.command("show", help=f"One {kind}.")
    def _get(name: NameArg, json_: JsonOpt = False) -> None:
        data = state.reading().get(kind, name)
        _show(kind, data, json_)
        if kind == "network" and not json_ and data["attachments"]:
            render.attachments(data["attachments"])

    if kind == "network":
        @sub.command("delete", help="Delete a network (refused while it has attachments, unless --cascade).")
        def _delete_net(name: NameArg, cascade: Annotated[bool, typer.Option(help="detach its attachments")] = False,
                        wait: WaitOpt = None) -> None:
            done = state.backend.delete_network(name, cascade, wait)
            render.out.print(f"deleted {kind} {name}")
            if done is not None:
                render.waited(done["status"], done["reason"])
                _exit_with(done["status"])
    elif kind != "gateway":  # gateway delete: below
        @sub.command("delete", help=f"Delete a {kind} (refused while something uses it).")
        def _delete(name: NameArg) -> None:
            state.backend.delete(kind, name)
            render.out.print(f"deleted {kind} {name}")


for _kind, _sub in (("silo", silo_app), ("gateway", gateway_app), ("group", group_app), ("network", network_app)):
    _crud(_kind, _sub)


@gateway_app.command("delete")
def gateway_delete(
    name: NameArg,
    force: Annotated[bool, typer.Option(help="forget it now, even if silonet could not remove its configuration "
                                             "from the device (what may be left there is audited)")] = False,
    wait: Annotated[float | None, typer.Option(help="seconds to wait until it is gone (0..300)",
                                               callback=_seconds)] = None,
    json_: JsonOpt = False,
) -> None:
    """Delete a gateway: silonet first removes its configuration from the device (the gateway is
    decommissioning meanwhile), then forgets it. Exit 4 when --wait ends before it is gone."""
    data = state.backend.delete_gateway(name, force, wait)
    if json_:
        render.as_json(data if data is not None else {"gateway": name, "state": "gone"})
    elif data is None:
        render.out.print(f"deleted gateway {name}")
    elif "state" in data:
        render.out.print(f"gateway '{name}' is decommissioning: silonet removes its configuration from the device, "
                         f"then forgets it (see `silonet status {name}`)", markup=False, highlight=False)
    else:
        render.out.print(data["message"], style="yellow", markup=False, highlight=False)
    if data is not None and "state" in data and wait:
        raise typer.Exit(4)  # still there when the wait ended


# -------------------------------------------------------------------- attachments
NEGATIVE_OK = {"ignore_unknown_options": True}  # so that a VLAN of -1 reaches our own check


@app.command(context_settings=NEGATIVE_OK)
def attach(network: NetworkArg, group: GroupArg, vlan: VlanArg, wait: WaitOpt = None, json_: JsonOpt = False) -> None:
    """Attach VLAN of an interface group to a virtual network."""
    data = state.backend.attach(network, group, vlan, wait)
    if json_:
        render.as_json(data)
    else:
        render.attachments([data])
    if wait:
        _exit_with(data["status"])


@app.command(context_settings=NEGATIVE_OK)
def detach(network: NetworkArg, group: GroupArg, vlan: VlanArg, wait: WaitOpt = None) -> None:
    """Detach VLAN of an interface group from a virtual network."""
    done = state.backend.detach(network, group, vlan, wait)
    render.out.print(f"detached {group} VLAN {vlan} from {network}")
    if done is not None:
        render.waited(done["status"], done["reason"])
        _exit_with(done["status"])


@attachment_app.command("list")
def attachment_list(
    network: Annotated[str | None, typer.Option(help="only this network's attachments")] = None,
    group: Annotated[str | None, typer.Option(help="only this interface group's attachments")] = None,
    limit: Annotated[int, typer.Option(help="attachments per page, 1..1000", parser=params.number("limit"))] = 100,
    cursor: Annotated[str | None, typer.Option(help="start after this page (next_cursor of the previous one)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="follow the cursors to the last page")] = False,
    json_: JsonOpt = False,
) -> None:
    """Attachments of every network with their status, a page at a time, oldest first."""
    size = limit
    page = state.reading().attachments(size, cursor, network, group)
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
    data = state.reading().plan(gateway)
    render.as_json(data) if json_ else render.plan(data)


@app.command()
def status(gateway: Annotated[str | None, typer.Argument(help="one gateway's desired and actual state, "
                                                                "drift and faults")] = None,
           json_: JsonOpt = False) -> None:
    """Realization state of every gateway, or desired/actual/drift of one."""
    data = state.reading().status(gateway)
    if json_:
        render.as_json(data)
    elif gateway:
        render.gateway_status(data)
    else:
        render.statuses(data)


@app.command()
def audit(limit: Annotated[int, typer.Option(help="how many entries, 1..1000",
                                             parser=params.number("limit"))] = 50,
          json_: JsonOpt = False) -> None:
    """The newest entries of the audit log."""
    data = state.reading().audit(limit)
    render.as_json(data) if json_ else render.audit(data)


@app.command()
def apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="topology YAML (or JSON); - for stdin")],
    prune: Annotated[bool, typer.Option(help="delete the objects of the apply set (--set) that the file no longer "
                                            "has; never another set's or ones made directly")] = False,
    dry_run: Annotated[bool, typer.Option(help="check and show the changes, write nothing")] = False,
    apply_set: Annotated[str | None, typer.Option("--set", help="the apply set the file's objects belong to (the set "
                                                                "that applied an object last owns it); without it: "
                                                                "each object's apply_set, else default")] = None,
    force: Annotated[bool, typer.Option(help="with --prune: delete even more objects than the file declares "
                                             "(or anything from an empty file), which is refused otherwise")] = False,
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
    data = state.backend.apply(parse_topology(text, source), prune, dry_run, wait, apply_set, force)
    render.as_json(data) if json_ else render.changes(data)
    if not json_:
        render.apply_notes(data)  # the prune guard's word, warnings
    for note in [] if json_ else data.get("notes", []):  # decommissioning gateways, silos that wait for them
        render.out.print(note, style="yellow", markup=False, highlight=False)
    if (data.get("prune") or {}).get("refused"):  # a dry run the real apply would refuse
        raise typer.Exit(1)
    _exit_with(data.get("status"))


# ------------------------------------------------------------------ tokens, login
@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin or tenant")] = "tenant",
    tenant: Annotated[str | None, typer.Option(help="the tenant of a tenant token")] = None,
    description: Annotated[str, typer.Option(help="what the token is for")] = "",
    new_tenant: Annotated[bool, typer.Option(help="the tenant owns no network yet, and that is meant (asked at a "
                                                  "terminal, refused in a script without it)")] = False,
    json_: JsonOpt = False,
) -> None:
    """A new token; its secret is printed this once (only its hash is stored)."""
    if role == "tenant" and tenant and not new_tenant:
        params.confirm_new_tenant(state.backend, tenant)
    data = state.backend.token_create(role, tenant, description)
    if json_:
        render.as_json(data)
    else:
        render.tokens([data])
        render.out.print(f"token (shown once): {data['token']}")


@token_app.command("list")
def token_list(json_: JsonOpt = False) -> None:
    """Every token (never the secrets)."""
    data = state.reading().token_list()
    render.as_json(data) if json_ else render.tokens(data)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="its id (`silonet token list`)",
                                                         parser=params.number("id"))]) -> None:
    """Revoke a token by id: it stops working at once on this server, within 5 s on replicas."""
    state.backend.token_revoke(token_id)
    render.out.print(f"token {token_id} revoked")


@app.command()
def login(
    server: Annotated[str, typer.Option(help="URL of the silonet server")],
    token: Annotated[str, typer.Option(help="bearer token (from SILONET_ADMIN_TOKEN or `silonet token create`)",
                                       prompt=True, hide_input=True)],
) -> None:
    """Check the token against the server and keep both in the CLI's config file (0600)."""
    cli_config.check_server(server)
    RemoteBackend(server, token).list("network")  # a wrong token or server fails here, nothing written
    path = cli_config.save(cli_config.CliConfig(server=server, token=token))
    render.out.print(f"logged in to {server}; saved in {path} (mode 0600)")


@app.command()
def logout() -> None:
    """Forget the saved server and token."""
    gone = cli_config.forget()
    render.out.print(f"removed {cli_config.path()}" if gone else "nothing saved")


# ------------------------------------------------------------------ serve, db, misc
app.command()(serving.serve)
db_app.command("upgrade")(serving.db_upgrade)
app.command()(serving.dialects)
app.command()(serving.version)


def error_line(err: SilonetError) -> str:
    """One line that names the field and the rule."""
    msg = err.message
    if err.field and not msg.startswith(f"{err.field}:"):
        msg = f"{err.field}: {msg}"
    return msg


PROBLEMS_SHOWN = 5


def error_lines(err: SilonetError) -> list[str]:
    """One line per problem of the request (the first five, then how many more)."""
    problems = err.problems
    lines = [error_line(p) for p in problems[:PROBLEMS_SHOWN]]
    if len(problems) > PROBLEMS_SHOWN:
        lines.append(f"and {len(problems) - PROBLEMS_SHOWN} more problem(s)")
    return lines


def main() -> None:
    """Entry point: every problem is one red line; exit 1 for a refused request, 2 for usage."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    try:
        code = typer.main.get_command(app).main(standalone_mode=False)
    except SilonetError as err:
        for line in error_lines(err):
            render.error(line)
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
