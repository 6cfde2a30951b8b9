"""``eos``: Arista EOS, through its interactive CLI (shell style) inside one configure session.

Read on output captured from real switches (tests/drivers/ssh/corpus/eos: EOS 4.14 from Arista's
pyeapi fixtures, vEOS 4.23.5M from suzieq's lab capture, cEOS 4.30.0F from NAPALM's mocked
device); the writes are from documentation and Arista's own clients, never run on a switch here.
What was relied on, per fact:

- Session framing ``configure session <name>`` ... ``commit`` / ``abort``: Arista EOS User
  Manual, "Configure Session" (arista.com/en/um-eos/eos-configure-session); prompt shape
  ``host(config-s-<first 6 chars of name>)#`` from a public walkthrough
  (saidvandeklundert.net, "arista_configure_sessions").
- The release, once per session: ``show version | json``, keys ``modelName`` and ``version``
  (captured: pyeapi test/fixtures/show_version.json ``4.14.1-...``, suzieq eos-input device.output
  ``4.23.5M``, NAPALM test/eos/mocked_data/show_version.json ``4.30.0F-...``).
- VLAN->VNI mapping syntax by release (``prepare`` -> ``add_remove``): ``vxlan vlan add V vni N``
  and ``vxlan vlan remove V vni N`` from EOS 4.21 (arista-eosplus/pyeapi PR #188, Arista: "The
  range syntax for VXLAN VLAN to VNI map has been present since 4.21.0F ... the mapping can only be
  modified with the add/remove variants: vxlan vlan add/remove <vlanList> vni <vniList>"; pyeapi
  0.8.4 switched ``update_vlan``/``remove_vlan`` to them, issue #186 shows the old form refused
  beside a range); before 4.21 ``vxlan vlan V vni N`` and ``no vxlan vlan V vni`` (pyeapi 0.8.3
  pyeapi/api/interfaces.py). Unknown release (tests only): the newer form.
- ``interface Vxlan1``, ``vxlan vlan <V> flood vtep add|remove <ip>`` (unchanged in pyeapi 1.0
  ``add_vtep``/``remove_vtep``), ``no vxlan vlan <V> flood vtep`` (goeapi system tests; ``no vxlan
  vlan flood vtep`` in pyeapi test/fixtures/running_config.vxlan), netlab's EOS VXLAN template
  (ipspace/netlab netsim/ansible/templates/vxlan/eos.j2), EOS User Manual "VXLAN Configuration".
- ``vlan <V>`` / ``name <text>`` / ``no vlan <V>``, trunk ``switchport trunk allowed vlan
  add|remove``: EOS User Manual "Virtual LANs (VLANs)" and public EOS runbooks.
- ``show interfaces Vxlan1 | json``: ``interfaces.Vxlan1`` with ``srcIpAddr`` (the tunnel source,
  reported as ``Parsed.vtep_ip``), ``vlanToVniMap`` and ``vlanToVtepList`` (captured: pyeapi
  test/fixtures/vxlan.json, in eAPI's result list; read from the first ``{``). Entries:
  ``vlanToVniMap.<V> = {"vni": N, "source": ...}``; a ``source`` other than ``static``/empty is a
  mapping EOS made itself (``evpn``: the VLAN of a VRF's VNI), never silonet's, even on a VLAN
  named like silonet's; ``vrfToVniMap`` = VRF -> VNI, VNIs silonet must not take (a driver written
  against real EOS: Connectria/autonet-arista autonet_arista/eos/tasks/vxlan.py and its partial
  capture in tasks/tests/conftest.py); ``vlanToVtepList.<V> = {"remoteVtepAddr": [...],
  "remoteVtepAddr6": [...]}`` (suzieq suzieq/poller/worker/services/evpnVni.py reads it so; a bare
  list is accepted too). A switch without Vxlan1 answers with a ``%`` line (suzieq's evpnVni.py
  reads an EOS answer to ``show interfaces Vxlan $`` starting with ``%`` as no VXLAN; "% Interface
  does not exist": internap/fake-switches' Arista emulator): a fault, not a failed read. No
  public capture with a VLAN->VNI mapping in it was found: mappings are proven by unit tests only.
- ``show vlan | json``: ``vlans.<id>.name`` (captured: pyeapi test/fixtures/vlan_show.json,
  NAPALM test_get_vlans/normal/show_vlan.json, suzieq's ``show vlan brief``, the same model).
- ``show interfaces switchport | json``: ``switchports.<port>.switchportInfo.mode`` and
  ``trunkAllowedVlans`` = ``ALL`` | ``NONE`` | ranges (aristanetworks/goeapi
  testdata/fixtures/show_interfaces_switchport.json, captured from a switch whose release it does
  not name, hence in no corpus case).
- Failure strings ``% Invalid input`` (seen in EOS transcripts), ``% Incomplete command``,
  ``% Ambiguous command``, ``% Error``: the usual EOS CLI answers, not checked one by one.
- Not verified at all: the 32-character limit on VLAN names (the templates refuse longer
  ``silonet-<network>`` names), that ``commit``/``abort`` are accepted from inside an interface
  or VLAN submode of the session (they are typed there), and how a VTEP in multicast mode
  (pyeapi's capture) treats a per-VLAN head-end list.

Model. EOS maps VLAN->VNI per switch (``scope="switch"``): one VLAN ID is one VNI on the
whole switch. A logical switch is a *VLAN object*: ``vlan V`` named ``silonet-<network>`` (the
ownership marker), ``vxlan vlan V vni N`` and ``vxlan vlan V flood vtep`` on Vxlan1. A binding
(port, V) is trunk membership: the port trunks V (``switchport trunk allowed vlan``; a trunk
allowing ``ALL`` trunks every VLAN). The parser (``read.py``) reports configured mappings whose
VLAN is named ``silonet-*`` as owned, and every other VLAN that exists (or is mapped) as foreign,
on every port silonet manages: on a per-switch platform silonet must not rename, map or delete a
VLAN ID someone else uses. An owned VLAN object that no managed port trunks is reported as a
binding on the pseudo-port ``Vxlan1`` so the plan removes (or reuses) it instead of leaking.
Operations are per VNI and per (port, VLAN), but the device object is the VLAN, so
``prepare`` derives it from ``actual``/``desired``: a VNI's VLAN is the one its bindings use;
the first bind of a VLAN new to its VNI makes the VLAN object when no EnsureLogicalSwitch
does; ``begin.j2`` unmaps every VLAN the batch hands to another VNI right after opening the
session (so swaps never find a VNI mapped twice); the last unbind of a VLAN no longer wanted
removes its object when the VNI stays, ``remove_logical_switch.j2`` when the VNI goes.

What one switch cannot hold is refused by ``check``, binding by binding (each fails its
attachment alone): untagged VLAN 0, one VNI on two VLANs or one VLAN for two VNIs, a VLAN
name over 32 characters. ``terminal length 0`` is session set-up (the pty would page long
output); inventory port names spell ``/`` as ``_`` (the model forbids ``/``: ``Ethernet3_1`` is
``Ethernet3/1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import (
    Batch,
    Dialect,
    Prepared,
    all_of,
    checks,
    names_within,
    per_operation,
    tagged_only,
    untagged_refused,
    vlan_name_within,
)
from silonet.drivers.ssh.dialects.eos.read import (
    SHOW_SWITCHPORT,
    SHOW_VLAN,
    SHOW_VXLAN,
    VERSION,
    VXLAN_IF,
    parse,
    version,
)
from silonet.drivers.ssh.switchscope import one_to_one
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, RemoveLogicalSwitch, SetFloodList, Unbind
from silonet.plan.state import GatewayState

__all__ = ["DIALECT", "SHOW_SWITCHPORT", "SHOW_VLAN", "SHOW_VXLAN", "VERSION", "add_remove", "parse", "prepare",
           "version"]

PAGER_OFF = "terminal length 0"
ADD_REMOVE_SINCE = (4, 21)  # ``vxlan vlan add|remove V vni N`` (pyeapi PR #188: present since 4.21.0F)


def add_remove(found: Platform | None) -> bool:
    """Whether VLAN->VNI mappings are written ``vxlan vlan add|remove V vni N`` (EOS 4.21 and
    later, and when the release is not known) rather than ``vxlan vlan V vni N`` / ``no vxlan vlan
    V vni``: once a switch holds a mapping in range syntax, the old form is refused."""
    return found is None or found.at_least(*ADD_REMOVE_SINCE)


# ---------------------------------------------------------------------------- batches
def _interface(port: str) -> str | None:
    """The device's name of an inventory port; None for the pseudo-port ``Vxlan1`` (no trunk)."""
    return None if port == VXLAN_IF else port.replace("_", "/")


