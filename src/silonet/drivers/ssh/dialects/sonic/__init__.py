"""``sonic``: community SONiC through its Linux shell (the ``config``/``show`` click CLI of
sonic-utilities and ``sonic-db-cli``), one SSH exec per batch.

Verified against documentation and source only, never against a switch:

* ``config vxlan add <vtep> <src_ip>`` (refused once any VTEP exists: "VTEP already
  configured"), ``config vxlan map add|del <vtep> <vlan_id> <vni>`` (the VLAN must exist; one
  VNI per VLAN and one VLAN per VNI: "Vlan Id already mapped" / "VNI Id already mapped"; the
  entry is ``VXLAN_TUNNEL_MAP|<vtep>|map_<vni>_Vlan<vid>``): sonic-net/sonic-utilities
  ``config/vxlan.py``.
* ``config vlan add|del <vid>`` (VLAN 2..4094, VLAN 1 is refused as the default VLAN, a VLAN
  with members or a VXLAN map cannot be deleted), ``config vlan member add [-u] <vid> <port>``
  / ``config vlan member del <vid> <port>``: sonic-utilities ``config/vlan.py``; errors go
  through click's ``ctx.fail`` ("Error: ..." on stderr, exit status 2).
* CONFIG_DB shapes (``VLAN|Vlan<vid>`` with ``vlanid`` and ``description`` (1..255 chars),
  ``VLAN_MEMBER|Vlan<vid>|<port>`` with ``tagging_mode``, ``VXLAN_TUNNEL|<vtep>`` with
  ``src_ip``, ``VXLAN_TUNNEL_MAP|<vtep>|map_<vni>_Vlan<vid>`` with ``vlan`` and ``vni``):
  sonic-buildimage ``sonic-yang-models/yang-models/sonic-vlan.yang`` and the SONiC
  Configuration wiki; ``sonic-cfggen -d --print-data`` prints the whole CONFIG_DB as that
  JSON (``show runningconfiguration all`` and ``config save -y`` run exactly it).
* ``show vxlan vlanvnimap`` / ``show vxlan tunnel`` read the same two tables (sonic-utilities
  ``show/vxlan.py``); this dialect reads the tables themselves instead of their tabulated
  form. ``show vxlan remotevni all`` prints APPL_DB ``VXLAN_REMOTE_VNI_TABLE`` as a grid
  (``| Vlan100 | 198.18.0.2 | 500100 |`` then ``Total count : N``), as documented in
  ``show/vxlan.py`` and in SONiC test helpers that parse it.
* ``config save -y``: writes CONFIG_DB to ``/etc/sonic/config_db.json``.

Chosen where the documentation is silent or the platform cannot follow silonet:

* **No static flood list.** Mainline SONiC builds a VNI's remote-VTEP list from EVPN type-3
  (IMET) routes (``VXLAN_REMOTE_VNI_TABLE``, written by fdbsyncd); there is no CLI or
  CONFIG_DB table for a static list (a data-plane VXLAN design with configured remote VTEPs
  is only a proposal: sonic-net/SONiC PR 1764). ``set_flood_list.j2`` renders nothing; the
  parser reports as a VNI's flood list the remote VTEPs EVPN gave it (``show vxlan remotevni
  all``), so a gateway whose peers do not speak EVPN shows the difference as drift.
* **Ownership**: a VLAN is silonet's when its CONFIG_DB ``description`` is
  ``silonet:<network>`` (set with ``sonic-db-cli CONFIG_DB HSET``: mainline ``config vlan``
  has no description command; the field is in the VLAN YANG model). The VXLAN map name
  ``map_<vni>_Vlan<vid>`` is made by the CLI and marks nothing. Every member of a silonet VLAN
  is silonet's binding; every other VLAN, its members and its map are foreign
  (``DeviceFacts.foreign_bindings`` / ``foreign_vnis``), VRF (L3) VNIs are foreign VNIs too.
  As VLAN IDs are switch-wide, a foreign VLAN blocks that VLAN ID on every gateway port.
* **VTEP**: SONiC allows one VTEP; the batch uses the existing one whatever its name and
  creates ``silonet`` with the gateway's VTEP IP only when there is none. A VTEP whose source
  IP is not the gateway's is reported as a switch fault.
* **VLAN 0** (untagged): the port becomes the untagged member (``-u``) of the VLAN that
  carries the VNI tagged on this switch; a binding of a VNI attached only untagged is refused
  (``switchscope.carried_untagged``). Bindings are tagged members otherwise. A binding on VLAN 1,
  or one that would break VLAN<->VNI one to one, is refused too (``check``: it fails its
  attachment alone).
* **Not transactional**: SONiC applies each command at once. The batch is one shell command
  joined with `` && `` (the first failure stops the rest) and every step is guarded by a
  CONFIG_DB existence test (``has KEY || config ...``), so a batch cut short is completed by
  the next pass instead of failing on "already exists". ``config save -y`` ends a batch that
  changed anything. ``config`` needs root: the SSH user needs password-less ``sudo``.
* Local MACs are not read (remote MACs are not supported: ``remote_macs=False``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from silonet.drivers.ssh.dialect import Dialect, Parsed, Prepared, Target, checks
from silonet.drivers.ssh.switchscope import Plan, carried_untagged, one_to_one, reserved_vlans, settle_read
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

CONFIG = "sonic-cfggen -d --print-data"
REMOTE_VNI = "show vxlan remotevni all"
MARK = "silonet:"
VLAN_RE = re.compile(r"^Vlan(\d+)$")


def _vid(name: str) -> int | None:
    m = VLAN_RE.match(name)
    return int(m[1]) if m else None


def remote_vnis(text: str) -> dict[int, set[str]]:
    """``show vxlan remotevni all`` (a tabulate grid) -> VNI -> remote VTEP IPs."""
    out: dict[int, set[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        if len(cells) != 3 or not cells[2].isdigit():
            continue  # header, rule or anything else
        out.setdefault(int(cells[2]), set()).add(cells[1])
    return out


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    text = outputs[CONFIG].strip()
    db = json.loads(text) if text else {}
    if not isinstance(db, dict):
        raise ValueError("sonic-cfggen did not print a JSON object")
    vlans: dict[str, dict] = db.get("VLAN", {})
    faults: dict[str, list[str]] = {}
    ports = frozenset(db.get("PORT", {})) | frozenset(db.get("PORTCHANNEL", {}))

    l2: dict[int, tuple[int, str]] = {}  # VLAN -> (VNI, map name)
    foreign_vnis: dict[int, str] = {}
    for key, entry in sorted(db.get("VXLAN_TUNNEL_MAP", {}).items()):
        mapname = key.split("|", 1)[-1]
        vid = _vid(str(entry.get("vlan", "")))
        if vid is not None and str(entry.get("vni", "")).isdigit():
            l2[vid] = (int(entry["vni"]), mapname)
    for name, vrf in sorted(db.get("VRF", {}).items()):
        if str(vrf.get("vni", "0")).isdigit() and int(vrf.get("vni", "0")):
            foreign_vnis[int(vrf["vni"])] = f"VRF {name}"

    mine: dict[int, str] = {}  # VLAN -> network, for silonet's VLANs
    for name, entry in vlans.items():
        vid = _vid(name)
        desc = str(entry.get("description", ""))
        if vid is not None and desc.startswith(MARK):
            mine[vid] = desc[len(MARK):]
    vlan_vni: dict[int, int] = {}
    names: dict[int, str] = {}
    for vid, network in sorted(mine.items()):
        if vid in l2:
            vlan_vni[vid] = l2[vid][0]
            names[l2[vid][0]] = network
        else:
            faults.setdefault("switch", []).append(f"Vlan{vid} is silonet's but has no VXLAN map (a batch cut short?)")
    foreign_vlan: dict[int, str] = {}
    for name in vlans:
        vid = _vid(name)
        if vid is not None and vid not in mine:
            foreign_vlan[vid] = l2[vid][1] if vid in l2 else name
    for vid, (vni, mapname) in sorted(l2.items()):
        if vid not in vlan_vni:
            foreign_vnis[vni] = mapname

    bindings: dict[tuple[str, int], int] = {}
    untagged: dict[str, int] = {}
    foreign_bindings: dict[tuple[str, int], str] = {}
    for key, entry in sorted(db.get("VLAN_MEMBER", {}).items()):
        vname, _, port = key.partition("|")
        vid = _vid(vname)
        if vid is None or not port:
            continue
        tagged = entry.get("tagging_mode", "tagged") != "untagged"
        if vid in vlan_vni:
            if tagged:
                bindings[(port, vid)] = vlan_vni[vid]
            else:
                untagged[port] = vid
        elif vid not in mine:
            foreign_bindings[(port, vid if tagged else 0)] = foreign_vlan.get(vid, vname)
    settle_read(gw, ports, untagged, vlan_vni, foreign_vlan, bindings, foreign_bindings, faults,
                lambda vid: f"Vlan{vid}")

    for name, tunnel in sorted(db.get("VXLAN_TUNNEL", {}).items()):
        src = tunnel.get("src_ip")
        if src and src != gw.vtep_ip and "dst_ip" not in tunnel:
            faults.setdefault("switch", []).append(
                f"VTEP {name} has source IP {src}, not the gateway's VTEP IP {gw.vtep_ip}")

    evpn = remote_vnis(outputs.get(REMOTE_VNI, ""))
    state = GatewayState(
        {vni: LogicalSwitch(vni, names[vni], frozenset(evpn.get(vni, ()))) for vni in sorted(names)},
        dict(sorted(bindings.items())))
    facts = DeviceFacts(ports or None, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        frozenset())
    return Parsed(state, facts, {}, faults)


# ---------------------------------------------------------------------------- batches
def members(p: Plan, op: Bind | Unbind) -> list[tuple[str, int]]:
    """The port's VLAN memberships ``op`` changes, in order: ``("del", V)``, ``("add", V)``
    (tagged) or ``("untagged", V)``. A port that stays in the VLAN in the other mode is moved by
    its Bind; its Unbind leaves it be."""
    port, actual = op.port, p.actual
    if isinstance(op, Bind) and op.vlan:
        if (port, op.vlan) in actual.bindings:
            return []
        return [*([("del", op.vlan)] if p.untagged_before(port) == op.vlan else []), ("add", op.vlan)]
    if isinstance(op, Bind):
        new, old = p.vlan_after[op.vni], p.untagged_before(port)
        if old == new:
            return []
        return [*([("del", old)] if old else []), *([("del", new)] if (port, new) in actual.bindings else []),
                ("untagged", new)]
    if op.vlan:
        return [("del", op.vlan)] if p.untagged_after(port) != op.vlan else []
    old = p.untagged_before(port)
    return [("del", old)] if old is not None and (port, old) not in p.desired.bindings else []


def prepare(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Prepared:
    """Per operation: its VLAN-level steps (``w``), its port's memberships (``members``), the VLAN
    whose description a rename rewrites (``rename``); for the batch: whether it touches the switch,
    maps and adds a mapping (the ``$vtep`` lookup, the VTEP made when there is none)."""
    p = Plan(ops, actual, desired)
    each: list[dict] = []
    for i, op in enumerate(ops):
        w = p.work(i)
        ctx: dict = {"w": w}
        if isinstance(op, Bind | Unbind):
            ctx["members"] = members(p, op)
        elif isinstance(op, EnsureLogicalSwitch):
            ctx["rename"] = p.vlan_after[op.vni] if op.vni in p.renames and op.vni in p.vlan_after and not w.map \
                else None
        each.append(ctx)
    return Prepared({"touches": p.touches, "maps": p.maps, "adds": p.adds}, each)


DIALECT = Dialect(
    name="sonic",
    platform="SONiC (community; sonic-utilities config/show CLI)",
    verified="documentation",
    scope="switch",
    style="exec",
    show=(CONFIG, REMOTE_VNI),
    parse=parse,
    failures=("Error: ", "Traceback (most recent call last)", "Root privileges are required", "command not found"),
    folder=Path(__file__).parent,
    join=" && ",
    remote_macs=False,
    flood_lists=False,
    check=checks(reserved_vlans, one_to_one("sonic"), carried_untagged),
    prepare=prepare,
    notes="no static flood list (EVPN builds it); ownership = VLAN description 'silonet:<network>'; "
          "VLAN 0 = untagged member of the VNI's VLAN; needs password-less sudo",
)
