"""``alaxala``: ALAXALA AX switches (AX3660S documented and captured; AX4630S is the seed's own
gateway), through the interactive CLI (shell style).

Proven on captured output, never run against a switch here (``verified`` says so). Everything
is from AX3660S software 12.1 material; no AX4630S-era material was found. The captures are in
tests/drivers/ssh/corpus/alaxala/ (each case names its source and commit):

- ``show running-config`` (``vlan <id>`` / ``name`` / ``vxlan-vni``, ``interface vxlan 1`` with
  ``source-interface loopback 0``, ``member vni 101-105,201-205``, ``destination-ip <ip>``, trunk
  ports ``switchport trunk allowed vlan 101-105,201-205``, ``interface loopback 0`` / ``ip address``):
  ALAXALA's Ansible guidebook (github alaxalanetworks/ansible-guidebook), config/core_sw-1_config.txt
  and config/config_core_sw-2_config.txt, two AX3660S-48T4XW on 12.1.C whose one VTEP carries ten
  VNIs of the operator's. Its add-VLAN/add-VNI playbook's running-config diff (chapter 4.3, 12.1.H):
  ``vxlan-vni`` in the VLAN first, then ``member vni add``, read back as ``member vni 101-105,...,601``.
- ``show vxlan vni`` (``Date`` line, ``VTEP ID: 1``, ``VNI: 101  Status: enable``, ``Learning: On``,
  ``VLAN: 101   Port: 1/0/11``): the guidebook's capture of the same switch (chapter 4.3; the guide
  cut it after VNI 103) and its TextFSM template.
- ``show version`` (``Model: AX3660S-48T4XW``, ``S/W: OS-L3M Ver. 12.1.H``; a stack prints one
  block per switch, ``Switch 1 (Master)`` ...): the guidebook's chapter 3 (12.1.H, one switch) and
  chapter 4.5 (a two-switch stack, before and after an update 12.1.G -> 12.1.H). Not ``Software:
  AX3660S Ver. ...``, as the issue guessed. No syntax silonet types differs between the releases
  found (12.1.C to 12.1.H), so ``prepare`` chooses none by version; the version is read and shown.
- Session flow: login lands at ``host>``; ``enable`` -> ``host#``; ``configure terminal`` ->
  ``host(config)#``; changes apply at once and the prompt starts with ``!`` until ``save``;
  ``save`` is typed *in config mode* and clears the ``!``; ``end`` with unsaved changes asks a
  y/n question (answered ``y``: leave without saving). Source: the device operation logs in the
  guidebook (chapters 4.2/4.3: ``!AX3660S-1(config)# save`` then ``AX3660S-1(config)# end``;
  ``end`` then ``y`` when unsaved), and netmiko's ``alaxala_ax36s`` driver (saves in config mode,
  answers ``(y/n)``). ``set terminal pager disable`` typed at ``>``: the same logs, netmiko.
- Interface names ``geth1/0/1``, ``tengeth1/0/49`` (``show port``) and ``interface
  gigabitethernet 1/0/11`` (running-config): ALAXALA's AX-TextFSM-templates, the guidebook.
- Failure strings (``% ...`` lines, ``Error: ...``, ``<word>: not found``): third-party
  tooling only (netutils' CLI class). They are matched as substrings of answer lines, show
  output included: a running-config line with ``% `` in it (a description) fails the read.

Not confirmed by any source, and therefore kept in ONE place, ``templates/_ax.j2``, which an
operator can correct without touching code (the parser reads its settings too):

- Several remote VTEPs: one ``destination-ip <ip>`` line each (the captures show one address on
  one line), removed with ``no destination-ip <ip>``. The parser accepts one or several addresses
  per line, so either form reads back.
- The VTEP id silonet uses: ``interface vxlan 1`` by default (``vtep``), and the ownership
  marker ``silonet-`` (``marker``).
- Per-port ("subinterface", ``encapsulation dot1q``) mapping is not used: the command that
  binds a VNI to a subinterface is unconfirmed. The documented form, VLAN mapping, is per
  switch: ``scope="switch"``, and silonet refuses plans that need one VLAN ID for two VNIs
  (or one VNI on two VLANs) on one AX.
- The inverses ``member vni remove``, ``no vxlan-vni``, ``switchport trunk allowed vlan
  remove``, ``no vlan``, ``no destination-ip`` are the obvious CLI forms, not seen in the
  sources. The VLAN name length limit is unknown (a long ``silonet-<network>`` name that the
  switch refuses fails the batch with its error).

Model (VLAN mapping, per switch). A logical switch is a VNI that is a member of silonet's
VTEP and mapped from a VLAN named ``silonet-<network>`` (the ownership marker: AX has no
other free-text field per VNI). A binding (port, V) -> N is trunk membership of V on the port
while V maps to N. A VNI comes into being with its first VLAN mapping (``bind.j2``: VLAN,
then ``member vni add``, the guidebook's order) and goes with its last, in the reverse order
(``member vni remove``, then the VLAN is unmapped and deleted): a batch cut short leaves a
``silonet-*`` VLAN mapping a VNI that is not a member, which reads as silonet's and is completed
or removed, never a member no VLAN maps, which reads as someone else's. A network none of whose
bindings this gateway can take (missing port, foreign VLAN) has no VNI here either (the
framework drops such VNIs for per-switch dialects: ``bare_vnis``).

Sharing the VTEP. The operator's own VXLAN may live in the same ``interface vxlan 1`` (the
guidebook's switches carry VNIs 101-105 and 201-205 there): silonet reports it as foreign
(``foreign_vnis`` with the VLAN's name, ``foreign_bindings`` for every foreign VLAN on every
managed port, since one VLAN ID is one VLAN on the whole switch), never changes it, and adds or
removes only its own ``member vni`` entries and VLANs beside it. A member no ``silonet-*`` VLAN
maps is someone else's (``VTEP 1``), and so are the VNIs of other VTEPs.

Remote VTEPs are per VTEP on AX, not per VNI: every member VNI is replicated to every
``destination-ip``. The parser reports that list as each of silonet's VNIs' flood list, and the
framework configures the union of silonet's flood lists (``flood_per_vtep``; over-flooding to a
gateway that lacks a VNI costs bandwidth only: it drops the frames). While a VNI that is not
silonet's is a member of the VTEP (or silonet has none there), every address on the list may
serve it: the parser puts the whole list in ``DeviceFacts.foreign_flood``, the plan keeps it in
the union, and ``prepare`` never types ``no destination-ip`` for one of them. So on a shared
VTEP silonet adds remote VTEPs and removes none: a stale one only costs flooding.

Ownership of the rest: silonet owns the VLANs named ``silonet-*``; the VTEP must already exist
(``vxlan enable``, ``source-interface loopback 0``; silonet does not create it; a missing one is
an explicit read error). The VTEP's tunnel source (``source-interface`` -> that interface's
``ip address``) is reported as ``vtep_ip``. An owned VLAN mapping that no port trunks is reported
as a binding on the pseudo-port ``no-port`` and cleaned up.

Ports. The model forbids ``/`` in names: name AX ports after their ``show port`` names with
``_`` for ``/``: ``geth1_0_11`` is ``interface gigabitethernet 1/0/11``, ``tengeth1_0_49`` is
``tengigabitethernet 1/0/49``; full type names (``gigabitethernet1_0_11``) and
``port-channel10`` work too. Other names are typed verbatim (``interface p1``). silonet sets
``switchport mode trunk`` when it first binds a port and never changes the mode back.

Session. When the CLI session opens, ``setup`` turns the pager off (``set terminal pager
disable``) and enters admin mode (``enable``), once: the session then stays at ``#``, where
the guidebook runs the show commands (``show running-config`` is an admin command). ``enable``
must not ask for a password (the framework answers no password prompt: the driver would wait for
a prompt until its timeout): give silonet's account admin rights without an enable password. A
batch is ``configure terminal``, the changes (each block ``exit``s back to ``(config)#``), then
``save`` while still in config mode, so that ``end`` asks nothing. On a refused line the
driver sends ``abort.j2``: ``end`` and ``y`` (leave without saving: the y/n question is
matched by the prompt regex, so its answer is simply the next line; if nothing was unsaved,
the ``y`` is a harmless error at ``#``); the running config keeps the partial change, unsaved
(the ``!`` stays), and the next reconcile pass repairs it and saves. An untagged (VLAN 0)
binding, or one that would break VLAN<->VNI one to one, is refused by ``check``: it fails its
attachment alone.

Limits: 8,192 VNI mapping entries (``default_capacity``); static remote MACs are not
supported (``remote_macs=False``; AX learns MACs from received VXLAN frames).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from silonet.drivers.ssh.dialect import Batch, Dialect, Parsed, Prepared, Target, checks, untagged_refused
from silonet.drivers.ssh.dialects.alaxala.read import (
    NO_PORT,
    PROMPT,
    SHOW_CONFIG,
    SHOW_VNI,
    VERSION,
    interface,
    parse_config,
    parse_vni,
    read,
    version,
    vlan_list,
)
from silonet.drivers.ssh.switchscope import one_to_one
from silonet.plan.ops import Bind, EnsureLogicalSwitch, RemoveLogicalSwitch, SetFloodList, Unbind

__all__ = ["DIALECT", "NO_PORT", "SETUP", "SHOW", "SHOW_CONFIG", "SHOW_VNI", "VERSION", "interface", "parse",
           "parse_config", "parse_vni", "prepare", "settings", "version", "vlan_list"]

SETUP = ("set terminal pager disable", "enable")  # once per session: the session then stays at "#"
SHOW = (SHOW_VNI, SHOW_CONFIG)
FAILURES = ("% ", "Error:", ": not found")  # substrings of an answer line


@cache
def settings() -> tuple[int, str]:
    """``vtep`` and ``marker`` from ``templates/_ax.j2`` (one place for operators to edit)."""
    module = DIALECT.env.get_template("_ax.j2").module
    return int(module.vtep), str(module.marker)  # type: ignore[attr-defined]


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    return read(outputs, gw, *settings())


# ---------------------------------------------------------------------------- batches
class Remotes(NamedTuple):
    """The VTEP's remote list as a batch leaves it (``after``), and the change from before."""

    after: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