def _vlans(state: GatewayState) -> dict[int, set[int]]:
    """VNI -> the VLANs ``state``'s bindings give it."""
    out: dict[int, set[int]] = {}
    for (_port, vlan), vni in state.bindings.items():
        out.setdefault(vni, set()).add(vlan)
    return out


class _Batch:
    """What the operations of one batch print of the VLAN objects (see the module docstring)."""

    def __init__(self, ops: list[Operation], actual: GatewayState, desired: GatewayState) -> None:
        self.actual, self.desired = actual, desired
        self.used = {vlan for (_port, vlan) in desired.bindings}  # VLANs the desired state keeps
        self.had, self.wants = _vlans(actual), _vlans(desired)  # VNI -> VLANs
        self.prev = {vlan: vni for (_port, vlan), vni in actual.bindings.items()}  # VLAN -> VNI now
        self.ensured = {op.vni for op in ops if isinstance(op, EnsureLogicalSwitch)}
        self.flooded = {op.vni for op in ops if isinstance(op, SetFloodList)}
        self.first_bind: dict[int, int] = {}
        self.last_unbind: dict[int, int] = {}
        for i, op in enumerate(ops):
            if isinstance(op, Bind):
                self.first_bind.setdefault(op.vlan, i)
            elif isinstance(op, Unbind):
                self.last_unbind[op.vlan] = i

    def remap(self) -> list[tuple[int, int]]:
        """(VLAN, VNI) mappings ``begin.j2`` deletes: the VLANs the batch hands to another VNI."""
        wanted = {vlan: vni for (_port, vlan), vni in self.desired.bindings.items()}
        out: dict[int, int] = {}
        for (_port, vlan), vni in sorted(self.actual.bindings.items()):
            if wanted.get(vlan, vni) != vni:
                out.setdefault(vlan, vni)
        return list(out.items())

    def unmap(self, vni: int) -> list[int]:
        """The VLANs ``vni`` leaves that no desired binding keeps (their mapping goes)."""
        return sorted(vlan for vlan in self.had.get(vni, ()) if vlan not in self.used)

    def bind(self, op: Bind, i: int) -> dict[str, Any]:
        """The first Bind of a VLAN new to its VNI writes the VLAN object: its name and mapping when
        no EnsureLogicalSwitch of the batch does (``network``, ``unmap``, ``maps``), its flood list
        when no SetFloodList does (``clear``: the VLAN carried another VNI; ``peers``)."""
        out: dict[str, Any] = {"interface": _interface(op.port), "network": None, "vxlan": False, "unmap": [],
                               "maps": False, "clear": False, "peers": []}
        if op.vlan in self.had.get(op.vni, ()) or self.first_bind[op.vlan] != i:
            return out
        ls = self.desired.logical_switches[op.vni]
        ensure, flood = op.vni in self.ensured, op.vni in self.flooded
        return {**out, "network": None if ensure else ls.network, "vxlan": not (ensure and flood),
                "unmap": [] if ensure else self.unmap(op.vni), "maps": not ensure,
                "clear": not flood and op.vlan in self.prev, "peers": [] if flood else sorted(ls.flood)}

    def unbind(self, op: Unbind, i: int) -> dict[str, Any]:
        """The last Unbind of a VLAN no longer wanted removes its object when its VNI stays."""
        vni = self.actual.bindings[(op.port, op.vlan)]
        drop = op.vlan not in self.used and self.last_unbind[op.vlan] == i and vni in self.desired.logical_switches
        return {"interface": _interface(op.port), "drop_vni": vni if drop else None}

    def ensure(self, op: EnsureLogicalSwitch) -> dict[str, Any]:
        """The VNI's VLANs, each with the mappings it replaces (None: mapped already, only renamed)."""
        have = self.had.get(op.vni, set())
        return {"vlans": [(vlan, None if vlan in have else self.unmap(op.vni))
                          for vlan in sorted(self.wants.get(op.vni, ()))]}

    def flood(self, op: SetFloodList) -> dict[str, Any]:
        """Per-VLAN head-end replication on Vxlan1: the delta on an existing VLAN object, the whole
        list on one (re)made in this batch (cleared first if the VLAN carried another VNI)."""
        have = self.had.get(op.vni, set())
        ls = self.actual.logical_switches.get(op.vni)
        old = ls.flood if ls is not None else frozenset()
        steps: list[tuple[str, int, str | None]] = []
        for vlan in sorted(self.wants.get(op.vni, ())):
            if vlan in have:
                steps += [("remove", vlan, ip) for ip in sorted(old - op.flood)]
                steps += [("add", vlan, ip) for ip in sorted(op.flood - old)]
            else:
                steps += [("clear", vlan, None)] if vlan in self.prev else []
                steps += [("add", vlan, ip) for ip in sorted(op.flood)]
        return {"steps": steps}

    def remove(self, op: RemoveLogicalSwitch) -> dict[str, Any]:
        """The VNI's VLAN objects, except a VLAN the desired state hands to another VNI."""
        return {"vlans": self.unmap(op.vni)}


