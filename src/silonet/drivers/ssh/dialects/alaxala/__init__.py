"""``alaxala``: ALAXALA AX switches (AX3660S documented; AX4630S is the seed's own gateway),
through the interactive CLI (shell style).

Verified against documentation only, never against a switch (``verified`` says so). No
AX4630S-era material was found; everything is from AX3660S software 12.1 material:

- Session flow: login lands at ``host>``; ``enable`` -> ``host#``; ``configure terminal`` ->
  ``host(config)#``; changes apply at once and the prompt starts with ``!`` until ``save``;
  ``save`` is typed *in config mode* and clears the ``!``; ``end`` with unsaved changes asks a
  y/n question (answered ``y``: leave without saving). Source: the device operation logs in
  ALAXALA's Ansible guidebook (github alaxalanetworks/ansible-guidebook, chapters 4.2/4.3:
  ``!AX3660S-1(config)# save`` then ``AX3660S-1(config)# end``; ``end`` then ``y`` when
  unsaved), and netmiko's ``alaxala_ax36s`` driver (saves in config mode, answers ``(y/n)``).
- ``set terminal pager disable`` typed at ``>``: the same logs, netmiko.
- ``vlan <id>`` / ``name "<text>"`` / ``vxlan-vni <vni>``, ``interface vxlan <id>`` /
  ``member vni add <vni>`` / ``destination-ip <ip>``, ``switchport mode trunk`` /
  ``switchport trunk allowed vlan add <vid>``: the guidebook's AX3660S sample
  running-configs and its add-VLAN/add-VNI playbooks (in that order: ``vxlan-vni`` first,
  then ``member vni add``).
- ``show vxlan vni`` shape (``Date`` line, ``VTEP ID: 1``, ``VNI: 101  Status: enable``,
  ``Learning: On``, ``VLAN: 101  Port: 1/0/11``): the guidebook's TextFSM template and sample.
- Interface names ``geth1/0/1``, ``tengeth1/0/49`` (``show port``) and ``interface
  gigabitethernet 1/0/11`` (running-config): ALAXALA's AX-TextFSM-templates, the guidebook.
- Failure strings (``% ...`` lines, ``Error: ...``, ``<word>: not found``): third-party
  tooling only (netutils' CLI class). They are matched as substrings of answer lines, show
  output included: a running-config line with ``% `` in it (a description) fails the read.

Not confirmed by any source, and therefore kept in ONE place, ``templates/_ax.j2``, which an
operator can correct without touching code (the parser reads its settings too):

- Several remote VTEPs: one ``destination-ip <ip>`` line each (the documented sample shows
  one address on one line), removed with ``no destination-ip <ip>``. The parser accepts one
  or several addresses per line, so either form reads back.
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
then ``member vni add``) and goes after its last (``unbind.j2`` unmaps and deletes the VLAN,
then ``remove_logical_switch.j2`` leaves the VTEP), so nothing half-made is left behind. A
network none of whose bindings this gateway can take (missing port, foreign VLAN) has no VNI
here either (the framework drops such VNIs for per-switch dialects: ``bare_vnis``).

Flood lists are per VTEP on AX, not per VNI: every VNI of ``interface vxlan 1`` is replicated
to all its ``destination-ip`` addresses. The templates keep that list equal to the union of
the flood lists of silonet's VNIs (over-flooding to a gateway that lacks a VNI costs
bandwidth only: it drops the frames), and the parser reports that list as each VNI's flood
list. Read-back therefore matches only while silonet's VNIs on one gateway share one flood
list (two gateways, or networks spanning the same gateways); converging in general needs a
framework change (a per-VTEP flood list in the plan: ``Dialect.flood_per_vtep``).

Ownership. silonet owns the VLANs named ``silonet-*`` and the VTEP ``interface vxlan 1``
(``vtep`` in ``_ax.j2``) with its member and destination lists, which must be dedicated to
it: the VTEP must already exist (``vxlan enable``, ``source-interface loopback 0``; silonet
does not create it), and if a VNI mapped from a VLAN silonet does not own is a member of it,
the read fails with an explicit error instead of silently sharing (or rewriting) someone
else's remote-VTEP list. A member of that VTEP that no VLAN maps (left by an interrupted
batch) is silonet's and is cleaned up, and so is a ``silonet-*`` VLAN mapping that no port
trunks (reported as a binding on the pseudo-port ``no-port``). Everything else is reported as foreign: every other
VLAN (VLAN 1 included) on every managed port, since one VLAN ID is one VLAN on the whole
switch, and the VNIs of other VTEPs or of foreign VLANs.

Ports. The model forbids ``/`` in names: name AX ports after their ``show port`` names with
``_`` for ``/``: ``geth1_0_11`` is ``interface gigabitethernet 1/0/11``, ``tengeth1_0_49`` is
``tengigabitethernet 1/0/49``; full type names (``gigabitethernet1_0_11``) and
``port-channel10`` work too. Other names are typed verbatim (``interface p1``). silonet sets
``switchport mode trunk`` when it first binds a port and never changes the mode back.

Session. When the CLI session opens, ``setup`` turns the pager off (``set terminal pager
disable``) and enters admin mode (``enable``), once: the session then stays at ``#``, where
the guidebook runs both show commands (``show running-config`` is an admin command). ``enable`` must not ask
for a password (the framework answers no password prompt: the driver would wait for a prompt
until its timeout): give silonet's account admin rights without an enable password. A batch
is ``configure terminal``, the changes (each block ``exit``s back to ``(config)#``), then
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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from silonet.drivers.ssh.dialect import Dialect, Parsed, Prepared, Target, checks, untagged_refused
from silonet.drivers.ssh.switchscope import one_to_one
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Operation, SetFloodList, Unbind
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

SHOW_VNI = "show vxlan vni"
SHOW_CONFIG = "show running-config"
SETUP = ("set terminal pager disable", "enable")  # once per session: the session then stays at "#"
SHOW = (SHOW_VNI, SHOW_CONFIG)
# ``[!]host[(config...)]>|#``, or the y/n question on leaving config mode unsaved.
PROMPT = r"(^!?[^\s()<>#!]+(\(config[^)]*\))?[>#]|\(y/n\):?)[ \t\x00]*$"
FAILURES = ("% ", "Error:", ": not found")  # substrings of an answer line

SHORT = {"gigabitethernet": "geth", "tengigabitethernet": "tengeth"}
LONG = {short: kind for kind, short in SHORT.items()}
PORT_KINDS = frozenset({*SHORT, "twentyfivegigabitethernet", "fortygigabitethernet", "hundredgigabitethernet",
                        "port-channel"})
NOT_PORTS = frozenset({"vxlan", "vlan", "loopback", "mgmt", "null", "tunnel"})
NO_PORT = "no-port"  # the pseudo-port of an owned VLAN mapping that no port trunks
PORT_NAME_RE = re.compile(r"([a-z][a-z-]*?)(\d+(?:_\d+)*)")
PORT_NUMBER_RE = re.compile(r"(\d+(?:/\d+)*)(?:-(\d+))?")
_prompt_line = re.compile(PROMPT)


# ---------------------------------------------------------------------------- names
def interface(port: str) -> str:
    """Inventory port name -> AX interface: ``geth1_0_11`` -> ``gigabitethernet 1/0/11``."""
    m = PORT_NAME_RE.fullmatch(port)
    if m and (kind := LONG.get(m[1], m[1])) in PORT_KINDS:
        return f"{kind} {m[2].replace('_', '/')}"
    return port


def _port_name(kind: str, number: str, known: Mapping[str, str]) -> str:
    """AX interface -> inventory port name: the gateway's own name for it if it has one."""
    return known.get(f"{kind} {number}") or SHORT.get(kind, kind) + number.replace("/", "_")


