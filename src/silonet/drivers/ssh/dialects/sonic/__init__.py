"""``sonic``: community SONiC through its Linux shell (the ``config``/``show`` click CLI of
sonic-utilities and ``sonic-db-cli``), one SSH exec per batch.

Proven on captured output (``tests/drivers/ssh/corpus/sonic``, each case naming repository, path
and commit): CONFIG_DB of sonic-utilities' mock tables (``tests/mock_tables/config_db.json``,
``tests/vnet_input/config_db.json``; sonic-utilities.msft ``tests/dump_input/vxlan``), the
``show vxlan remotevni all`` grid sonic-utilities' own test expects (``tests/vxlan_test.py``),
and ``show version`` as a Mellanox SN2700 printed it (sonic-utilities ``doc/Command-Reference.md``,
a 2019 HEAD build) and a 20201231.39 DUT (sonic-mgmt ``docs/testbed/sai_quality``). The mock
tables are curated by the SONiC project for its CLI tests, not dumped from one switch. Never
run against a switch by silonet.

What was relied on, per fact:

* ``config vxlan add <vtep> <src_ip>`` (refused once a VTEP exists: "VTEP already configured"),
  ``config vxlan evpn_nvo add <nvo> <vtep>`` (one NVO: "EVPN NVO already configured"; writes
  ``VXLAN_EVPN_NVO|<nvo>`` ``source_vtep``), ``config vxlan map add|del <vtep> <vlan_id> <vni>``
  (the VLAN must exist; one VNI per VLAN and one VLAN per VNI: "Vlan Id already mapped" / "VNI
  Id already mapped"; the entry is ``VXLAN_TUNNEL_MAP|<vtep>|map_<vni>_Vlan<vid>``); there is
  no command for a static remote VTEP: sonic-utilities ``config/vxlan.py``. The order a real
  session uses (``config vxlan add``, ``evpn_nvo add``, then maps): sonic-utilities
  ``tests/vxlan_test.py`` (``test_config_vxlan_add``), NVIDIA's sonic-mgmt ``ngts``
  ``SonicVxlanCli.configure_vxlan`` and the session in sonic-buildimage issue 11902; remote VNIs
  that reach orchagent before the NVO are lost (sonic-buildimage issue 14949), so the batch makes
  the NVO before any map. ``config vxlan evpn_nvo add`` died in a Traceback until sonic-utilities
  PR 1511 (March 2021): on 202012 the batch writes the NVO entry with ``sonic-db-cli`` instead.
* ``config vlan add|del <vid>`` (VLAN 2..4094, VLAN 1 is refused as the default VLAN, a VLAN
  with members or a VXLAN map cannot be deleted), ``config vlan member add [-u] <vid> <port>``
  / ``config vlan member del <vid> <port>``: sonic-utilities ``config/vlan.py``; errors go
  through click's ``ctx.fail`` ("Error: ..." on stderr, exit status 2).
* CONFIG_DB shapes (``VLAN|Vlan<vid>`` with ``vlanid`` and ``description``, ``VLAN_MEMBER|
  Vlan<vid>|<port>`` with ``tagging_mode``, ``VXLAN_TUNNEL|<vtep>`` with ``src_ip`` (a
  ``dst_ip`` makes it a point-to-point VNET tunnel), ``VXLAN_EVPN_NVO|<nvo>`` with
  ``source_vtep`` (at most one), ``VXLAN_TUNNEL_MAP``, ``VRF|<name>`` and ``VNET|<name>`` with
  ``vni``): sonic-buildimage ``sonic-yang-models`` (``sonic-vlan.yang``, ``sonic-vxlan.yang``)
  and the mock tables. ``sonic-cfggen -d --print-data`` prints the whole CONFIG_DB nested
  (``config save`` writes exactly it to ``/etc/sonic/config_db.json``); the parser reads redis'
  own ``"TABLE|key"`` layout too, which the mock tables and ``sonic-db-dump`` use.
* ``show vxlan remotevni all`` prints APPL_DB ``VXLAN_REMOTE_VNI_TABLE`` as a tabulate grid
  (``| Vlan200 | 25.25.25.25  |   200 |`` then ``Total count : N``; an empty table prints the
  header grid and ``Total count : 0``): sonic-utilities ``show/vxlan.py`` and ``tests/vxlan_test.py``.
* ``show version`` starts ``SONiC Software Version: SONiC.<build>`` and names ``Build date``,
  ``Platform`` and ``HwSKU``: sonic-utilities ``show/main.py`` and the captures above. The
  release is read from the build's branch (``202311.1-...``, ``20201231.39``); a master/HEAD
  build by its build date (``read.version``).

What silonet needs on a SONiC switch (each missing piece is a switch fault, never a silent
failure):

* **SONiC 202012 or later.** EVPN VXLAN (``VXLAN_EVPN_NVO``, ``config vxlan``, fdbsyncd writing
  ``VXLAN_REMOTE_VNI_TABLE``, ``show vxlan remotevni``) is incremental to 201911 (SONiC
  ``doc/vxlan/EVPN/EVPN_VXLAN_HLD.md``) and first shipped in 202012. ``show version`` is read
  once per session: an older build is a switch fault and ``prepare`` refuses its batches.
  (On such a build ``show vxlan remotevni all`` itself answers "No such command", so the read
  fails before the parser: the fault shows where the version is known first.)
* **A VTEP (VXLAN tunnel with the gateway's source IP) and an EVPN NVO naming it.** VLAN<->VNI
  maps work without an NVO (sonic-swss ``VxlanTunnelMapOrch`` creates the tunnel on the first
  map), but ``EvpnRemoteVnip2p/p2mpOrch`` drops every remote VTEP without one ("Remote VNI
  add: Source VTEP not found"), so nothing floods. When the switch has no VTEP, the batch
  creates VTEP ``silonet`` and NVO ``silonet`` itself; a VTEP someone else made, without an
  NVO, is left alone and reported; several VTEPs without an NVO too (which one?). The VTEP's
  source IP is reported (``Parsed.vtep_ip``): the driver faults one that is not the gateway's.
* **BGP EVPN with the remote gateways** (FRR ``address-family l2vpn evpn``, ``advertise-all-vni``,
  the peers activated): the only source of remote VTEPs. SONiC has no static flood list: no
  CLI, no CONFIG_DB table, static VXLAN tunnels are out of the EVPN HLD's scope (a data-plane
  design with configured remote VTEPs is only a proposal: sonic-net/SONiC PR 1764). silonet
  cannot see FRR's configuration (split mode keeps it out of CONFIG_DB), so this one is the
  operator's: ``set_flood_list.j2`` renders nothing, the parser reports as a VNI's flood list
  the remote VTEPs EVPN gave it, and the driver does not compare flood lists
  (``flood_lists=False``). OpenStack networking-generic-switch's SONiC driver states the same
  prerequisite.

Chosen where the documentation is silent or the platform cannot follow silonet:

* **Ownership**: a VLAN is silonet's when its CONFIG_DB ``description`` is
  ``silonet:<network>`` (set with ``sonic-db-cli CONFIG_DB HSET``: mainline ``config vlan``
  has no description command; the field is in the VLAN YANG model). The VXLAN map name
  ``map_<vni>_Vlan<vid>`` is made by the CLI and marks nothing. Every member of a silonet VLAN
  is silonet's binding; every other VLAN, every VLAN ID someone else mapped (one map of a VLAN
  ID makes ``config vxlan map add`` refuse another, even where the VLAN itself is missing) or
  routed (``VLAN_INTERFACE``), their members and maps are foreign
  (``DeviceFacts.foreign_bindings`` / ``foreign_vnis``); VRF (L3) and VNET VNIs are foreign
  VNIs too. As VLAN IDs are switch-wide, a foreign VLAN ID is blocked on every gateway port. A
  silonet map on another VTEP than the EVPN one is a switch fault.
* **VLAN 0** (untagged): the port becomes the untagged member (``-u``) of the VLAN that
  carries the VNI tagged on this switch; a binding of a VNI attached only untagged is refused
  (``switchscope.carried_untagged``). Bindings are tagged members otherwise. A binding on VLAN 1,
  or one that would break VLAN<->VNI one to one, is refused too (``check``: it fails its
  attachment alone).
* **Not transactional**: SONiC applies each command at once. The batch is one shell command
  joined with `` && `` (the first failure stops the rest) and every step is guarded by a
  CONFIG_DB existence test (``has KEY || config ...``), so a batch cut short is completed by
  the next pass instead of failing on "already exists". ``$vtep`` is the NVO's VTEP, else the
  first VTEP. ``config save -y`` ends a batch that changed anything. ``config`` needs root:
  the SSH user needs password-less ``sudo``.
* Local MACs are not read (remote MACs are not supported: ``remote_macs=False``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from silonet.drivers.ssh.dialect import Batch, Dialect, Parsed, Prepared, Target, checks
from silonet.drivers.ssh.dialects.sonic.read import (
    CONFIG,
    REMOTE_VNI,
    VERSION,
    config_tables,
    evpn_vtep,
    remote_vnis,
    too_old,
    version,
)
from silonet.drivers.ssh.switchscope import Plan, carried_untagged, one_to_one, reserved_vlans, settle_read
from silonet.drivers.untrusted import echo
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

__all__ = ["CONFIG", "DIALECT", "REMOTE_VNI", "VERSION", "members", "parse", "prepare", "remote_vnis", "version"]

MARK = "silonet:"
NVO_CLI_RELEASE = (202106,)  # the first release after sonic-utilities PR 1511 fixed `config vxlan evpn_nvo add`
VLAN_RE = re.compile(r"^Vlan(\d+)$")


def _vid(name: str) -> int | None:
    m = VLAN_RE.match(name)
    return int(m[1]) if m else None


def _vni(entry: Mapping) -> int | None:
    vni = str(entry.get("vni", ""))
    return int(vni) if vni.isdigit() and int(vni) else None


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    db = config_tables(outputs[CONFIG])
    vlans = db.get("VLAN", {})
    faults: dict[str, list[str]] = {}
    if why := too_old(gw.platform):
        faults["switch"] = [why]
    ports = frozenset(db.get("PORT", {})) | frozenset(db.get("PORTCHANNEL", {}))

    l2: dict[int, tuple[int, str, str]] = {}  # VLAN -> (VNI, map name, VTEP)
    foreign_vnis: dict[int, str] = {}
    for key, entry in sorted(db.get("VXLAN_TUNNEL_MAP", {}).items()):
        tunnel, _, mapname = key.rpartition("|")
        vid = _vid(str(entry.get("vlan", "")))
        if vid is not None and (vni := _vni(entry)) is not None:
            l2[vid] = (vni, mapname, tunnel)
    for table, kind in (("VRF", "VRF"), ("VNET", "VNET")):
        for name, entry in sorted(db.get(table, {}).items()):
            if (vni := _vni(entry)) is not None:
                foreign_vnis[vni] = f"{kind} {name}"

    mine: dict[int, str] = {}  # VLAN -> network, for silonet's VLANs
    for name, entry in vlans.items():
        vid = _vid(name)
        desc = str(entry.get("description", ""))
        if vid is not None and desc.startswith(MARK):
            mine[vid] = desc[len(MARK):]
    vtep = evpn_vtep(db, faults)
    vlan_vni: dict[int, int] = {}
    names: dict[int, str] = {}
    for vid, network in sorted(mine.items()):
        if vid not in l2:
            faults.setdefault("switch", []).append(f"Vlan{vid} is silonet's but has no VXLAN map (a batch cut short?)")
            continue
        vlan_vni[vid] = l2[vid][0]
        names[l2[vid][0]] = network
        if vtep is not None and l2[vid][2] != vtep:
            faults.setdefault("switch", []).append(f"Vlan{vid} (silonet's) is mapped on VTEP {echo(l2[vid][2], 64)}, "
                                                   f"not on the EVPN VTEP {echo(vtep, 64)}")
    foreign_vlan: dict[int, str] = {}  # every VLAN ID someone else holds: a VLAN, or a map of it
    for name in vlans:
        vid = _vid(name)
        if vid is not None and vid not in mine:
            foreign_vlan[vid] = l2[vid][1] if vid in l2 else name
    for vid, (vni, mapname, _tunnel) in sorted(l2.items()):
        if vid not in vlan_vni:
            foreign_vnis[vni] = mapname
            if vid not in mine:
                foreign_vlan.setdefault(vid, mapname)
    for key in db.get("VLAN_INTERFACE", {}):  # a routed VLAN (IP, VRF, VNET) is someone's too
        vid = _vid(key.partition("|")[0])
        if vid is not None and vid not in mine:
            foreign_vlan.setdefault(vid, f"Vlan{vid}")

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

    tunnel = db.get("VXLAN_TUNNEL", {}).get(vtep, {}) if vtep is not None else {}
    evpn = remote_vnis(outputs.get(REMOTE_VNI, ""))
    state = GatewayState(
        {vni: LogicalSwitch(vni, names[vni], frozenset(evpn.get(vni, ()))) for vni in sorted(names)},
        dict(sorted(bindings.items())))
    facts = DeviceFacts(ports or None, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())),
                        frozenset(), unusable=port_modes(db, gw.ports))
    src = tunnel.get("src_ip")
    return Parsed(state, facts, {}, faults, str(src) if src is not None else None)


def port_modes(db: dict, managed: tuple[str, ...]) -> dict[str, str]:
    """Gateway ports whose switchport mode forbids silonet's tagged memberships: sonic-utilities
    ``config vlan member add`` refuses a port in ``routed`` mode and a tagged member on an ``access``
    one (config/vlan.py, since switchport modes). silonet does not change a port's mode."""
    out: dict[str, str] = {}
    for table in ("PORT", "PORTCHANNEL"):
        for port, entry in db.get(table, {}).items():
            mode = entry.get("mode") if isinstance(entry, dict) else None
            if port in managed and mode in ("routed", "access"):
                out[port] = (f"switchport mode {mode}: `config vlan member add` refuses "
                             f"{'any' if mode == 'routed' else 'a tagged'} member there")
    return out


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


