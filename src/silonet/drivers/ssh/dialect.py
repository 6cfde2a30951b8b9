"""What a dialect is, how its templates render a batch, and the registry.

A dialect is data plus two Python hooks: a folder of Jinja2 templates (one per operation,
plus the session framing) and a module that declares its show commands, parser, failure
strings, prompt and limits, what one switch of it cannot hold (``check``) and what each
operation of a batch must print (``prepare``). ``render_batch`` is pure, so golden files pin
every dialect's output (docs/architecture.md, "Dialects (SSH)").
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import jinja2

from silonet.drivers.base import Fence, Platform
from silonet.drivers.untrusted import TEMPLATE_FILTERS, UnsafeValue, echo, shown
from silonet.errors import DeviceError, InvalidInput
from silonet.model.inventory import Proposed
from silonet.plan.ops import Operation, SetFloodList
from silonet.plan.ownership import DeviceFacts, Key, without
from silonet.plan.state import GatewayState

OP_TEMPLATES = {
    "EnsureLogicalSwitch": "ensure_logical_switch.j2",
    "SetFloodList": "set_flood_list.j2",
    "SetRemoteMac": "set_remote_mac.j2",
    "Bind": "bind.j2",
    "Unbind": "unbind.j2",
    "RemoveRemoteMac": "remove_remote_mac.j2",
    "RemoveLogicalSwitch": "remove_logical_switch.j2",
}
FRAMING = ("begin.j2", "commit.j2", "abort.j2")
FENCE = "fence.j2"  # the lease fence inside the batch's session, where the platform can check and abort


@dataclass(frozen=True)
class Parsed:
    """A dialect parser's reading of the show outputs (``vtep_ip``: the tunnel source address the
    device uses, when its outputs say it)."""

    owned: GatewayState
    facts: DeviceFacts = field(default_factory=DeviceFacts)
    local_macs: dict[int, frozenset[str]] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    vtep_ip: str | None = None
    # other addresses of the tunnel source, one of which may be the inventory's (NX-OS vPC: the
    # loopback's secondary address is the pair's anycast VTEP, the primary the member's own)
    vtep_also: tuple[str, ...] = ()
    epoch: int | None = None  # the lease epoch the device holds (dialects with ``fence.j2``; None: none)


@dataclass(frozen=True)
class Target:
    """What templates and parsers may know about the gateway they talk to: the inventory's words
    for it, and what the device said it is (``platform``, read once per session)."""

    name: str
    vtep_ip: str
    ports: tuple[str, ...] = ()
    switchbacks: tuple[str, ...] = ()
    platform: Platform | None = None


def version_numbers(text: str) -> tuple[int, ...]:
    """The numbers of a version as a platform prints it, for comparing: ``4.22.1F`` -> (4, 22, 1),
    ``9.3(3)`` -> (9, 3, 3), ``20.4R3-S1.3`` -> (20, 4, 3, 1, 3), ``5.15.0`` -> (5, 15, 0)."""
    found = tuple(int(n) for n in re.findall(r"\d+", text)[:8])
    if not found:
        raise ValueError(f"no version number in {shown(text)}")
    return found


def platform(model: object, version: object) -> Platform:
    """A ``Platform`` from what a version command printed (untrusted: both bounded and escaped)."""
    text = echo(str(version), 64)
    return Platform(echo(str(model), 128), version_numbers(text), text)


Parser = Callable[[Mapping[str, str], Target], Parsed]
Refusals = dict[Key, str]  # the bindings a platform cannot hold, each with the rule it breaks
Check = Callable[[GatewayState], Refusals]


@dataclass(frozen=True)
class Prepared:
    """What a dialect's ``prepare`` worked out for one batch, for its templates to print:
    ``batch`` is seen by every template of the batch (the framing has nothing else), ``each[i]``
    by the template of the batch's ``i``-th operation."""

    batch: Mapping[str, Any] = field(default_factory=dict)
    each: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class Batch:
    """What a dialect's ``prepare`` is told about one batch: the operations, the device's owned
    state before them (``actual``) and after (``desired``), the gateway (with its ``platform``, by
    which syntax that changed between releases is chosen) and what others hold there (``facts``)."""

    ops: list[Operation]
    actual: GatewayState
    desired: GatewayState
    target: Target
    facts: DeviceFacts = field(default_factory=DeviceFacts)

    @property
    def platform(self) -> Platform | None:
        return self.target.platform


Prepare = Callable[[Batch], Prepared]
VersionReader = Callable[[str], Platform]
OpContext = Callable[[Any, int], Mapping[str, Any]]  # (operation, its index in the batch) -> context