def vlan_list(spec: str) -> set[int]:
    """``101-105,201`` (also ``all`` / ``none``) -> the IDs."""
    spec = spec.strip().strip('"')
    if spec.lower() == "all":
        return set(range(1, 4095))
    if spec.lower() in ("none", "", "-"):
        return set()
    out: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


@cache
def settings() -> tuple[int, str]:
    """``vtep`` and ``marker`` from ``templates/_ax.j2`` (one place for operators to edit)."""
    module = DIALECT.env.get_template("_ax.j2").module
    return int(module.vtep), str(module.marker)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- parser
@dataclass
class _Vtep:
    members: set[int] = field(default_factory=set)
    destinations: list[str] = field(default_factory=list)


@dataclass
class _Config:
    """What silonet needs from ``show running-config``."""

    vlans: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> {"name", "vni"}
    vteps: dict[int, _Vtep] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)  # "1/0/11" -> "gigabitethernet"
    allowed: dict[str, set[int]] = field(default_factory=dict)  # "gigabitethernet 1/0/11" -> VLANs it trunks
    access: dict[str, int] = field(default_factory=dict)  # "gigabitethernet 1/0/3" -> its access VLAN


def _sections(text: str) -> Iterable[tuple[list[str], list[list[str]]]]:
    """Top-level lines (split) with their indented body lines (split)."""
    head: list[str] | None = None
    body: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.startswith("#") or _prompt_line.search(line):
            continue  # blank, "#Last modified ..." comment, the prompt after the output
        if line == "!":
            if head is not None:
                yield head, body
            head, body = None, []
            continue
        if line[0].isspace():
            if head is not None:
                body.append(line.split())
            continue
        if head is not None:
            yield head, body
        head, body = line.split(), []
    if head is not None:
        yield head, body