def prepare(batch: Batch) -> Prepared:
    """What each operation of the batch prints (``_Batch``); ``remap`` for ``begin.j2``; and which
    mapping syntax every template writes (``add_remove``: by the release the switch runs)."""
    ops, actual, desired = batch.ops, batch.actual, batch.desired
    b = _Batch(ops, actual, desired)
    each = per_operation(ops, {
        Bind: b.bind, Unbind: b.unbind, EnsureLogicalSwitch: lambda op, _i: b.ensure(op),
        SetFloodList: lambda op, _i: b.flood(op), RemoveLogicalSwitch: lambda op, _i: b.remove(op)})
    return Prepared({"remap": b.remap(), "add_remove": add_remove(batch.platform)}, each)


DIALECT = Dialect(
    name="eos",
    platform="Arista EOS (VXLAN with static head-end replication, configure session)",
    verified="captured output: EOS 4.14, 4.23, 4.30 (pyeapi, suzieq, napalm); commands from documentation",
    scope="switch",
    style="shell",
    show=(SHOW_VXLAN, SHOW_VLAN, SHOW_SWITCHPORT),
    setup=(PAGER_OFF,),
    parse=parse,
    version_show=VERSION,
    version=version,
    failures=("% Invalid input", "% Incomplete command", "% Ambiguous command", "% Error"),
    folder=Path(__file__).parent,
    prompt=r"^[A-Za-z0-9_.\-]+(\([^()\s]*\))?[>#] ?$",
    remote_macs=False,
    limits=all_of(tagged_only, vlan_name_within(32)),
    check=checks(untagged_refused("eos"), names_within(32), one_to_one("eos")),
    prepare=prepare,
    # README "Fencing"
    unfenced=("a configure session commits all or nothing, but nothing inside it compares a value and aborts "
              "by itself; a marker silonet read between lines could change under another session's commit"),
    notes="VLAN->VNI per switch; a binding is trunk membership of the mapped VLAN; ownership is the VLAN "
          "name silonet-<network>; mapping syntax by release (add/remove from 4.21); EVPN-made mappings foreign",
)
