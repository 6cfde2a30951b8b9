"""What a read of a device means, as data people and tests read: ``describe`` (the device's
platform, tunnel source, ports, silonet's own state, everyone else's, the faults) and the
*capture* layout that ``silonet gateway probe --save`` writes and the parser tests on captured
device output read (``tests/drivers/ssh/corpus/<dialect>/<case>/``):

- ``case.yaml``: ``dialect``; ``source`` (where the outputs come from: ``repository``, ``path``,
  ``commit``; or ``package``, ``version``, ``path``; or ``probe`` for a capture of one's own);
  ``platform`` (model and version, as the source says); ``target`` (the gateway as the inventory
  names it: ``name``, ``vtep_ip``, ``ports``, ``switchbacks``); ``outputs`` (command -> file in
  the folder, the device's words unchanged); ``filled`` (commands the source did not capture,
  each ``{file, why}``: what a device prints when it holds nothing of that kind); ``expected``
  (what the device holds, written from the source, never from a parser's output: ``describe``'s
  keys, faults as substrings) or, in a capture just saved, ``parsed`` (the parser's reading, to
  check before renaming it ``expected``; ``{error}`` when the read failed: the answers got until then are kept).
- one file per command (``slug``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from silonet.drivers.base import ActualState

CASE_FILE = "case.yaml"


def describe(actual: ActualState) -> dict[str, Any]:
    """A read as plain data: what ``silonet gateway probe`` prints and the parser tests compare."""
    f = actual.facts
    return {
        "platform": actual.platform.to_dict() if actual.platform is not None else None,
        "vtep_ip": actual.vtep_ip,
        "ports": sorted(f.ports) if f.ports is not None else None,
        "unusable": dict(sorted(f.unusable.items())),  # ports silonet must not bind on, each with why
        "owned": actual.owned.to_dict(),
        "foreign": {
            "vnis": {vni: name for vni, name in sorted(f.foreign_vnis.items())},
            "bindings": [{"port": port, "vlan": vlan, "logical_switch": ls}
                         for (port, vlan), ls in sorted(f.foreign_bindings.items())],
            "names": sorted(f.foreign_names),
            "flood": sorted(f.foreign_flood),
        },
        "faults": {where: list(found) for where, found in sorted(actual.faults.items())},
    }


def slug(command: str) -> str:
    """The file a command's answer is kept in: ``show vlan | json`` -> ``show_vlan_json.txt``."""
    return (re.sub(r"[^A-Za-z0-9]+", "_", command).strip("_")[:100] or "output") + ".txt"


@dataclass(frozen=True)
class Case:
    """A capture of one device's answers, with what they mean (``expected``) or what a parser made
    of them (``parsed``)."""

    folder: Path
    dialect: str
    outputs: dict[str, str]
    target: dict[str, Any]
    source: dict[str, Any] = field(default_factory=dict)
    platform: dict[str, Any] | None = None
    filled: dict[str, str] = field(default_factory=dict)  # command -> why the capture lacks it
    expected: dict[str, Any] | None = None
    parsed: dict[str, Any] | None = None


def save_case(folder: Path, dialect: str, outputs: Mapping[str, str], target: Mapping[str, Any],
              source: Mapping[str, Any], parsed: Mapping[str, Any]) -> Path:
    """Write a capture in the layout the parser tests read; returns its ``case.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for command, answer in outputs.items():
        name = slug(command)
        while name in files.values():
            name = "_" + name
        files[command] = name
        (folder / name).write_text(answer)
    doc = {"dialect": dialect, "source": dict(source), "platform": parsed.get("platform"), "target": dict(target),
           "outputs": files, "parsed": dict(parsed)}
    path = folder / CASE_FILE
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def load_case(folder: Path) -> Case:
    """A capture folder; ValueError naming the file and what is wrong with it."""
    path = folder / CASE_FILE
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), dict) or not doc.get("dialect"):
        raise ValueError(f"{path}: needs `dialect` and `outputs` (command -> file)")
    outputs = {str(cmd): (folder / str(name)).read_text() for cmd, name in doc["outputs"].items()}
    filled: dict[str, str] = {}
    for cmd, spec in (doc.get("filled") or {}).items():
        if not isinstance(spec, dict) or not spec.get("file") or not spec.get("why"):
            raise ValueError(f"{path}: filled {cmd!r} needs `file` and `why`")
        outputs[str(cmd)] = (folder / str(spec["file"])).read_text()
        filled[str(cmd)] = str(spec["why"])
    return Case(folder, str(doc["dialect"]), outputs, dict(doc.get("target") or {}), dict(doc.get("source") or {}),
                doc.get("platform"), filled, doc.get("expected"), doc.get("parsed"))
