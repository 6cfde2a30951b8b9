"""The lab's state file: what was (about to be) created, written before each creation, and
which member of each gateway pair is active, and which gateways a fault took down.

Recording a name before creating the thing means a crash between the two leaves at worst
a name that ``down`` finds already gone, never a thing that ``down`` does not know about.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from silonet.lab.errors import LabError

VERSION = 1


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, Any]:
        try:
            self.data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab state at {self.path}: the lab is not up") from None
        except (OSError, ValueError) as err:
            raise LabError(f"unreadable lab state {self.path}: {err}") from None
        if self.data.get("version") != VERSION:
            raise LabError(f"lab state {self.path} has version {self.data.get('version')!r}, expected {VERSION}")
        return self.data

    def create(self, prefix: str, index: int, topology: dict[str, Any], driver: str = "ovsdb") -> None:
        self.data = {"version": VERSION, "prefix": prefix, "index": index, "driver": driver, "phase": "building",
                     "error": None, "started": now(), "finished": None, "topology": topology,
                     "netns": [], "links": [], "daemons": [], "active": {}, "faulted": []}
        self.save()

    def record(self, kind: str, name: str) -> None:
        """Note ``name`` under ``kind`` (netns, links, daemons) and persist, before it is created."""
        if name not in self.data[kind]:
            self.data[kind].append(name)
            self.save()

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def active_member(data: dict[str, Any], pair: str, members: tuple[str, ...]) -> str:
    """The member of ``pair`` that carries its anycast address and its ToRs' traffic (the first
    member until a failover says otherwise)."""
    return str((data.get("active") or {}).get(pair) or members[0])


def faulted(data: dict[str, Any]) -> list[str]:
    """Gateways taken down by ``silonet lab fault`` and not brought back."""
    return [str(g) for g in data.get("faulted") or []]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
