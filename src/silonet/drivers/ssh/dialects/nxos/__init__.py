"""``nxos``: Cisco NX-OS (Nexus 9000), through its interactive CLI (shell style).

Proven on output captured from real switches (tests/drivers/ssh/corpus/nxos), never run against
one here. What was relied on, per fact:

- ``feature nv overlay`` / ``feature vn-segment-vlan-based`` are assumed configured by the
  operator, with ``interface nve1`` (``source-interface``, ``no shutdown``) in flood-and-learn
  mode; silonet adds ``vlan <T>`` / ``vn-segment <N>`` and, under ``interface nve1``, ``member
  vni <N>`` / ``ingress-replication protocol static`` / ``peer-ip <ip>``: Cisco Nexus 9000 NX-OS
  VXLAN Configuration Guide (static ingress replication), netlab's NX-OS template
  (ipspace/netlab netsim/ansible/templates/vxlan/nxos.j2).
- Static ingress replication needs flood-and-learn: with ``host-reachability protocol bgp``
  (BGP EVPN; every real VTEP in the corpus: suzieq's NX-OS 9.3(4) leaves, genieparser's
  7.0(3)I7(4) capture) NX-OS refuses it (cisco/cisco-network-node-utils
  lib/cisco_node_utils/vxlan_vtep_vni.rb at 0948c82c: "a check was added to make sure the
  host_reachability setting is correct", static -> flood). Such an nve1 is a switch fault, every
  binding of a VNI silonet does not already have there is refused (``read.Unholdable``), and
  ``prepare`` refuses to create a VNI there.
- Port VLAN mapping: ``switchport vlan mapping enable`` (trunk ports only) and ``switchport
  vlan mapping <ingress> <translated>`` with the *translated* VLAN in ``switchport trunk
  allowed vlan``: Cisco Nexus 9000 NX-OS Interfaces Configuration Guide 10.6(x), "Guidelines
  and Limitations for Port VLAN Mapping" (its port-channel example), VXLAN Configuration
  Guide 9.3(x) "Configuring Port VLAN Mapping" ("the ingress VLAN does not need to be
  configured on the switch; the translated VLAN must be"), Cisco's own pyATS test scripts.
  Not in any capture.
- Config is immediate: ``configure terminal`` ... ``end``, then ``copy running-config
  startup-config`` (the same guides' step lists). There is nothing to roll back: a failed
  line leaves the lines before it applied, ``abort.j2`` only leaves configuration mode, and
  the next reconcile pass reads back and repairs (the reconciler is level-triggered).
- Read back (``read.py``), each proven on captures:
  ``show version | json``: ``nxos_ver_str`` (9.3(4), suzieq) or ``sys_ver_str`` (7.3(1)D1(1)
  with a ``[build ...]`` suffix, napalm's mocked data), ``chassis_id`` the model; asked once
  per session. No syntax silonet writes differs between the captured releases, so ``prepare``
  prints the same lines for every ``Platform``.
  ``show vlan brief | json`` (what NAPALM, the cisco.nxos modules and suzieq ask):
  ``TABLE_vlanbriefxbrief.ROW_vlanbriefxbrief[]``, the ID read from ``vlanshowbr-vlanid-utf``
  (``vlanshowbr-vlanid`` may be encoded: 16777216 for VLAN 1 in the cisco.nxos fixture).
  ``show nve vni | json``: ``TABLE_nve_vni.ROW_nve_vni`` (one row arrives as an object: ansible
  PR 50811), ``type`` ``"L2 [<vlan>]"`` or ``"L3 [<vrf>]"`` (an L3 VNI, foreign as ``vrf
  <name>``: suzieq's ``L3 [evpn-vrf]``); an empty table prints nothing.
  ``show running-config interface`` as text (``| json`` is not offered for running-config:
  ansible/ansible#57484): nve1 members (``member vni A-B [associate-vrf]`` ranges: genieparser's
  capture), their peers, ``host-reachability``, ``source-interface`` (its loopback's primary
  address is ``Parsed.vtep_ip``), the ports' mapping lines and SVIs.
- Failure strings ``% Invalid command`` (``% Invalid command at '^' marker.`` in the issues
  above), ``% Incomplete command``, ``ERROR:``.
- Not verified: that ``no switchport vlan mapping <v> <t>`` and ``no peer-ip`` are silent when
  the line is absent (idempotent removal is assumed), the 32-character VLAN name limit
  (refused above it), and that a VLAN's ``vn-segment`` may be changed while it is an nve member.

Per-port scope (``scope="port"``). The VLAN ID on a port is only the *ingress* VLAN: each
port maps it to a switch-local *translated* VLAN T, and T carries the VNI. So two interface
groups may use VLAN 300 for different VNIs. T is a pure function of the VNI, so templates and
parser agree without remembering anything:

    T(vni) = XLATE_BASE + vni % XLATE_SPAN      (2000 + vni % 1968: VLANs 2000..3967)

3968..4094 stay free (NX-OS reserves them by default), 1..1999 are the operator's. VNIs
allocated from a contiguous pool never collide (1968 consecutive VNIs get distinct T); of two
desired VNIs with the same T, ``check`` refuses the bindings of the higher one. Real switches
do use VLANs in 2000..3967 (suzieq's vPC leaves route their underlay over ``interface
Vlan3960`` across the peer-link): no fixed range is free everywhere, so instead of moving it the
parser reports every foreign VLAN (``show vlan brief``) or SVI (``interface VlanN``) in the range
as a switch fault and refuses, binding by binding, each VNI that would translate onto it
(``read.Unholdable``, through ``DeviceFacts.refuse``): silonet never renames or re-segments
someone else's VLAN. Ownership: VLAN T named ``silonet-<network>``; an nve VNI on any other
VLAN, an L3 VNI, and an nve1 member the table does not list are foreign, and a port mapping
onto a foreign VLAN, or a foreign VLAN a managed trunk carries as it is (in its allowed list, or
any without one: suzieq's vPC peer-link carries every VLAN), is a foreign binding: mapping that
ingress VLAN would take the operator's traffic over. Inventory port names spell ``/`` as ``_``
(``Ethernet1_1`` is ``Ethernet1/1``), and ``terminal length 0`` is session set-up. ``check``
also refuses untagged VLAN 0, a VLAN name over 32 characters and two VLANs of one port on one
translated VLAN, binding by binding (each fails its attachment alone); ``prepare`` works out T
and what each operation's template prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import (
    Batch,
    Dialect,
    Prepared,
    Refusals,
    all_of,
    checks,
    flood_delta,
    names_within,
    tagged_only,
    untagged_refused,
    vlan_name_within,
)
from silonet.drivers.ssh.dialects.nxos.read import (
    SHOW_NVE,
    SHOW_RUN,
    SHOW_VLAN,
    VERSION,
    XLATE_BASE,
    XLATE_SPAN,
    parse,
    read_version,
    translated_vlan,
)
from silonet.model.inventory import Proposed
from silonet.plan.ops import Bind, EnsureLogicalSwitch, RemoveLogicalSwitch, SetFloodList, Unbind
from silonet.plan.state import GatewayState, LogicalSwitch

PAGER_OFF = "terminal length 0"
PROBE_PORT = "_"  # the port of the one binding a new VNI is asked about (``_unholdable``)


def _translation(p: Proposed) -> str | None:
    """Two VNIs on one translated VLAN, or one VNI reached from two VLANs of one port: a switch holds
    neither (NX-OS maps one ingress VLAN per translated VLAN on a port)."""
    t = translated_vlan(p.vni)
    for group, vlan, vni in p.held():
        if vni != p.vni and translated_vlan(vni) == t:
            return f"VNIs {vni} and {p.vni} would both translate to VLAN {t} on this switch"
        if vni == p.vni and group == p.group:
            return (f"VLANs {vlan} and {p.vlan} of interface group '{group}' would both map to translated VLAN {t} "
                    "on the same ports")
    return None


def _one_per_translated_vlan(state: GatewayState) -> Refusals:
    """Of two VNIs on one translated VLAN the lower keeps it: the bindings of the other are refused."""
    holder: dict[int, int] = {}
    refused: dict[int, str] = {}
    for vni in sorted(state.logical_switches):
        t = translated_vlan(vni)
        if (other := holder.setdefault(t, vni)) != vni:
            refused[vni] = (f"VNIs {other} and {vni} would both translate to VLAN {t} on this switch; VNI {other} "
                            "keeps it")
    return {key: refused[vni] for key, vni in state.bindings.items() if vni in refused}


def _one_per_port(state: GatewayState) -> Refusals:
    """Of two VLANs of one port on one translated VLAN (one VNI) the lower keeps it."""
    seen: dict[tuple[str, int], int] = {}
    out: Refusals = {}
    for (port, vlan), vni in sorted(state.bindings.items()):
        t = translated_vlan(vni)
        if (other := seen.setdefault((port, t), vlan)) != vlan:
            out[(port, vlan)] = (f"VLANs {other} and {vlan} of port {port} would both map to VLAN {t} (VNI {vni}); "
                                 "NX-OS maps one ingress VLAN per translated VLAN on a port")
    return out


# ---------------------------------------------------------------------------- batches
def _interface(port: str) -> str:
    return port.replace("_", "/")


def _unholdable(batch: Batch, vni: int, network: str) -> str | None:
    """Why the device's own configuration rules a new VNI out (a BGP EVPN nve1, someone else's
    VLAN on its translated VLAN), asked of the facts read with one binding of it. The plan leaves
    such bindings out; this stops the VNI itself from being written when none is left."""
    if batch.facts.refuse is None:
        return None
    probe = GatewayState({vni: LogicalSwitch(vni, network, frozenset())}, {(PROBE_PORT, 1): vni})
    return next(iter(batch.facts.refuse(probe).values()), None)


def prepare(batch: Batch) -> Prepared:
    """Per operation, its translated VLAN (``t``) and what its template prints:

    - Bind: ``enable`` (the port's first mapping), ``old`` (the translated VLAN a rebind leaves,
      and ``drop_old``: whether the trunk lets it go), ``unmap`` (ingress VLANs of the port that
      leave ``t``, dropped first: one ingress VLAN per translated VLAN on a port);
    - Unbind: ``drop``, whether the trunk lets ``t`` go (no desired mapping of the port uses it);
    - EnsureLogicalSwitch: ``leaving`` (VNIs that held ``t`` and go in this batch), ``new``;
    - RemoveLogicalSwitch: ``taken`` (a desired VNI took ``t`` over: the VLAN stays);
    - SetFloodList: ``gone`` and ``added`` (the delta against what was read).

    A new VNI the device's configuration rules out (``_unholdable``) fails the batch before a
    line exists. The same lines serve every release in the corpus (``batch.platform`` is not
    asked).
    """
    ops, actual, desired = batch.ops, batch.actual, batch.desired
    for op in ops:
        if isinstance(op, EnsureLogicalSwitch) and op.vni not in actual.logical_switches \
                and (why := _unholdable(batch, op.vni, op.network)):
            raise ValueError(f"VNI {op.vni}: {why}")
    first_bind: dict[str, int] = {}
    for i, op in enumerate(ops):
        if isinstance(op, Bind):
            first_bind.setdefault(op.port, i)
    mapped: dict[str, list[tuple[int, int]]] = {}  # port -> its (ingress VLAN, VNI) now, in order
    for (port, vlan), vni in sorted(actual.bindings.items()):
        mapped.setdefault(port, []).append((vlan, vni))
    uses = {(port, translated_vlan(vni)) for (port, _vlan), vni in desired.bindings.items()}
    taken = {translated_vlan(vni) for vni in desired.logical_switches}
    going: dict[int, list[int]] = {}  # translated VLAN -> VNIs on it that go
    for vni in sorted(actual.logical_switches):
        if vni not in desired.logical_switches:
            going.setdefault(translated_vlan(vni), []).append(vni)
    each: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        if isinstance(op, Bind):
            t = translated_vlan(op.vni)
            before = actual.bindings.get((op.port, op.vlan))
            old = None if before is None else translated_vlan(before)
            each.append({"t": t, "interface": _interface(op.port),
                         "enable": op.port not in mapped and first_bind[op.port] == i,
                         "old": old, "drop_old": old is not None and (op.port, old) not in uses,
                         "unmap": [vlan for vlan, vni in mapped.get(op.port, ()) if vlan != op.vlan
                                   and translated_vlan(vni) == t and desired.bindings.get((op.port, vlan)) != vni]})
        elif isinstance(op, Unbind):
            t = translated_vlan(actual.bindings[(op.port, op.vlan)])
            each.append({"t": t, "interface": _interface(op.port), "drop": (op.port, t) not in uses})
        elif isinstance(op, EnsureLogicalSwitch):
            t = translated_vlan(op.vni)
            each.append({"t": t, "new": op.vni not in actual.logical_switches,
                         "leaving": [other for other in going.get(t, ()) if other != op.vni]})
        elif isinstance(op, RemoveLogicalSwitch):
            t = translated_vlan(op.vni)
            each.append({"t": t, "taken": t in taken})
        elif isinstance(op, SetFloodList):
            old_flood = actual.logical_switches[op.vni].flood if op.vni in actual.logical_switches else frozenset()
            each.append(flood_delta(old_flood, op))
        else:
            each.append({})
    return Prepared({}, each)


DIALECT = Dialect(
    name="nxos",
    platform="Cisco NX-OS (Nexus 9000: vn-segment VLANs, static ingress replication, port VLAN mapping)",
    verified="captured output: NX-OS 9.3(4) (suzieq), 7.0(3)I7(4) (genieparser), version command 7.3(1)D1(1) "
             "(napalm), VLAN table (cisco.nxos); commands written from documentation",
    scope="port",
    style="shell",
    show=(SHOW_VLAN, SHOW_NVE, SHOW_RUN),
    setup=(PAGER_OFF,),
    parse=parse,
    failures=("% Invalid command", "% Incomplete command", "ERROR:"),
    folder=Path(__file__).parent,
    version_show=VERSION,
    version=read_version,
    prompt=r"^[A-Za-z0-9_.\-]+(\([^()\s]*\))?[>#] ?$",
    remote_macs=False,
    limits=all_of(tagged_only, vlan_name_within(32), _translation),
    check=checks(untagged_refused("nxos"), names_within(32), _one_per_translated_vlan, _one_per_port),
    prepare=prepare,
    # README "Fencing"
    unfenced="configure terminal applies each line at once: there is no transaction a check could abort",
    notes=f"per-port VLAN mapping onto translated VLAN {XLATE_BASE} + VNI % {XLATE_SPAN}; ownership is the "
          "translated VLAN's name silonet-<network>; flood-and-learn nve1 only (BGP EVPN refused); config is "
          "immediate",
)