def prepare(batch: Batch) -> Prepared:
    """What each operation's template prints, worked out for the whole batch.

    A Bind writes its VLAN's mapping when it is the first of the batch on a VLAN that does not
    map its VNI yet (``mapping``; ``remap``: the VLAN held another VNI), adds its VNI to the VTEP
    when it is the first Bind of a new VNI (``member``), and sets trunk mode when it is the first
    on a port silonet had not bound (``trunk_mode``). The last Unbind of a VLAN nothing keeps
    unmaps and deletes it (``unmap``); ``trunk``: the port is a real one, not ``NO_PORT``. A VNI of
    silonet's that no VLAN maps any more and the batch does not keep leaves the VTEP right before
    its last mapping goes (``leave``, on that Bind or Unbind; RemoveLogicalSwitch: ``member``, only
    if none did). An EnsureLogicalSwitch renames the VLANs that keep mapping its VNI (``renames``).
    The VTEP's remote list (the union of the flood lists of the VNIs that have a VLAN, and every
    remote VTEP the device's other VNIs may use, ``facts.foreign_flood``: never removed) is written
    by the first SetFloodList (``remotes``), else by the commit (``remotes_at_commit``); None:
    unchanged. No syntax differs between the releases found, so ``batch.platform`` chooses none.
    """
    ops, actual, desired, keep = batch.ops, batch.actual, batch.desired, batch.facts.foreign_flood
    have = {vlan: vni for (_port, vlan), vni in actual.bindings.items()}
    want = {vlan: vni for (_port, vlan), vni in desired.bindings.items()}
    bound = {port for port, _vlan in actual.bindings}
    before = frozenset().union(*(ls.flood for ls in actual.logical_switches.values()), keep)
    after = frozenset().union(*(ls.flood for vni, ls in desired.logical_switches.items() if vni in set(want.values())),
                              keep)
    remotes = Remotes(tuple(sorted(after)), tuple(sorted(after - before)), tuple(sorted(before - after))) \
        if before != after else None
    kept: dict[int, list[int]] = {}  # VNI -> the VLANs that map it before and after
    for vlan, vni in sorted(have.items()):
        if want.get(vlan) == vni:
            kept.setdefault(vni, []).append(vlan)
    last_unbind = {op.vlan: i for i, op in enumerate(ops) if isinstance(op, Unbind) and op.vlan not in want}
    mapped = dict(have)  # VLAN -> VNI as the batch goes
    members = set(actual.logical_switches)  # silonet's members of the VTEP as the batch goes

    def leaving(vni: int | None) -> int | None:
        """``vni`` if it is a member of silonet's that no VLAN maps now and the batch does not keep."""
        if vni is None or vni not in members or vni in desired.logical_switches or vni in mapped.values():
            return None
        members.discard(vni)
        return vni

    vlans: set[int] = set()
    ports: set[str] = set()
    flood_at: int | None = None
    each: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        ctx: dict[str, Any] = {}
        if isinstance(op, Bind):
            mapping = have.get(op.vlan) != op.vni and op.vlan not in vlans
            ctx.update(mapping=mapping, remap=mapping and op.vlan in have, leave=None, member=op.vni not in members,
                       trunk_mode=op.port not in bound and op.port not in ports)
            if mapping:
                vlans.add(op.vlan)
                old, mapped[op.vlan] = mapped.get(op.vlan), op.vni
                ctx["leave"] = leaving(old)
            members.add(op.vni)
            ports |= {op.port} if ctx["trunk_mode"] else set()
        elif isinstance(op, Unbind):
            unmap = last_unbind.get(op.vlan) == i
            ctx.update(trunk=op.port != NO_PORT, unmap=unmap, leave=leaving(mapped.pop(op.vlan, None)) if unmap
                       else None)
        elif isinstance(op, RemoveLogicalSwitch):
            ctx["member"] = op.vni in members
            members.discard(op.vni)
        elif isinstance(op, SetFloodList):
            ctx["remotes"] = remotes if flood_at is None else None
            flood_at = i if flood_at is None else flood_at
        elif isinstance(op, EnsureLogicalSwitch):
            ctx["renames"] = kept.get(op.vni, []) if op.vni in actual.logical_switches else []
        each.append(ctx)
    return Prepared({"remotes_at_commit": remotes if flood_at is None else None}, each)