def prepare(batch: Batch) -> Prepared:
    """Per operation: its VLAN-level steps (``w``), its port's memberships (``members``), the VLAN
    whose description a rename rewrites (``rename``); for the batch: whether it touches the switch,
    maps and adds a mapping (the ``$vtep`` lookup, the VTEP and its EVPN NVO made when there is
    none), and how the NVO is written: ``config vxlan evpn_nvo add`` from 202106 on (and when the
    release is not known); a 202012 build may predate sonic-utilities PR 1511 (March 2021), before
    which that command died in a Traceback, so there the entry is written as the command writes it
    (``sonic-db-cli CONFIG_DB HSET``). A switch whose release predates EVPN VXLAN gets no batch
    (``read.too_old``)."""
    ops, actual, desired = batch.ops, batch.actual, batch.desired
    p = Plan(ops, actual, desired)
    if p.touches and (why := too_old(batch.platform)):
        raise ValueError(why)
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
    found = batch.platform
    nvo_cli = found is None or found.at_least(*NVO_CLI_RELEASE)
    return Prepared({"touches": p.touches, "maps": p.maps, "adds": p.adds, "nvo_cli": nvo_cli}, each)


DIALECT = Dialect(
    name="sonic",
    platform="SONiC (community; sonic-utilities config/show CLI)",
    verified="captured output: SONiC master mock tables (sonic-utilities), show version of a 2019 HEAD build and "
             "of 20201231.39 (sonic-utilities, sonic-mgmt)",
    scope="switch",
    style="exec",
    show=(CONFIG, REMOTE_VNI),
    parse=parse,
    version_show=VERSION,
    version=version,
    unsupported=too_old,
    failures=("Error: ", "Traceback (most recent call last)", "Root privileges are required", "command not found"),
    folder=Path(__file__).parent,
    join=" && ",
    remote_macs=False,
    flood_lists=False,
    check=checks(reserved_vlans, one_to_one("sonic"), carried_untagged),
    prepare=prepare,
    # README "Fencing"
    unfenced="config commands apply one by one to CONFIG_DB: there is no transaction a check could abort",
    notes="needs SONiC 202012+, a VTEP with an EVPN NVO (made when the switch has no VTEP) and BGP EVPN to the "
          "other gateways: no static flood list (EVPN builds it); ownership = VLAN description "
          "'silonet:<network>'; VLAN 0 = untagged member of the VNI's VLAN; needs password-less sudo",
)