def parse_config(text: str) -> _Config:
    cfg = _Config()
    for head, body in _sections(text):
        if head[0] == "vlan" and len(head) >= 2 and head[1][:1].isdigit():
            info: dict[str, Any] = {"name": None, "vni": None}
            for words in body:
                if words[0] == "name" and len(words) > 1:
                    info["name"] = " ".join(words[1:]).strip('"')
                elif words[0] == "vxlan-vni" and len(words) > 1:
                    info["vni"] = int(words[1])
            for vid in vlan_list(head[1]):
                cfg.vlans[vid] = dict(info)
        elif head[0] == "interface" and len(head) >= 3:
            kind, number = head[1], head[2]
            if kind == "vxlan":
                vtep = cfg.vteps.setdefault(int(number), _Vtep())
                for words in body:
                    if words[:2] == ["member", "vni"] and len(words) > 2:
                        vtep.members |= vlan_list(words[-1])
                    elif words[0] == "destination-ip":
                        vtep.destinations += [w for w in words[1:] if w not in vtep.destinations]
            elif kind not in NOT_PORTS and not kind.startswith("vlan"):
                cfg.ports[number] = kind
                allowed: set[int] = set()
                trunk = False
                for words in body:
                    if words[:2] == ["switchport", "mode"] and len(words) > 2:
                        trunk = words[2] == "trunk"
                    elif words[:3] == ["switchport", "access", "vlan"] and len(words) > 3:
                        cfg.access[f"{kind} {number}"] = int(words[3])
                    elif words[:4] == ["switchport", "trunk", "allowed", "vlan"] and len(words) > 4:
                        if words[4] == "add":
                            allowed |= vlan_list(words[5] if len(words) > 5 else "")
                        elif words[4] == "remove":
                            allowed -= vlan_list(words[5] if len(words) > 5 else "")
                        else:
                            allowed = vlan_list(words[4])
                if trunk:  # an allowed list counts on a trunk port only
                    cfg.allowed[f"{kind} {number}"] = allowed
    return cfg


