"""``eos``: Arista EOS, through its interactive CLI (shell style) inside one configure session.

Verified only against documentation and public code, never against a switch (``verified``
says so). What was relied on, per fact:

- Session framing ``configure session <name>`` ... ``commit`` / ``abort``: Arista EOS User
  Manual, "Configure Session" (arista.com/en/um-eos/eos-configure-session); prompt shape
  ``host(config-s-<first 6 chars of name>)#`` from a public walkthrough
  (saidvandeklundert.net, "arista_configure_sessions").
- ``interface Vxlan1``, ``vxlan vlan <V> vni <N>``, ``no vxlan vlan <V> vni``, ``vxlan vlan
  <V> flood vtep add|remove <ip>``: Arista's own eAPI clients (arista-eosplus/pyeapi
  test/unit/test_api_interfaces.py; goeapi system tests reading back ``vxlan vlan 10 flood
  vtep 198.18.0.11`` from running-config), netlab's EOS VXLAN template (ipspace/netlab
  netsim/ansible/templates/vxlan/eos.j2), EOS User Manual "VXLAN Configuration".
- ``vlan <V>`` / ``name <text>`` / ``no vlan <V>``, trunk ``switchport trunk allowed vlan
  add|remove``: EOS User Manual "Virtual LANs (VLANs)" and public EOS runbooks.
- Read back, as JSON: ``show interfaces Vxlan1 | json`` (keys ``interfaces.Vxlan1.vlanToVniMap``
  and ``vlanToVtepList``: pyeapi test/fixtures/vxlan.json, aristanetworks/anta unit data);
  ``show vlan | json`` (``vlans.<id>.name``: pyeapi test/fixtures/vlan_show.json);
  ``show interfaces switchport | json`` (``switchports.<port>.switchportInfo.mode`` and
  ``trunkAllowedVlans`` = ``ALL`` | ``NONE`` | ranges: only third-party eAPI models and scripts).
  The inner shape of ``vlanToVtepList`` entries (``{"remoteVtepAddr": [...]}``) comes from a
  third-party model only, so the parser also accepts a bare list.
- Failure strings ``% Invalid input`` (seen in EOS transcripts), ``% Incomplete command``,
  ``% Ambiguous command``, ``% Error``: the usual EOS CLI answers, not checked one by one.
- Not verified at all: the 32-character limit on VLAN names (the templates refuse longer
  ``silonet-<network>`` names), and that ``commit``/``abort`` are accepted from inside an
  interface or VLAN submode of the session (they are typed there).

Model. EOS maps VLAN->VNI per switch (``scope="switch"``): one VLAN ID is one VNI on the
whole switch. A logical switch is a *VLAN object*: ``vlan V`` named ``silonet-<network>`` (the
ownership marker), ``vxlan vlan V vni N`` and ``vxlan vlan V flood vtep`` on Vxlan1. A binding
(port, V) is trunk membership: the port trunks V (``switchport trunk allowed vlan``; a trunk
allowing ``ALL`` trunks every VLAN). The parser reports mappings whose VLAN is named
``silonet-*`` as owned, and every other VLAN that exists (or is mapped) as foreign, on every
port silonet manages: on a per-switch platform silonet must not rename, map or delete a VLAN
ID someone else uses. An owned VLAN object that no managed port trunks is reported as a
binding on the pseudo-port ``Vxlan1`` so the plan removes (or reuses) it instead of leaking.
Operations are per VNI and per (port, VLAN), but the device object is the VLAN, so the
templates derive it from ``actual``/``desired``: a VNI's VLAN is the one its bindings use;
the first bind of a VLAN new to its VNI makes the VLAN object when no EnsureLogicalSwitch
does; ``begin.j2`` unmaps every VLAN the batch hands to another VNI right after opening the
session (so swaps never find a VNI mapped twice); the last unbind of a VLAN no longer wanted
removes its object when the VNI stays, ``remove_logical_switch.j2`` when the VNI goes.

Workarounds for framework limits (docs/architecture.md, "Dialects"): the first "show" command is ``terminal
length 0`` (no session-setup hook; the pty would page long output); show answers are cut
from the first ``{`` because shell-style reads keep the trailing prompt; inventory port names
spell ``/`` as ``_`` (the model forbids ``/``: ``Ethernet3_1`` is ``Ethernet3/1``); a batch
the platform cannot hold (untagged VLAN 0, one VNI on two VLANs, a name over 32 characters)
is refused by ``begin.j2`` with a ``silonet-refuses: <why>`` line the switch rejects before
any configuration mode is entered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from silonet.drivers.ssh.dialect import Dialect, Parsed, Target, all_of, tagged_only, vlan_name_within
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

PAGER_OFF = "terminal length 0"
SHOW_VXLAN = "show interfaces Vxlan1 | json"
SHOW_VLAN = "show vlan | json"
SHOW_SWITCHPORT = "show interfaces switchport | json"
MARK = "silonet-"
VXLAN_IF = "Vxlan1"  # also the pseudo-port of owned VLAN objects no managed port trunks
ALL_VLANS = frozenset(range(1, 4095))


def _json(text: str) -> dict[str, Any]:
    """The JSON object in a shell answer (from its first ``{``; the prompt after it is ignored)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in {text.strip()[:80]!r}")
    obj, _end = json.JSONDecoder().raw_decode(text[start:])
    return obj


def vlan_set(spec: str) -> frozenset[int]:
    """``ALL``, ``NONE`` or ``1-99,101,200-210`` -> the VLAN IDs."""
    spec = spec.strip()
    if spec.upper() == "ALL":
        return ALL_VLANS
    if spec.upper() in ("NONE", ""):
        return frozenset()
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def _vteps(entry: Any) -> frozenset[str]:
    if isinstance(entry, dict):
        entry = list(entry.get("remoteVtepAddr") or []) + list(entry.get("remoteVtepAddr6") or [])
    return frozenset(str(ip) for ip in entry or [])


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    vxlan = _json(outputs[SHOW_VXLAN]).get("interfaces", {}).get(VXLAN_IF)
    faults: dict[str, list[str]] = {}
    if vxlan is None:
        faults["switch"] = [f"interface {VXLAN_IF} is not configured"]
        vxlan = {}
    vni_of = {int(v): int(m["vni"]) for v, m in (vxlan.get("vlanToVniMap") or {}).items()
              if isinstance(m, dict) and str(m.get("vni", "")).isdigit()}
    flood_of = {int(v): _vteps(x) for v, x in (vxlan.get("vlanToVtepList") or {}).items()}
    names = {int(v): str(d.get("name", "")) for v, d in _json(outputs[SHOW_VLAN]).get("vlans", {}).items()}

    trunks: dict[str, frozenset[int]] = {}
    not_trunk: dict[str, str] = {}
    for dev, sp in _json(outputs[SHOW_SWITCHPORT]).get("switchports", {}).items():
        info = sp.get("switchportInfo", {})
        if info.get("mode") == "trunk":
            trunks[_port(dev)] = vlan_set(str(info.get("trunkAllowedVlans", "ALL")))
        else:
            not_trunk[_port(dev)] = str(info.get("mode", "unknown"))
    managed = sorted(set(gw.ports) if gw.ports else set(trunks))
    for port in managed:
        if port in not_trunk:
            faults[f"port {port}"] = [f"not a trunk port (mode {not_trunk[port]}): silonet binds VLANs on trunks only"]

    owned = {v: vni for v, vni in vni_of.items() if names.get(v, "").startswith(MARK)}
    switches = {vni: LogicalSwitch(vni, names[v][len(MARK):], flood_of.get(v, frozenset())) for v, vni in owned.items()}
    bindings: dict[tuple[str, int], int] = {}
    for v, vni in owned.items():
        ports = [p for p in managed if v in trunks.get(p, ())]
        for port in ports or [VXLAN_IF]:
            bindings[(port, v)] = vni
    foreign = {v: names.get(v) or f"VLAN{v:04d}" for v in set(names) | set(vni_of)
               if v not in owned and not names.get(v, "").startswith(MARK)}
    foreign_bindings = {(p, v): name for v, name in foreign.items() for p in managed}
    foreign_vnis = {vni: foreign[v] for v, vni in vni_of.items() if v in foreign}
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    facts = DeviceFacts(frozenset(trunks), dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())))
    return Parsed(state, facts, {}, faults)


DIALECT = Dialect(
    name="eos",
    platform="Arista EOS (VXLAN with static head-end replication, configure session)",
    verified="documentation",
    scope="switch",
    style="shell",
    show=(PAGER_OFF, SHOW_VXLAN, SHOW_VLAN, SHOW_SWITCHPORT),
    parse=parse,
    failures=("% Invalid input", "% Incomplete command", "% Ambiguous command", "% Error"),
    folder=Path(__file__).parent,
    prompt=r"^[A-Za-z0-9_.\-]+(\([^()\s]*\))?[>#] ?$",
    remote_macs=False,
    limits=all_of(tagged_only, vlan_name_within(32)),
    notes="VLAN->VNI per switch; a binding is trunk membership of the mapped VLAN; ownership is the VLAN "
          "name silonet-<network>; documentation only",
)