def flood_delta(had: AbstractSet[str], op: SetFloodList) -> dict[str, list[str]]:
    """A flood list written as a change to what the device ``had``: the IPs that go and come."""
    return {"gone": sorted(had - op.flood), "added": sorted(op.flood - had)}


def per_operation(ops: list[Operation], by_kind: Mapping[type, OpContext]) -> list[Mapping[str, Any]]:
    """``Prepared.each`` from one function per kind of operation (an operation of a kind not named
    prints from its own fields alone)."""
    return [ctx(op, i) if (ctx := by_kind.get(type(op))) is not None else {} for i, op in enumerate(ops)]


@dataclass(frozen=True)
class Dialect:
    """One vendor CLI.

    ``scope``: ``port`` when the platform maps VLAN->VNI per (port, VLAN); ``switch`` when one
    VLAN ID means one VNI on the whole switch (then two interface groups on one gateway
    cannot use the same VLAN for different networks, and silonet refuses such a plan).
    ``style``: ``exec`` sends a batch as one remote command (joined with ``join``);
    ``shell`` types it line by line into an interactive CLI, checking each answer for
    ``failures`` and waiting for ``prompt``.
    """

    name: str
    platform: str
    verified: str  # "lab": run against the real thing here; else what its parser is proven on ("captured output: ...")
    scope: Literal["port", "switch"]
    style: Literal["exec", "shell"]
    show: tuple[str, ...]
    parse: Parser
    failures: tuple[str, ...]
    folder: Path
    # the command whose answer says what the device is (``version``: its reader); asked once per
    # session, before the show commands, so parsers and ``prepare`` see ``Target.platform``
    version_show: str | None = None
    version: VersionReader | None = None
    # why a device of this platform cannot be served at all (a release too old), or None: asked right
    # after the version, before any show command a release that old may not have
    unsupported: Callable[[Platform], str | None] | None = None
    prompt: str = r"^[\w.@:/()!~ -]*[>#$]\s?$"
    setup: tuple[str, ...] = ()  # sent once when a CLI session opens (paging off...); set-up, not read
    join: str = "\n"
    remote_macs: bool = False
    flood_lists: bool = True  # False: the platform builds them (EVPN); silonet does not compare them
    flood_per_vtep: bool = False  # True: one remote-VTEP list serves every VNI (the union is configured)
    default_capacity: int | None = None
    notes: str = ""
    # What one switch of the platform cannot hold, asked when an attachment is made (a 409 then,
    # instead of a batch the switch refuses on every pass): the rule broken, or None.
    limits: Callable[[Proposed], str | None] | None = None
    # The same on every pass, about the state silonet is about to apply (stored attachments older
    # than a limit, a gateway whose dialect changed): the bindings it cannot hold, each with its rule.
    # They are left out and fail their attachments alone (``DeviceFacts.refuse``).
    check: Check | None = None
    # What each operation of a batch must print, worked out once in Python (templates only print).
    prepare: Prepare | None = None
    unnamed: bool = False  # True: a switch of silonet's may read back without a name (an interrupted batch)
    # Why the platform's config session cannot check the lease epoch and abort in the batch's own
    # transaction (then only the lease's clock fences its writes); None for a dialect that does
    # (its ``fence.j2``, rendered right after ``begin.j2``: README, "Fencing").
    unfenced: str | None = "its CLI has no check-and-set inside a config session that silonet can prove here"
    filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # the dialect's own Jinja2 filters
    # Refusals that mean another writer on the switch changed it between the batch's read and its
    # commit (a MAC learned on a network the batch deletes): the batch wrote nothing, and the pass
    # reads and plans again (``Raced``, ``ApplyResult.retry``). Only where a batch is one transaction.
    raced: tuple[str, ...] = ()

    @cached_property
    def env(self) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.folder / "templates"),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
            autoescape=False,
        )
        # every value a template prints goes through one of these (tests/drivers/ssh/test_hostile.py
        # walks every template to hold it so): each refuses anything but a plain token or an integer
        env.filters.update(TEMPLATE_FILTERS)
        env.filters.update(self.filters)
        return env

    def template(self, name: str) -> jinja2.Template | None:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound:
            return None


# ------------------------------------------------------------------ limits
Limit = Callable[[Proposed], str | None]


def tagged_only(p: Proposed) -> str | None:
    """Platforms that map tagged VLANs only: VLAN 0 (untagged) cannot carry a VNI there."""
    return "it maps tagged VLANs only; VLAN 0 (untagged) cannot carry a VNI" if p.vlan == 0 else None


