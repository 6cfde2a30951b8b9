"""Rules an object stored by an older version may break.

Names written now follow ``rules.new_name``, management addresses ``rules.new_address``; rows
stored before still load (a store must open after an upgrade), and each such object carries the
rules it breaks, shown by the API and the CLI as ``violations``. A network among them is compiled
onto no device (``Inventory.quarantined``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from silonet.model import rules
from silonet.model.entities import Gateway, InterfaceGroup, Silo, VirtualNetwork


def _names(pairs: Iterable[tuple[str, str | None]]) -> list[str]:
    return [f"{field}: {value!r} {why}" for field, value in pairs
            if value is not None and (why := rules.name_violation(value)) is not None]


def violations(obj: Silo | Gateway | InterfaceGroup | VirtualNetwork,
               credentials: Callable[[str], str | None] | None = None) -> list[str]:
    """``field: value rule`` for every rule ``obj`` breaks that its version of silonet did not have;
    ``credentials`` judges a gateway's secret reference (the fence needs the secrets directory)."""
    if isinstance(obj, VirtualNetwork):
        return _names((("name", obj.name), ("tenant", obj.tenant)))
    if isinstance(obj, Gateway):
        out = _names([("name", obj.name), ("silo", obj.silo)] + [("ports.name", p.name) for p in obj.ports])
        m = obj.management
        if (why := rules.address_violation(m.driver, m.address)) is not None:
            out.append(f"management.address: {m.address!r} {why}")
        ref = obj.management.credentials
        if credentials is not None and ref is not None and (why := credentials(ref)) is not None:
            out.append(f"management.credentials: {why}")
        return out
    if isinstance(obj, Silo):
        return _names((("name", obj.name),))
    return _names((("name", obj.name), ("silo", obj.silo)))


def quarantine_rule(network: str) -> str | None:
    """Why a network stored under older name rules is compiled onto no device (None: it is not)."""
    why = rules.name_violation(network)
    return None if why is None else f"network name {network!r} {why}"


def quarantine_reason(rule: str) -> str:
    """Why a network stored under older rules is on no device, and what the operator does about it."""
    return (f"{rule}; it was stored by an older version and is configured on no gateway: delete it and "
            "create it again under a name that follows the rule")
