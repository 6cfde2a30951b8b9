"""Open vSwitch's C JSON parser for the OVS Python library, when PyPI's wheel lacks it.

The ``ovs`` package parses OVSDB's JSON-RPC in pure Python unless its ``ovs._json`` C
extension is present; the wheel on PyPI ships without it, which makes a 4,000-row update
take seconds. Debian's ``python3-openvswitch`` (a dependency of ``openvswitch-vtep``)
ships that extension, built from the same OVS sources: load it into the library's slot,
exactly where its own build would put it. Nothing else changes; without it the pure
Python parser stays (correct, slower).
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import sys
import sysconfig

import ovs
import ovs.json

DISTRO_DIRS = ("/usr/lib/python3/dist-packages/ovs",)


def _candidates() -> list[str]:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out: list[str] = []
    for d in DISTRO_DIRS:
        out += sorted(glob.glob(f"{d}/_json{suffix}"))
    return out


def enable() -> str:
    """Use the C parser if one can be loaded; returns which parser is in use (``C`` or ``PYTHON``)."""
    if ovs.json.PARSER == ovs.json.PARSER_C:
        return ovs.json.PARSER
    for path in _candidates():
        try:
            loader = importlib.machinery.ExtensionFileLoader("ovs._json", path)
            spec = importlib.util.spec_from_file_location("ovs._json", path, loader=loader)
            assert spec is not None
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
            parser = module.Parser(check_trailer=True)
            parser.feed('{"a":[1,"b"]}')
            if parser.finish() != {"a": [1, "b"]}:
                continue
        except Exception:
            continue
        sys.modules["ovs._json"] = module
        ovs._json = module  # type: ignore[attr-defined]
        ovs.json.ovs = ovs  # type: ignore[attr-defined]  # its failed ``import ovs._json`` left the name unbound
        ovs.json.PARSER = ovs.json.PARSER_C
        break
    return ovs.json.PARSER
