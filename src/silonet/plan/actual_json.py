"""The JSON of a gateway's actual state, as its realization record keeps it (``gateway_status.actual``):
silonet's own configuration there (``GatewayState``, under the keys of ``GatewayState.to_dict``)
and the MACs learned locally (VNI -> MACs, under ``LOCAL_MACS``).

The reconciler writes it; the manager (a gateway's status, the plan, the MACs peers learned),
the decommissioning (what may be left on a device) and the repository (which reads ``LOCAL_MACS``
alone, with a JSON path) read it. Every one of them goes through here. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from silonet.plan.state import GatewayState

LOGICAL_SWITCHES = "logical_switches"
BINDINGS = "bindings"
REMOTE_MACS = "remote_macs"
OWNED = (LOGICAL_SWITCHES, BINDINGS, REMOTE_MACS)  # the keys of GatewayState.to_dict
LOCAL_MACS = "local_macs"

LearnedMacs = dict[int, frozenset[str]]


def encode(owned: GatewayState, local_macs: Mapping[int, Iterable[str]]) -> dict[str, Any]:
    """The JSON of what a read found: the owned configuration, and the MACs learned there
    (JSON keys are strings: VNIs as decimal text, MACs sorted)."""
    return {**owned.to_dict(), LOCAL_MACS: {str(vni): sorted(macs) for vni, macs in local_macs.items()}}


def owned(data: dict[str, Any]) -> GatewayState:
    """The owned configuration of a recorded actual state."""
    return GatewayState.from_dict(data)


def owned_rows(data: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The owned configuration as its JSON rows, per kind (``OWNED``), every kind present:
    what is audited and told when a gateway is forgotten without cleaning its device."""
    return {kind: list(data.get(kind, [])) for kind in OWNED}


def local_macs(data: Mapping[str, Any] | None) -> LearnedMacs:
    """The MACs learned on the gateway, per VNI (none when it was never read)."""
    return macs(None if data is None else data.get(LOCAL_MACS))


def macs(part: Mapping[str, Iterable[str]] | None) -> LearnedMacs:
    """The ``LOCAL_MACS`` part alone, decoded (the repository reads only that part)."""
    return {int(vni): frozenset(found) for vni, found in (part or {}).items()}