def parse_vni(text: str) -> dict[int, dict[int, dict[str, Any]]]:
    """``show vxlan vni`` -> VTEP id -> VNI -> {"status", "learning", "vlans": {vlan: [port numbers]}}."""
    vteps: dict[int, dict[int, dict[str, Any]]] = {}
    vtep: dict[int, dict[str, Any]] | None = None
    vni: dict[str, Any] | None = None
    seen_date = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Date"):
            seen_date = True
        elif m := re.match(r"VTEP ID:\s*(\d+)", line):
            vtep, vni = vteps.setdefault(int(m[1]), {}), None
        elif (m := re.match(r"VNI:\s*(\d+)(?:\s+Status:\s*(\S+))?", line)) and vtep is not None:
            vni = vtep.setdefault(int(m[1]), {"status": m[2] or "", "learning": "", "vlans": {}})
        elif (m := re.match(r"Learning:\s*(\S+)", line)) and vni is not None:
            vni["learning"] = m[1]
        elif (m := re.match(r"VLAN:\s*(\d+)(?:\s+Port:\s*(.*))?", line)) and vni is not None:
            ports = vni["vlans"].setdefault(int(m[1]), [])
            for pm in PORT_NUMBER_RE.finditer(m[2] or ""):
                if pm[2] is None:
                    ports.append(pm[1])
                else:  # 1/0/11-14
                    base, _, first = pm[1].rpartition("/")
                    ports += [f"{base}/{n}" if base else str(n) for n in range(int(first), int(pm[2]) + 1)]
    if not seen_date and not vteps:
        raise ValueError(f"{SHOW_VNI!r} printed no Date line and no VTEP: {text.strip()[:120]!r}")
    return vteps


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    vtep_id, marker = settings()
    cfg = parse_config(outputs[SHOW_CONFIG])
    show = parse_vni(outputs[SHOW_VNI])
    if vtep_id not in cfg.vteps:
        raise ValueError(f"interface vxlan {vtep_id} is not configured: set up silonet's VTEP first "
                         f"(vxlan enable; interface vxlan {vtep_id} / source-interface loopback 0), "
                         f"or choose another vtep in templates/_ax.j2")
    known = {interface(p): p for p in gw.ports}

    def name(number: str) -> str:  # a port number of show vxlan vni
        return _port_name(cfg.ports[number], number, known) if number in cfg.ports else number.replace("/", "_")

    vni_of = {vid: v["vni"] for vid, v in cfg.vlans.items() if v["vni"] is not None}
    for members in show.values():  # a mapping show knows of but the config text did not hold
        for vni, info in members.items():
            for vid in info["vlans"]:
                vni_of.setdefault(vid, vni)
    vlan_names = {vid: v["name"] or f"VLAN{vid:04d}" for vid, v in cfg.vlans.items()}
    vlan_names.setdefault(1, "VLAN0001")  # the default VLAN exists even when not listed
    owned_vlans = {vid for vid, n in vlan_names.items() if n.startswith(marker)}
    members_of = {vt: set(vtep.members) for vt, vtep in cfg.vteps.items()}  # VTEP id -> member VNIs
    for vt, members in show.items():
        members_of.setdefault(vt, set()).update(members)
    mine = members_of.get(vtep_id, set())

    shared = sorted(vid for vid in vni_of if vid not in owned_vlans and vni_of[vid] in mine)
    if shared:
        which = ", ".join(f"VNI {vni_of[v]} (VLAN {v} '{vlan_names.get(v, '')}')" for v in shared[:5])
        raise ValueError(f"interface vxlan {vtep_id} also carries VNIs silonet does not own: {which}"
                         f"{' ...' if len(shared) > 5 else ''}; its remote-VTEP list would be shared. Give "
                         f"silonet a VTEP of its own (vtep in templates/_ax.j2)")

    faults: list[str] = []
    flood = frozenset(cfg.vteps[vtep_id].destinations)
    trunked: dict[int, set[str]] = {}
    for ifname, vids in cfg.allowed.items():
        kind, _, number = ifname.partition(" ")
        for vid in vids:
            trunked.setdefault(vid, set()).add(_port_name(kind, number, known))
    status = {vni: info for members in show.values() for vni, info in members.items()}

    switches: dict[int, LogicalSwitch] = {}
    bindings: dict[tuple[str, int], int] = {}
    for vid in sorted(owned_vlans):
        vni = vni_of.get(vid)
        if vni is None:  # interrupted between "name" and "vxlan-vni": rewritten if the VLAN is wanted again
            faults.append(f"VLAN {vid} ({vlan_names[vid]}) maps no VNI: incomplete")
            continue
        if vni not in mine:  # interrupted before "member vni add": completed, or unmapped and deleted
            faults.append(f"VLAN {vid} ({vlan_names[vid]}) maps VNI {vni}, not a member of interface vxlan "
                          f"{vtep_id}: incomplete")
            bindings[(NO_PORT, vid)] = vni
            continue
        switches.setdefault(vni, LogicalSwitch(vni, vlan_names[vid][len(marker):], flood))
        ports = set(trunked.get(vid, ())) | {name(n) for n in status.get(vni, {}).get("vlans", {}).get(vid, [])}
        for port in ports or [NO_PORT]:  # a mapping no port trunks is still ours to remove
            bindings[(port, vid)] = vni
    for vni in sorted(mine - set(vni_of.values())):  # left by an interrupted batch: ours, unnamed
        switches[vni] = LogicalSwitch(vni, "", flood)
    for vni in sorted(switches):
        if (st := status.get(vni, {}).get("status")) and st != "enable":
            faults.append(f"VNI {vni} status {st}")

    foreign_vlans = {vid: vlan_names.get(vid) or f"VLAN{vid:04d}" for vid in set(vlan_names) | set(vni_of)
                     if vid not in owned_vlans}
    carried = {vid: set(ports) for vid, ports in trunked.items()}  # foreign VLANs: access ports count too
    for ifname, vid in cfg.access.items():
        kind, _, number = ifname.partition(" ")
        carried.setdefault(vid, set()).add(_port_name(kind, number, known))
    foreign_bindings = {(port, vid): n for vid, n in foreign_vlans.items()
                        for port in set(gw.ports) | carried.get(vid, set())}
    foreign_vnis = {vni_of[vid]: n for vid, n in foreign_vlans.items() if vid in vni_of}
    for vt, members in sorted(members_of.items()):
        for vni in members:
            if vt != vtep_id:
                foreign_vnis.setdefault(vni, f"VTEP {vt}")
    ports = frozenset(_port_name(kind, number, known) for number, kind in cfg.ports.items())
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    facts = DeviceFacts(ports, dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())))
    return Parsed(state, facts, {}, {"switch": faults} if faults else {})


