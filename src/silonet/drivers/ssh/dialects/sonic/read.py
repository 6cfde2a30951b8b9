"""What the sonic dialect reads: CONFIG_DB (either layout), the EVPN remote-VNI grid, the release
``show version`` names, and the EVPN pieces a switch must hold before silonet can serve it.

Every value here comes from the device and is untrusted: tables and entries that are not JSON
objects are skipped, names put into faults are escaped (``echo``), and what the parser hands on
is checked again by ``driver.interpret``. Sources are in the package docstring."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from silonet.drivers.base import Platform
from silonet.drivers.ssh.dialect import platform
from silonet.drivers.untrusted import echo, shown

CONFIG = "sonic-cfggen -d --print-data"
REMOTE_VNI = "show vxlan remotevni all"
VERSION = "show version"
# EVPN VXLAN (VXLAN_EVPN_NVO, `config vxlan`, fdbsyncd's VXLAN_REMOTE_VNI_TABLE, `show vxlan
# remotevni`) first shipped in the 202012 release; a build before it cannot serve silonet.
EVPN_RELEASE = (202012,)
RELEASE = re.compile(r"(?<!\d)(20\d\d)(0[1-9]|1[0-2])(?:\d\d)?(?!\d)")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
BUILD_DATE = re.compile(r"\b(" + "|".join(MONTHS) + r")\b.*?\b(20\d\d)\b")
NAME_MAX = 64

Tables = dict[str, dict[str, dict[str, Any]]]


def config_tables(text: str) -> Tables:
    """CONFIG_DB as ``sonic-cfggen -d --print-data`` prints it (table -> key -> fields), or in
    redis' own layout (``"TABLE|key"`` -> fields: sonic-utilities' mock tables; ``sonic-db-dump``
    wraps the fields as ``{"type": "hash", "value": {...}}``). Raises ValueError when the answer
    is not a JSON object."""
    text = text.strip()
    raw = json.loads(text) if text else {}
    if not isinstance(raw, dict):
        raise ValueError("sonic-cfggen did not print a JSON object")
    out: Tables = {}
    for key, value in raw.items():
        if not isinstance(value, dict):
            continue
        if "|" not in key:  # a table, as sonic-cfggen nests it
            table = out.setdefault(key, {})
            table.update({k: v for k, v in value.items() if isinstance(v, dict)})
            continue
        if value.get("type") == "hash" and isinstance(value.get("value"), dict):
            value = value["value"]
        table_name, _, name = key.partition("|")
        out.setdefault(table_name, {})[name] = value
    return out


def remote_vnis(text: str) -> dict[int, set[str]]:
    """``show vxlan remotevni all`` (a tabulate grid) -> VNI -> remote VTEP IPs."""
    out: dict[int, set[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        if len(cells) != 3 or not cells[2].isdigit():
            continue  # header, rule or anything else
        out.setdefault(int(cells[2]), set()).add(cells[1])
    return out


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def version(text: str) -> Platform:
    """``show version`` -> the platform: model = ``HwSKU`` (else ``Platform``), text = the build as
    printed (``SONiC.202311.1-8c08d87``), version = (release YYYYMM, build number). The release is
    the branch's: ``202311``, ``20201231`` (Microsoft's dated tags: 202012), ``202405c``,
    ``SONiC-AX-2210-202211``; a ``master``/``HEAD``/private build carries what master had on its
    ``Build date`` (``Fri Mar 22 01:55:48 UTC 2019``: 201903), so it reads as that month."""
    fields = _fields(text)
    build = fields.get("SONiC Software Version")
    if not build:
        raise ValueError("no 'SONiC Software Version:' line")
    branch, _, rest = build.removeprefix("SONiC.").partition(".")
    if m := RELEASE.search(branch):
        number = re.match(r"\d+", rest)
        numbers: tuple[int, ...] = (int(m[1] + m[2]), *([int(number[0])] if number else []))
    elif m := BUILD_DATE.search(fields.get("Build date", "")):
        numbers = (int(m[2]) * 100 + MONTHS.index(m[1]) + 1,)
    else:
        raise ValueError(f"no release in {shown(build)} and no 'Build date:' line to date it")
    model = fields.get("HwSKU") or fields.get("Platform") or "SONiC"
    return replace(platform(model, build), version=numbers)


def too_old(found: Platform | None) -> str | None:
    """Why a switch of this release cannot serve silonet, or None (None too when not known)."""
    if found is None or found.at_least(*EVPN_RELEASE):
        return None
    return (f"{found.text} reads as release {found.version[0]}, before 202012, the first with EVPN VXLAN "
            "(config vxlan, VXLAN_EVPN_NVO, remote VTEPs from EVPN): the sonic dialect cannot serve it")


def evpn_vtep(db: Tables, faults: dict[str, list[str]]) -> str | None:
    """The VTEP silonet's VNIs use: the one the EVPN NVO names (``config vxlan evpn_nvo add``), else
    the only VTEP. What the switch lacks for silonet is a switch fault: without an NVO, orchagent
    drops every remote VTEP EVPN learns for a VNI (VXLAN_REMOTE_VNI_TABLE: "Source VTEP not
    found"), so the VNI floods nowhere. No VTEP at all is no fault: the batch makes the VTEP and
    its NVO itself. A tunnel with ``dst_ip`` is a point-to-point (VNET) tunnel, not a VTEP."""
    vteps = sorted(k for k, t in db.get("VXLAN_TUNNEL", {}).items() if "dst_ip" not in t)
    nvos = sorted(db.get("VXLAN_EVPN_NVO", {}).items())
    lacks: list[str] = []
    found: str | None = vteps[0] if len(vteps) == 1 else None
    if nvos:
        nvo, entry = nvos[0]
        vtep = entry.get("source_vtep")
        found = str(vtep) if vtep in vteps else None
        if found is None:
            lacks.append(f"EVPN NVO {echo(nvo, NAME_MAX)} names VTEP {echo(vtep, NAME_MAX)}, which is not a "
                         "configured VTEP (VXLAN_TUNNEL with src_ip only)")
    elif vteps:
        lacks.append(f"no EVPN NVO (VXLAN_EVPN_NVO) names VTEP {', '.join(echo(v, NAME_MAX) for v in vteps)}: "
                     "SONiC drops the remote VTEPs EVPN learns without one, so no VNI here floods to another "
                     "gateway (add it: config vxlan evpn_nvo add <nvo> <vtep>)")
        if len(vteps) > 1:
            lacks.append(f"{len(vteps)} VTEPs and no EVPN NVO naming one: silonet cannot tell which carries its VNIs")
    if lacks:
        faults.setdefault("switch", []).extend(lacks)
    return found