def vlan_name_within(limit: int, prefix: str = "silonet-") -> Limit:
    """Platforms whose VLAN names (silonet's ownership mark, ``prefix`` + network) have a length limit."""

    def check(p: Proposed) -> str | None:
        name = prefix + p.network
        why = long_name(name, limit)
        return None if why is None else f"{why} (network names of at most {limit - len(prefix)} characters fit)"

    return check


def all_of(*limits: Limit) -> Limit:
    def check(p: Proposed) -> str | None:
        return next((why for limit in limits if (why := limit(p)) is not None), None)

    return check


def long_name(name: str, limit: int) -> str | None:
    """Why a VLAN name is too long for a platform that allows ``limit`` characters, or None."""
    return f"its VLAN name {name!r} would be {len(name)} characters, the platform allows {limit}" \
        if len(name) > limit else None


# ------------------------------------------------------------------ checks (every pass)
def untagged_refused(dialect: str) -> Check:
    """Platforms that map tagged VLANs only: a VLAN 0 (untagged) binding cannot be held."""

    def check(state: GatewayState) -> Refusals:
        return {(port, vlan): f"the {dialect} dialect maps tagged VLANs only; VLAN 0 (untagged) cannot carry "
                              f"VNI {vni}" for (port, vlan), vni in state.bindings.items() if vlan == 0}

    return check


def names_within(limit: int, prefix: str = "silonet-") -> Check:
    """Platforms whose VLAN names (``prefix`` + network) have a length limit: every binding of a
    network whose name does not fit."""

    def check(state: GatewayState) -> Refusals:
        too_long = {vni: why for vni, ls in state.logical_switches.items()
                    if (why := long_name(prefix + ls.network, limit)) is not None}
        return {key: too_long[vni] for key, vni in state.bindings.items() if vni in too_long}

    return check


def checks(*rules: Check) -> Check:
    """``rules`` asked in turn, each about what the ones before left (a binding refused is not
    asked about again; a switch whose every binding was refused is gone), so that the state left
    passes them all."""

    def check(state: GatewayState) -> Refusals:
        out: Refusals = {}
        for rule in rules:
            if refused := rule(state):
                out.update(refused)
                state = without(state, refused)
        return out

    return check


def scope_conflicts(state: GatewayState) -> list[tuple[int, list[int]]]:
    """VLANs that would map to more than one VNI on one switch (or VNIs to more than one VLAN,
    reported with the VLANs' first): fine per port, impossible where the mapping is per switch."""
    vnis: dict[int, set[int]] = {}
    vlans: dict[int, set[int]] = {}
    for (_port, vlan), vni in state.bindings.items():
        vnis.setdefault(vlan, set()).add(vni)
        vlans.setdefault(vni, set()).add(vlan)
    out = [(vlan, sorted(v)) for vlan, v in sorted(vnis.items()) if len(v) > 1]
    out += [(min(v), [vni]) for vni, v in sorted(vlans.items()) if len(v) > 1]
    return out


def device_facts(dialect: Dialect, facts: DeviceFacts | None = None) -> DeviceFacts:
    """What the dialect says about every device of its kind (its ``check`` among it), laid over
    what was read. A parser's own ``refuse`` (what this device's configuration rules out) is kept
    beside the dialect's."""
    read = facts.refuse if facts is not None else None
    refuse = dialect.check if read is None else read if dialect.check is None else checks(read, dialect.check)
    return replace(facts or DeviceFacts(), remote_macs=dialect.remote_macs, flood_lists=dialect.flood_lists,
                   bare_vnis=dialect.scope == "port", flood_per_vtep=dialect.flood_per_vtep, refuse=refuse)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def render_batch(dialect: Dialect, ops: list[Operation], target: Target, actual: GatewayState,
                 desired: GatewayState, generation: int = 0, framed: bool = True,
                 facts: DeviceFacts | None = None, fence: Fence | None = None, held: int | None = None) -> list[str]:
    """The commands for ``ops``, framed by the dialect's begin/commit templates; with a ``fence``
    (and ``held``, the epoch the device held when read), the dialect's ``fence.j2`` right after
    ``begin.j2``, in the same session.

    Templates see ``op`` (with ``kind``), ``gw`` (the Target), ``actual``, ``desired``,
    ``generation`` and what the dialect's ``prepare`` worked out (``Prepared``); an operation
    the dialect has no template for is a programming error (the driver drops unsupported remote
    MACs before it diffs), and so is a ``desired`` state its ``check`` refuses (the plan left
    those bindings out): neither sends a line."""
    if dialect.check is not None and (refused := dialect.check(desired)):
        which = "; ".join(f"port {port} VLAN {vlan}: {why}" for (port, vlan), why in sorted(refused.items()))
        raise DeviceError(gateway=target.name, reason=f"the {dialect.name} dialect cannot hold {which}; nothing was "
                                                      "sent")
    try:
        prepared = dialect.prepare(Batch(ops, actual, desired, target, facts or DeviceFacts())) \
            if dialect.prepare is not None else Prepared()
    except ValueError as err:  # a state no parser reads: refused before a line exists
        raise DeviceError(gateway=target.name, reason=f"the {dialect.name} dialect cannot render this batch: "
                                                      f"{err}; nothing was sent") from None
    ctx: dict[str, Any] = {"gw": target, "actual": actual, "desired": desired, "generation": generation,
                           "ops": ops, **prepared.batch}
    out: list[str] = []
    if framed and (begin := dialect.template("begin.j2")) is not None:
        out += _render(begin, ctx)
    if framed and fence is not None and (check := dialect.template(FENCE)) is not None:
        out += _render(check, {**ctx, "fence": fence, "held": held})
    for i, op in enumerate(ops):
        tpl = dialect.template(OP_TEMPLATES[type(op).__name__])
        if tpl is None:
            raise InvalidInput(field="management.dialect",
                               rule=f"dialect {dialect.name} cannot {op.describe()}")
        each = prepared.each[i] if prepared.each else {}
        out += _render(tpl, {**ctx, **each, "op": op, "kind": type(op).__name__})
    if framed and (commit := dialect.template("commit.j2")) is not None:
        out += _render(commit, ctx)
    return out