# ---------------------------------------------------------------------------- batches
class Remotes(NamedTuple):
    """The VTEP's remote list as a batch leaves it (``after``), and the change from before."""

    after: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


def prepare(ops: list[Operation], actual: GatewayState, desired: GatewayState) -> Prepared:
    """What each operation's template prints, worked out for the whole batch.

    A Bind writes its VLAN's mapping when it is the first of the batch on a VLAN that does not
    map its VNI yet (``mapping``; ``remap``: the VLAN held another VNI), adds its VNI to the VTEP
    when it is the first Bind of a new VNI (``member``), and sets trunk mode when it is the first
    on a port silonet had not bound (``trunk_mode``). The last Unbind of a VLAN nothing keeps
    unmaps and deletes it (``unmap``); ``trunk``: the port is a real one, not ``NO_PORT``. An
    EnsureLogicalSwitch renames the VLANs that keep mapping its VNI (``renames``). The VTEP's
    remote list (the union of the flood lists of the VNIs that have a VLAN) is written by the
    first SetFloodList (``remotes``), else by the commit (``remotes_at_commit``); None: unchanged.
    """
    have = {vlan: vni for (_port, vlan), vni in actual.bindings.items()}
    want = {vlan: vni for (_port, vlan), vni in desired.bindings.items()}
    bound = {port for port, _vlan in actual.bindings}
    before = frozenset().union(*(ls.flood for ls in actual.logical_switches.values()))
    after = frozenset().union(*(ls.flood for vni, ls in desired.logical_switches.items() if vni in set(want.values())))
    remotes = Remotes(tuple(sorted(after)), tuple(sorted(after - before)), tuple(sorted(before - after))) \
        if before != after else None
    kept: dict[int, list[int]] = {}  # VNI -> the VLANs that map it before and after
    for vlan, vni in sorted(have.items()):
        if want.get(vlan) == vni:
            kept.setdefault(vni, []).append(vlan)
    vlans: set[int] = set()
    vnis: set[int] = set()
    ports: set[str] = set()
    last_unbind: dict[int, int] = {}
    flood_at: int | None = None
    each: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        ctx: dict[str, Any] = {}
        if isinstance(op, Bind):
            ctx.update(mapping=have.get(op.vlan) != op.vni and op.vlan not in vlans,
                       member=op.vni not in actual.logical_switches and op.vni not in vnis,
                       trunk_mode=op.port not in bound and op.port not in ports)
            ctx["remap"] = ctx["mapping"] and op.vlan in have
            vlans |= {op.vlan} if ctx["mapping"] else set()
            vnis |= {op.vni} if ctx["member"] else set()
            ports |= {op.port} if ctx["trunk_mode"] else set()
        elif isinstance(op, Unbind):
            ctx.update(trunk=op.port != NO_PORT, unmap=False)
            if op.vlan not in want:
                last_unbind[op.vlan] = i
        elif isinstance(op, SetFloodList):
            ctx["remotes"] = remotes if flood_at is None else None
            flood_at = i if flood_at is None else flood_at
        elif isinstance(op, EnsureLogicalSwitch):
            ctx["renames"] = kept.get(op.vni, []) if op.vni in actual.logical_switches else []
        each.append(ctx)
    for i in last_unbind.values():
        each[i]["unmap"] = True
    return Prepared({"remotes_at_commit": remotes if flood_at is None else None}, each)


DIALECT = Dialect(
    name="alaxala",
    platform="ALAXALA AX3660S (documented) / AX4630S (the seed's gateway)",
    verified="documentation",
    scope="switch",
    style="shell",
    show=SHOW,
    parse=parse,
    failures=FAILURES,
    folder=Path(__file__).parent,
    prompt=PROMPT,
    setup=SETUP,
    remote_macs=False,
    flood_per_vtep=True,
    unnamed=True,
    default_capacity=8192,
    check=checks(untagged_refused("alaxala"), one_to_one("alaxala")),
    prepare=prepare,
    filters={"ax_interface": interface},
    notes="VLAN mapping per switch (vlan / vxlan-vni, interface vxlan 1 / member vni); ownership = VLAN name "
          "silonet-<network> and a VTEP dedicated to silonet; remote VTEPs are per VTEP (union of flood lists); "
          "save in config mode; ports geth1_0_11 = gigabitethernet 1/0/11",
)
