"""``cumulus``: NVIDIA Cumulus Linux 5.x through NVUE (``nv``) in its Linux shell, one SSH
exec per batch, staged and applied as one NVUE revision. The parser is proven on configurations
captured from real switches (tests/drivers/ssh/corpus/cumulus); the batches on documentation
only, never on a switch.

Relied on, per fact, with its source:

* ``nv set nve vxlan source address <ip>``; ``nv set bridge domain br_default vlan <V> vni <N>``;
  ``... vni <N> mac-learning <on|enabled>`` (static VXLAN without EVPN needs MAC learning);
  ``... vni <N> flooding head-end-replication <ip>`` once per remote VTEP (``nv unset`` the same
  path removes one): user guide, "Static VXLAN Tunnels" and "VXLAN Devices", and the NVUE
  command reference (Set and Unset Commands > Bridge).
* **Release-dependent syntax.** ``mac-learning on|off`` became ``enabled|disabled`` in Cumulus
  Linux 5.15: user guide 5.15, "New and Changed NVUE Commands", tab On/Off ("CL5.14.0 and
  Earlier" -> "CL5.15 and Later"; CumulusNetworks/docs content/cumulus-linux-515/Whats-New/
  New-and-Changed-NVUE-Commands.md). Real 5.15.0 exports (unifabric-io/nvair-cli, corpus
  nvair-515-*) write the new words (``state: enabled``). The user guide's own static VXLAN page
  still shows ``on`` in 5.15 and 5.16; the change table and the captures are followed.
  ``prepare`` picks the word by ``Batch.platform`` (the newest with no platform); the parser reads
  both, at the VNI and at ``nve vxlan mac-learning``.
* **The release** is read once per session from ``nv show system -o json``: ``product-release``
  where the release prints it, else ``build`` ("Cumulus Linux 5.4.0": the object GET
  /nvue_v1/system returns, NVUE API guide 5.6, which the guide says ``nv show`` is equivalent to);
  the ``nv show system`` table (NVUE reference, "System") is read too.
* ``nv set interface <port> bridge domain br_default vlan <V>`` (trunk member), ``... untagged
  <V>`` (native VLAN), ``nv unset`` of each; ``nv config apply -y`` applies the staged revision;
  ``nv config save`` writes the startup configuration; ``nv config detach`` throws a pending
  revision away: NVUE command reference and the OpenStack networking-generic-switch
  ``CumulusNVUE`` device (which drives the same commands through netmiko).
* **Read back**: ``nv config show -o json`` prints the applied configuration as
  ``[{"header": {...}}, {"set": {<tree>}}]``; ``nv config show -o yaml`` and
  ``/etc/nvue.d/startup.yaml`` print the same list as YAML, which is what the public captures are
  (NVIDIA user guide 5.12 "EVPN Configuration Examples", startup.yaml tabs of a live Air topology;
  nvair-cli's ``nv config show -o yaml`` exports of Cumulus VX 5.15.0), so the parser reads JSON
  and YAML (``on``/``off`` kept as words, aliases refused). The tree mirrors the ``nv set`` paths;
  its keys compress lists and ranges with the prefix written once (``swp1-4,12-13``, ``swp2,6``,
  ``vlan10,20,30,40``: the 5.15.0 exports) and one port may appear under several keys. ``nv show
  interface -o json`` is an object keyed by interface name (NVUE API guide, GET /nvue_v1/interface).
* **VTEP**: an MLAG pair encapsulates with ``nve vxlan mlag shared-address`` (user guide, "VXLAN
  Active-active Mode"; the EVPN examples render it as ``clagd-vxlan-anycast-ip``), a single switch
  with ``nve vxlan source address``; that address is ``Parsed.vtep_ip``.

Chosen where the documentation is silent or the platform cannot follow silonet:

* **Ownership and names.** NVUE has no free-text field on a bridge VLAN or VNI (only
  interfaces have ``description``), so nothing in the configuration can say "silonet's" or
  carry the network name. silonet keeps a ledger of the VNIs it configured and their network
  names, ``$HOME/.silonet/vnis.json`` on the switch (JSON ``{"<vni>": "<network>"}``),
  rewritten from the desired state by every batch: before ``nv config apply`` with the union
  of the old and new VNIs (so a VNI applied is never missing from it) and after the apply
  with the new ones only. A mapping is silonet's when its VNI is in the ledger; every other
  VLAN mapping, its VLAN and its member ports are foreign (``foreign_vnis`` /
  ``foreign_bindings``); so are the VNIs of VRFs (EVPN L3 VNIs), of other bridge domains and
  ``vni auto`` (the VLAN plus ``vlan-vni-offset``). A lost ledger makes silonet's own mappings
  look foreign (silonet then refuses to touch them: the safe side). As VLAN IDs are
  bridge-wide, a foreign VLAN blocks its VLAN ID on every gateway port.
* **Coexistence**: foreign configuration is reported, never changed. ``nv set nve vxlan source
  address`` goes with silonet's first mapping only on a switch with no VNI at all (one with VNIs
  has its source, shared with them); a different address is a switch fault (``interpret``). A
  VTEP-wide flood list (``nve vxlan flooding head-end-replication``) is reported as
  ``foreign_flood`` and, once silonet has VNIs, as a fault: silonet's VNIs flood there too. A
  gateway port that is someone else's access port is a fault. MAC learning off on silonet's VNI
  is a fault.
* **Transactional**: a batch starts with ``nv config detach`` (a pending revision left by a
  failed batch is thrown away), stages ``nv set``/``nv unset`` joined with `` && `` (a
  refused command stops the batch before anything is applied) and ends with ``nv config
  apply -y`` and ``nv config save``: all of it or nothing.
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

from pathlib import Path

from silonet.drivers.ssh.dialect import Batch, Dialect, Prepared, checks
from silonet.drivers.ssh.dialects.cumulus.read import (
    BRIDGE,
    CONFIG,
    INTERFACES,
    LEDGER,
    LEDGER_FILE,
    VERSION,
    config_tree,
    expand,
    learning,
    parse,
    version,
)
from silonet.drivers.ssh.switchscope import Plan, carried_untagged, one_to_one, reserved_vlans
from silonet.plan.ops import Bind, SetFloodList, Unbind

__all__ = ["BRIDGE", "CONFIG", "DIALECT", "INTERFACES", "LEDGER", "LEDGER_FILE", "VERSION", "config_tree", "expand",
           "learning", "members", "parse", "prepare", "version"]
# ``mac-learning on|off`` became ``enabled|disabled`` in Cumulus Linux 5.15 (user guide 5.15, "New and
# Changed NVUE Commands", tab On/Off: "CL5.14.0 and Earlier" / "CL5.15 and Later").
ENABLED_SINCE = (5, 15)


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


def prepare(batch: Batch) -> Prepared:
    """Per operation: its VLAN-level steps (``w``), its port's memberships (``members``), a flood
    list's VLAN and delta (``vlan``, ``gone``, ``added``); for the batch: whether a revision is
    staged and applied (``apply``), whether the VXLAN source address goes with it (``source``),
    the word that turns MAC learning on in the release the switch runs (``mac_learning``), and
    silonet's ledger while the revision applies and after (None: unchanged)."""
    ops, actual, desired = batch.ops, batch.actual, batch.desired
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
    newer = batch.platform is None or batch.platform.at_least(*ENABLED_SINCE)
    return Prepared({"apply": p.changes or any(isinstance(op, SetFloodList) for op in ops),
                     # the VTEP's source is set only on a switch with no VXLAN yet: one that has
                     # VNIs (silonet's or others') has its source already, shared with them
                     "source": p.adds and not actual.logical_switches and not batch.facts.foreign_vnis,
                     "mac_learning": "enabled" if newer else "on",
                     "ledger_during": during if during != before else None,
                     "ledger_after": after if after != during else None}, each)


DIALECT = Dialect(
    name="cumulus",
    platform="NVIDIA Cumulus Linux 5.x (NVUE)",
    verified="captured output: Cumulus Linux 5.12, 5.15.0 (NVIDIA user guide startup.yaml, nvair-cli "
             "exports); release reader: 5.4.0, 5.5.0 (NVIDIA docs)",
    scope="switch",
    style="exec",
    show=(CONFIG, INTERFACES, LEDGER),
    parse=parse,
    version_show=VERSION,
    version=version,
    failures=("Error:", "Invalid config", "Config invalid at", "Failure during apply", "Unable to restart services",
              "command not found"),
    folder=Path(__file__).parent,
    join=" && ",
    remote_macs=False,
    check=checks(reserved_vlans, one_to_one("cumulus"), carried_untagged),
    prepare=prepare,
    # README "Fencing"
    unfenced=("an NVUE revision applies whole, but nothing in it compares a value and aborts; a shell test "
              "before nv config apply could change under another writer's apply"),
    notes="one NVUE revision per batch (detach, nv set/unset, nv config apply -y); ownership and network names "
          "in the ledger $HOME/.silonet/vnis.json; VLAN 0 = untagged in the VNI's VLAN",
)
