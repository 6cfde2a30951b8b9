"""What an EOS switch's show answers mean to silonet (the ``eos`` dialect's parser and version reader).

Each fact relied on, with where it comes from, is in the package docstring; the captured answers
this reads are in tests/drivers/ssh/corpus/eos/.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import Parsed, Target, platform
from silonet.drivers.untrusted import bounded_range, echo
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

VERSION = "show version | json"
SHOW_VXLAN = "show interfaces Vxlan1 | json"
SHOW_VLAN = "show vlan | json"
SHOW_SWITCHPORT = "show interfaces switchport | json"
MARK = "silonet-"
VXLAN_IF = "Vxlan1"  # also the pseudo-port of owned VLAN objects no managed port trunks
ALL_VLANS = frozenset(range(1, 4095))
# ``vlanToVniMap.<vlan>.source`` of a mapping configured with ``vxlan vlan``; any other source
# (``evpn``: a VLAN EOS made for a VRF's VNI) is the switch's own doing, never silonet's
CONFIGURED = frozenset({"", "static"})


def _json(text: str) -> dict[str, Any]:
    """The JSON object in an answer (from its first ``{``: shell reads keep the prompt after it,
    and eAPI-shaped captures wrap it in a result list)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in {echo(text.strip(), 80)!r}")
    obj, _end = json.JSONDecoder().raw_decode(text[start:])
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON object: {echo(text.strip(), 80)!r}")
    return obj


def version(answer: str) -> Platform:
    """``show version | json``: ``modelName`` and ``version`` (e.g. ``vEOS``, ``4.23.5M``)."""
    shown = _json(answer)
    return platform(shown.get("modelName", ""), shown["version"])


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
        out.update(bounded_range(lo, hi or lo, "VLAN"))
    return frozenset(out)


def _vteps(entry: Any) -> frozenset[str]:
    if isinstance(entry, dict):
        entry = list(entry.get("remoteVtepAddr") or []) + list(entry.get("remoteVtepAddr6") or [])
    return frozenset(str(ip) for ip in entry or [])


def _vni(value: Any) -> int | None:
    """A VNI as EOS prints it: ``{"vni": N, ...}`` in ``vlanToVniMap``, a bare N in ``vrfToVniMap``."""
    if isinstance(value, dict):
        value = value.get("vni")
    return int(value) if str(value).isdigit() else None


def _port(device_name: str) -> str:
    return device_name.replace("/", "_")


def _vxlan(answer: str) -> tuple[dict[str, Any] | None, str | None]:
    """Vxlan1 as ``show interfaces Vxlan1 | json`` shows it, or None with why. EOS answers a show
    of an interface that does not exist with a ``%`` line, not JSON."""
    if "{" not in answer and answer.strip().startswith("%"):
        return None, f"interface {VXLAN_IF} is not configured (the switch says {echo(answer.strip(), 80)!r})"
    found = _json(answer).get("interfaces", {}).get(VXLAN_IF)
    return (found, None) if isinstance(found, dict) else (None, f"interface {VXLAN_IF} is not configured")


def parse(outputs: Mapping[str, str], gw: Target) -> Parsed:
    vxlan, missing = _vxlan(outputs[SHOW_VXLAN])
    faults: dict[str, list[str]] = {"switch": [missing]} if missing else {}
    vxlan = vxlan or {}
    vni_of: dict[int, int] = {}
    dynamic: set[int] = set()  # VLANs whose mapping the switch made (EVPN), not configuration
    for v, m in (vxlan.get("vlanToVniMap") or {}).items():
        if (vni := _vni(m)) is not None:
            vni_of[int(v)] = vni
            if isinstance(m, dict) and str(m.get("source") or "") not in CONFIGURED:
                dynamic.add(int(v))
    vrf_vnis = {vni: f"vrf {name}" for name, m in (vxlan.get("vrfToVniMap") or {}).items()
                if (vni := _vni(m)) is not None}
    flood_of = {int(v): _vteps(x) for v, x in (vxlan.get("vlanToVtepList") or {}).items()}
    source = vxlan.get("srcIpAddr")
    vtep_ip = source if isinstance(source, str) and source not in ("", "0.0.0.0") else None
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

    owned = {v: vni for v, vni in vni_of.items() if names.get(v, "").startswith(MARK) and v not in dynamic}
    switches = {vni: LogicalSwitch(vni, names[v][len(MARK):], flood_of.get(v, frozenset())) for v, vni in owned.items()}
    bindings: dict[tuple[str, int], int] = {}
    for v, vni in owned.items():
        ports = [p for p in managed if v in trunks.get(p, ())]
        for port in ports or [VXLAN_IF]:
            bindings[(port, v)] = vni
    foreign = {v: names.get(v) or f"VLAN{v:04d}" for v in set(names) | set(vni_of)
               if v not in owned and (v in dynamic or not names.get(v, "").startswith(MARK))}
    foreign_bindings = {(p, v): name for v, name in foreign.items() for p in managed}
    foreign_vnis = {**vrf_vnis, **{vni: foreign[v] for v, vni in vni_of.items() if v in foreign}}
    state = GatewayState(dict(sorted(switches.items())), dict(sorted(bindings.items())))
    facts = DeviceFacts(frozenset(trunks), dict(sorted(foreign_bindings.items())), dict(sorted(foreign_vnis.items())))
    return Parsed(state, facts, {}, faults, vtep_ip)
