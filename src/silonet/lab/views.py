"""What ``Lab.status`` and ``Lab.inventory`` say, built from the layout and the state file.

Pair members are listed like any gateway, with ``pair`` and, in the status, ``active`` and
``down``; a host behind a dual-homed ToR names its pair's active member as its gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from silonet.lab import daemons
from silonet.lab.layout import SSH_DIALECT, GatewayLayout, LabLayout
from silonet.lab.netns import link_exists, netns_exists
from silonet.lab.ssh import public_key
from silonet.lab.state import active_member, faulted


def status(layout: LabLayout, data: dict[str, Any], lab_dir: Path) -> dict[str, Any]:
    """See ``Lab.status``."""
    topo = layout.topology
    hosts = {h.name: h for h in layout.hosts()}
    active = {p.name: active_member(data, p.name, p.members) for p in layout.pairs}
    down = set(faulted(data))
    silos = [
        {"name": s.name, "kind": s.kind, "description": s.description, "hosts": [
            {"name": h.name, "netns": hosts[h.name].netns, "vlan": h.vlan, "ip": h.ip, "interface_group": g.name,
             "mac": hosts[h.name].mac, "gateway": active.get(t.gateway, t.gateway), "port": t.port,
             "tor": hosts[h.name].tor_bridge}
            for g in s.groups for t in g.tors for h in t.hosts]}
        for s in topo.silos
    ]
    gateways = [
        {"name": g.name, "netns": g.netns, "ovsdb": g.ovsdb, "ssh": g.ssh_address if g.sshd else None,
         "driver": g.driver, "silo": g.silo, "vtep_ip": g.vtep_ip,
         "mgmt_ip": g.mgmt_ip, "dir": str(g.dir), "vtep_ports": g.vtep_ports,
         "daemons": {d: daemons.running_pid(g, d) for d in daemons.gateway_daemons(g)},
         "pair": g.pair, "active": active[g.pair] == g.name if g.pair else None, "down": g.name in down}
        for g in layout.gateways
    ]
    pairs = [{"name": p.name, "members": list(p.members), "vtep_ip": p.vtep_ip, "mac": p.mac,
              "active": active[p.name], "tors": list(p.tors)} for p in layout.pairs]
    tors = [{"name": t.name, "netns": t.netns, "pair": t.pair, "interface_group": t.group, "port": t.port,
             "uplinks": {m: t.uplink_if(m) for m in t.members}, "active": active[t.pair], "dir": str(t.dir),
             "daemons": {d: daemons.running_pid(t, d) for d in daemons.gateway_daemons(t)}}
            for t in layout.dual_tors]
    missing = [ns for ns in data.get("netns", []) if not netns_exists(ns)]
    missing += [link for link in data.get("links", []) if not link_exists(link)]
    return {"prefix": layout.prefix, "index": layout.index, "phase": data.get("phase"), "error": data.get("error"),
            "topology": topo.name, "driver": layout.driver, "dir": str(lab_dir),
            "underlay": str(layout.underlay_net), "management": str(layout.mgmt_net),
            "known_hosts": str(layout.known_hosts) if layout.ssh else None,
            "client_key": str(layout.client_key) if layout.ssh else None,
            "missing": missing, "silos": silos, "gateways": gateways, "pairs": pairs, "dual_homed_tors": tors}


def inventory(layout: LabLayout) -> dict[str, Any]:
    """See ``Lab.inventory``. A dual-homed ToR's group lists its port on both members."""
    topo = layout.topology
    return {
        "silos": [{"name": s.name, "kind": s.kind, "description": s.description} for s in topo.silos],
        "gateways": [
            {"name": g.name, "silo": g.silo, **({"pair": g.pair} if g.pair else {}), "vtep_ip": g.vtep_ip,
             "management": _management(layout, g), "capacity": g.capacity, "ports": g.inventory_ports}
            for g in layout.gateways
        ],
        "interface_groups": [
            {"name": grp.name, "silo": s.name,
             "members": [{"gateway": r.gateway, "port": r.port} for t in grp.tors for r in topo.uplinks(t)],
             "switchback": [{"gateway": r.gateway, "port": r.port} for r in grp.switchback]}
            for s in topo.silos for grp in s.groups
        ],
    }


def _management(layout: LabLayout, gw: GatewayLayout) -> dict[str, Any]:
    if gw.driver == "ssh":
        management = {"driver": "ssh", "dialect": SSH_DIALECT, "address": gw.ssh_address,
                      "credentials": f"file:{layout.client_key}"}
        if gw.host_key.with_name(gw.host_key.name + ".pub").is_file():  # made by `up`; not for a topology laid out
            management["host_key"] = public_key(gw.host_key)
        return management
    return {"driver": "ovsdb", "address": gw.ovsdb}