def render_abort(dialect: Dialect, target: Target, generation: int = 0) -> list[str]:
    tpl = dialect.template("abort.j2")
    return [] if tpl is None else _render(tpl, {"gw": target, "generation": generation})


def _render(tpl: jinja2.Template, ctx: dict[str, Any]) -> list[str]:
    """The template's lines; a value its filters refuse fails the whole batch before a line is sent,
    naming the template, the value's role and the value."""
    try:
        return _lines(tpl.render(**ctx))
    except UnsafeValue as err:
        op = ctx.get("op")
        reason = (f"{tpl.name}{f' ({type(op).__name__})' if op is not None else ''}: refused to put the "
                  f"{_role(err.value, ctx)} {shown(err.value)} on a command line: it is not {err.rule}; "
                  "nothing was sent")
        raise DeviceError(gateway=ctx["gw"].name, reason=reason) from None


def _role(value: object, ctx: dict[str, Any]) -> str:
    """What ``value`` is to the batch (for the error): a field of the operation, of the gateway or of a
    state, or a value holding one (a template may join a prefix to a name before printing it)."""
    known: list[tuple[str, object]] = []
    op = ctx.get("op")
    for name in getattr(op, "__slots__", ()):
        held = getattr(op, name)
        for one in held if isinstance(held, AbstractSet) else (held,):
            known.append((f"{name.replace('_', ' ')} of the operation", one))
    known += [("gateway name", ctx["gw"].name), ("gateway VTEP IP", ctx["gw"].vtep_ip)]
    for which in ("desired", "actual"):
        state = ctx.get(which)
        for ls in state.logical_switches.values() if state is not None else ():
            known += [(f"{which} network name of VNI {ls.vni}", ls.network)]
            known += [(f"{which} flood list IP of VNI {ls.vni}", ip) for ip in ls.flood]
        for (port, _vlan) in state.bindings if state is not None else ():
            known.append((f"{which} binding port", port))
        for (vni, mac), ip in state.remote_macs.items() if state is not None else ():
            known += [(f"{which} remote MAC of VNI {vni}", mac), (f"{which} remote MAC IP of VNI {vni}", ip)]
    for role, held in known:
        if held == value:
            return role
    for role, held in known:
        if isinstance(held, str) and isinstance(value, str) and held and held in value:
            return f"value holding the {role}"
    return "value"


@cache
def dialects() -> dict[str, Dialect]:
    """The one registry: every package under ``dialects/`` that defines ``DIALECT``, by name.
    Adding a vendor is adding its folder; nothing else changes."""
    from silonet.drivers.ssh import dialects as package

    out = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        dialect = getattr(module, "DIALECT", None)
        if isinstance(dialect, Dialect):
            out[dialect.name] = dialect
    return dict(sorted(out.items()))


def get(name: str | None) -> Dialect:
    table = dialects()
    if name not in table:
        raise InvalidInput(field="management.dialect",
                           rule=f"{name!r} is not one of {', '.join(sorted(table))}")
    return table[name]
