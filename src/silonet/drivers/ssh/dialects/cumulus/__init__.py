"""``cumulus``: NVIDIA Cumulus Linux 5.x through NVUE (``nv``) in its Linux shell, one SSH
exec per batch, staged and applied as one NVUE revision.

Verified against documentation only, never against a switch:

* ``nv set nve vxlan source address <ip>``; ``nv set bridge domain br_default vlan <V> vni <N>``;
  ``nv set bridge domain br_default vlan <V> vni <N> mac-learning on`` (static VXLAN without
  EVPN needs MAC learning, per VNI or globally); ``nv set bridge domain br_default vlan <V> vni
  <N> flooding head-end-replication <ip>`` once per remote VTEP (``nv unset`` the same path
  removes one): Cumulus Linux user guide, "Static VXLAN Tunnels" and "VXLAN Devices" (NVUE
  command tables), and the NVUE command reference (Set and Unset Commands > Bridge).
* ``nv set interface <port> bridge domain br_default vlan <V>`` (trunk member),
  ``... untagged <V>`` (native VLAN), ``nv unset`` of each; ``nv config apply -y``
  (``--assume-yes``) applies the staged revision; ``nv config save`` writes the startup
  configuration; ``nv config detach`` throws a pending revision away: NVUE command reference
  and the OpenStack networking-generic-switch ``CumulusNVUE`` device (which drives the same
  commands through netmiko).
* Read back: ``nv config show -o json`` prints the applied configuration as
  ``[{"header": {...}}, {"set": {<tree>}}]`` whose tree mirrors the ``nv set`` paths
  (``bridge.domain.br_default.vlan.<V>.vni.<N>.flooding.head-end-replication.<ip>``,
  ``interface.<port>.bridge.domain.br_default.{vlan,untagged,access}``,
  ``nve.vxlan.source.address``); ``nv show interface -o json`` is an object keyed by interface
  name. ``nv show bridge domain br_default vlan-vni-map`` and ``nv show bridge domain br_default
  vlan <V> vni <N>`` (documented table outputs) show the same mapping and flood list; the
  JSON forms are read because the tables do not carry port membership. The JSON shapes are
  taken from NVUE's documented REST model and from public tools that parse them, not from a
  captured switch.

Chosen where the documentation is silent or the platform cannot follow silonet:

* **Ownership and names.** NVUE has no free-text field on a bridge VLAN or VNI (only
  interfaces have ``description``), so nothing in the configuration can say "silonet's" or
  carry the network name. silonet keeps a ledger of the VNIs it configured and their network
  names, ``$HOME/.silonet/vnis.json`` on the switch (JSON ``{"<vni>": "<network>"}``),
  rewritten from the desired state by every batch: before ``nv config apply`` with the union
  of the old and new VNIs (so a VNI applied is never missing from it) and after the apply
  with the new ones only. A mapping is silonet's when its VNI is in the ledger; every other
  VLAN mapping, its VLAN and its member ports are foreign (``foreign_vnis`` /
  ``foreign_bindings``); EVPN L3 VNIs of VRFs are foreign VNIs. A lost ledger makes
  silonet's own mappings look foreign (silonet then refuses to touch them: the safe side).
  As VLAN IDs are bridge-wide, a foreign VLAN blocks its VLAN ID on every gateway port.
* **Transactional**: a batch starts with ``nv config detach`` (a pending revision left by a
  failed batch is thrown away), stages ``nv set``/``nv unset`` joined with `` && `` (a
  refused command stops the batch before anything is applied) and ends with ``nv config
  apply -y`` and ``nv config save``: all of it or nothing.
* **VTEP**: ``nv set nve vxlan source address`` is sent with the first silonet mapping only
  (it is shared with anything else on the switch); a different configured address is
  reported as a switch fault.
* **Ports**: a trunk binding adds the VLAN to the port's explicit VLAN list; when the last
  binding of a port goes, the port leaves ``br_default`` (an NVUE bridge port without a VLAN
  list trunks *every* bridge VLAN). A gateway port that trunks every VLAN is reported as a
  fault and blocks its VLANs.
* **VLAN 0** (untagged): ``untagged <V>`` plus ``vlan <V>`` on the port, ``<V>`` being the
  VLAN that carries the VNI tagged on this switch; a binding of a VNI attached only untagged
  is refused (``switchscope.carried_untagged``). ``access`` ports in a silonet VLAN are
  reported as foreign. A binding on VLAN 1 (the bridge's default untagged VLAN), or one that
  would break VLAN<->VNI one to one, is refused too (``check``: it fails its attachment alone).
* Local MACs are not read (remote MACs are not supported: ``remote_macs=False``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import Dialect, Parsed, Prepared, Target, checks
from silonet.drivers.ssh.switchscope import Plan, carried_untagged, one_to_one, reserved_vlans, settle_read
from silonet.plan.ops import Bind, Operation, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

CONFIG = "nv config show -o json"
INTERFACES = "nv show interface -o json"
LEDGER_FILE = '"$HOME/.silonet/vnis.json"'
LEDGER = f"cat {LEDGER_FILE} 2>/dev/null || echo '{{}}'"
BRIDGE = "br_default"
RANGE_RE = re.compile(r"^(\D*)(\d+)-(\d+)$")


def expand(key: str) -> Iterator[str]:
    """NVUE keys may be lists and ranges (``10,20-22``, ``swp1-3``): one name at a time."""
    for part in str(key).split(","):
        part = part.strip()
        m = RANGE_RE.match(part)
        if m and int(m[2]) <= int(m[3]):
            yield from (f"{m[1]}{i}" for i in range(int(m[2]), int(m[3]) + 1))
        elif part:
            yield part


def _vlans(obj: Any) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for key, value in (obj or {}).items() if isinstance(obj, dict) else ():
        for name in expand(key):
            if name.isdigit():
                out[int(name)] = value
    return out


def config_tree(text: str) -> dict:
    """``nv config show -o json`` -> the ``set`` tree (also accepts the bare tree)."""
    data = json.loads(text) if text.strip() else {}
    if isinstance(data, list):
        return next((item["set"] for item in data if isinstance(item, dict) and "set" in item), {}) or {}
    if isinstance(data, dict):
        return data.get("set", data) or {}
    raise ValueError("nv config show did not print JSON")


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    tree = config_tree(outputs[CONFIG])
    ledger_raw = json.loads(outputs.get(LEDGER, "").strip() or "{}")
    ledger = {int(k): str(v) for k, v in ledger_raw.items() if str(k).isdigit()}
    ifaces_raw = json.loads(outputs.get(INTERFACES, "").strip() or "{}")
    ports = frozenset(ifaces_raw) if isinstance(ifaces_raw, dict) else frozenset()
    faults: dict[str, list[str]] = {}

    bridge = tree.get("bridge", {}).get("domain", {}).get(BRIDGE, {}) or {}
    vlan_vni: dict[int, int] = {}  # silonet's VLANs
    names: dict[int, str] = {}
    flood: dict[int, frozenset[str]] = {}
    foreign_vnis: dict[int, str] = {}
    foreign_vlan: dict[int, str] = {}
    for vid, vlan in sorted(_vlans(bridge.get("vlan")).items()):
        vnis = sorted(int(n) for k in ((vlan or {}).get("vni") or {}) for n in expand(k) if n.isdigit())
        label = f"{BRIDGE} vlan {vid}" + (f" vni {vnis[0]}" if vnis else "")
        if len(vnis) == 1 and vnis[0] in ledger:
            vni = vnis[0]
            vlan_vni[vid], names[vni] = vni, ledger[vni]
            spec = (vlan["vni"].get(str(vni)) or {}).get("flooding", {}) or {}
            her = spec.get("head-end-replication", {}) or {}
            flood[vni] = frozenset(ip for ip in her if ip != "evpn")
        else:
            foreign_vlan[vid] = label
            for vni in vnis:
                foreign_vnis[vni] = label
    for name, vrf in sorted((tree.get("vrf") or {}).items()):
        for key in ((vrf or {}).get("evpn", {}) or {}).get("vni", {}) or {}:
            if str(key).isdigit():
                foreign_vnis[int(key)] = f"vrf {name}"

    bindings: dict[tuple[str, int], int] = {}
    untagged: dict[str, int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    for key, iface in sorted((tree.get("interface") or {}).items()):
        member = (((iface or {}).get("bridge") or {}).get("domain") or {}).get(BRIDGE)
        if member is None:
            continue
        member = member or {}
        for port in expand(key):
            listed = member.get("vlan")
            if listed is not None and not isinstance(listed, dict):
                listed = {str(listed): {}}
            if member.get("access") is not None:
                vid = int(member["access"])
                foreign_bindings[(port, 0)] = f"access port in {foreign_vlan.get(vid, f'{BRIDGE} vlan {vid}')}"
                if vid in vlan_vni:
                    faults.setdefault(f"port {port}", []).append(f"access port in silonet's VLAN {vid}")
                continue
            if listed is None or "all" in {n for k in listed for n in expand(k)}:
                if port in gw.ports:
                    faults.setdefault(f"port {port}", []).append(f"trunks every {BRIDGE} VLAN (no VLAN list)")
                    for vid in sorted(set(vlan_vni) | set(foreign_vlan)):
                        foreign_bindings[(port, vid)] = f"{BRIDGE} vlan all"
                continue
            native = member.get("untagged")
            native = int(native) if str(native).isdigit() else None
            for vid in sorted(_vlans(listed)):
                if vid in vlan_vni:
                    if vid == native:
                        untagged[port] = vid
                    else:
                        bindings[(port, vid)] = vlan_vni[vid]
                else:
                    label = foreign_vlan.get(vid, f"{BRIDGE} vlan {vid}")
                    foreign_bindings[(port, 0 if vid == native else vid)] = label
    settle_read(gw, ports, untagged, vlan_vni, foreign_vlan, bindings, foreign_bindings, faults,
                lambda vid: f"{BRIDGE} vlan {vid}")

    source = (((tree.get("nve") or {}).get("vxlan") or {}).get("source") or {}).get("address")
    if source and source != gw.vtep_ip:
        faults.setdefault("switch", []).append(f"VXLAN source address is {source}, not the gateway's VTEP IP "
                                               f"{gw.vtep_ip}")

    state = GatewayState({vni: LogicalSwitch(vni, names[vni], flood[vni]) for vni in sorted(names)},
                         dict(sorted(bindings.items())))
    facts = DeviceFacts(ports or None, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        frozenset())
    return Parsed(state, facts, {}, faults)


# ---------------------------------------------------------------------------- batches
def members(p: Plan, op: Bind | Unbind) -> list[tuple[str, int | None]]:
    """The port's NVUE membership changes ``op`` makes, in order: ``("join", V)`` / ``("leave", V)``
    (the port's VLAN list), ``("native", V)`` / ``("untag", None)`` (its untagged VLAN). A port
    that stays in the VLAN in the other mode is moved by its Bind; its Unbind leaves it be."""
    port = op.port
    if isinstance(op, Bind) and op.vlan:
        if (port, op.vlan) in p.actual.bindings:
            return []
        if p.untagged_before(port) == op.vlan and p.untagged_after(port) is None:
            return [("untag", None)]
        return [("join", op.vlan)]
    if isinstance(op, Bind):
        new, old = p.vlan_after[op.vni], p.untagged_before(port)
        return [] if old == new else [*([("leave", old)] if old else []), ("native", new), ("join", new)]
    if op.vlan:
        return [("leave", op.vlan)] if p.untagged_after(port) != op.vlan else []
    old = p.untagged_before(port)
    return [("untag", None), ("leave", old)] if old is not None and (port, old) not in p.desired.bindings else []


def prepare(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Prepared:
    """Per operation: its VLAN-level steps (``w``), its port's memberships (``members``), a flood
    list's VLAN and delta (``vlan``, ``gone``, ``added``); for the batch: whether a revision is
    staged and applied (``apply``), whether the VXLAN source address goes with it (``source``),
    and silonet's ledger while the revision applies and after (None: unchanged)."""
    p = Plan(ops, actual, desired)
    each: list[dict] = []
    for i, op in enumerate(ops):
        ctx: dict = {"w": p.work(i)}
        if isinstance(op, Bind | Unbind):
            ctx["members"] = members(p, op)
        elif isinstance(op, SetFloodList):
            vlan = p.vlan_after.get(op.vni) or None
            same = vlan is not None and p.vlan_before.get(op.vni) == vlan and op.vni in actual.logical_switches
            old = actual.logical_switches[op.vni].flood if same else frozenset()
            ctx.update(vlan=vlan, gone=sorted(old - op.flood) if vlan else [],
                       added=sorted(op.flood - old) if vlan else [])
        each.append(ctx)
    before, after = p.names(actual), p.names(desired)
    during = {**before, **after}
    return Prepared({"apply": p.changes or any(isinstance(op, SetFloodList) for op in ops),
                     "source": p.adds and not actual.logical_switches,
                     "ledger_during": during if during != before else None,
                     "ledger_after": after if after != during else None}, each)


DIALECT = Dialect(
    name="cumulus",
    platform="NVIDIA Cumulus Linux 5.x (NVUE)",
    verified="documentation",
    scope="switch",
    style="exec",
    show=(CONFIG, INTERFACES, LEDGER),
    parse=parse,
    failures=("Error:", "Invalid config", "Config invalid at", "Failure during apply", "Unable to restart services",
              "command not found"),
    folder=Path(__file__).parent,
    join=" && ",
    remote_macs=False,
    check=checks(reserved_vlans, one_to_one("cumulus"), carried_untagged),
    prepare=prepare,
    notes="one NVUE revision per batch (detach, nv set/unset, nv config apply -y); ownership and network names "
          "in the ledger $HOME/.silonet/vnis.json; VLAN 0 = untagged in the VNI's VLAN",
)