DIALECT = Dialect(
    name="alaxala",
    platform="ALAXALA AX3660S (documented, captured) / AX4630S (the seed's gateway)",
    verified="captured output: AX3660S 12.1.C, 12.1.H (ALAXALA Ansible guidebook)",
    scope="switch",
    style="shell",
    show=SHOW,
    parse=parse,
    failures=FAILURES,
    folder=Path(__file__).parent,
    version_show=VERSION,
    version=version,
    prompt=PROMPT,
    setup=SETUP,
    remote_macs=False,
    flood_per_vtep=True,
    unnamed=False,  # a batch cut short never leaves an unnamed switch of silonet's (see the docstring)
    default_capacity=8192,
    check=checks(untagged_refused("alaxala"), one_to_one("alaxala")),
    prepare=prepare,
    filters={"ax_interface": interface},
    # README "Fencing"
    unfenced="changes apply as each line is entered (no commit step): there is no transaction a check could abort",
    notes="VLAN mapping per switch (vlan / vxlan-vni, interface vxlan 1 / member vni); ownership = VLAN name "
          "silonet-<network>; the VTEP may carry the operator's VNIs (foreign, kept, and so is every remote VTEP "
          "while they are there); remote VTEPs are per VTEP (union of flood lists); save in config mode; "
          "ports geth1_0_11 = gigabitethernet 1/0/11",
)
