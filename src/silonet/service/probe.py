"""``silonet gateway probe``: connect to one gateway from where the command runs, read it the way
the reconciler does, and say what is there and what an enforce pass would change. Never writes:
the driver is started, read and closed; ``apply`` is never called.

A stored gateway is probed with its inventory's desired state (what the manager compiled for it);
an inline one (``--driver/--dialect/--address``) has none: then the probe shows the device's
content and what of it silonet would own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from silonet.drivers.base import ActualState, registry, wait_connected
from silonet.drivers.report import describe
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.plan.ops import Operation, op_to_dict
from silonet.plan.ownership import binding_errors, enforcement
from silonet.plan.state import GatewayState

CONNECT_S = 15.0


@dataclass(frozen=True)
class Probe:
    """What one probe found. ``changes``: the operations an enforce pass would apply now, and
    ``refused``: the desired bindings it would leave out, each with why (both None inline)."""

    gateway: str
    driver: str
    dialect: str | None
    address: str
    at: str
    report: dict[str, Any]
    changes: list[dict[str, Any]] | None = None
    refused: dict[str, str] | None = None
    commands: list[str] | None = None  # SSH: the lines an enforce pass would type, in order
    outputs: dict[str, str] = field(default_factory=dict)  # raw answers by command (SSH), as the device printed

    def to_dict(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "driver": self.driver, "dialect": self.dialect, "address": self.address,
                "at": self.at, **self.report, "changes": self.changes, "refused": self.refused,
                "commands": self.commands}



def capture_target(gateway: Gateway, vtep_known: bool) -> dict[str, Any]:
    """The gateway as a capture's ``case.yaml`` names it (no VTEP address when it was not given)."""
    return {"name": gateway.name, "vtep_ip": gateway.vtep_ip if vtep_known else None,
            "ports": [p.name for p in gateway.ports], "switchbacks": [p.name for p in gateway.ports if p.switchback]}


def would_change(desired: GatewayState, actual: ActualState) -> tuple[list[Operation], dict[str, str]]:
    """What a whole enforce pass would apply now (foreign state and the platform's refusals left
    out, as the worker leaves them out) and the bindings it would refuse, each with why."""
    _effective, failures, ops = enforcement(desired, actual.owned, actual.facts)
    return ops, binding_errors(failures)


@dataclass(frozen=True)
class Unread:
    """A probe that could not read or understand the device: why, and the answers it got before
    (saved with ``--save``: the capture that shows what did not parse)."""

    error: DeviceError
    outputs: dict[str, str]
    at: str


async def probe(gateway: Gateway, desired: GatewayState | None, inline_vtep: bool = False,
                timeout: float = CONNECT_S) -> Probe | Unread:
    """Read ``gateway`` once. ``desired`` None: no intent to compare (inline). ``inline_vtep``: the
    gateway's VTEP address was not given, so the device's own is not compared with it.
    ``Unread`` when the device cannot be reached, read or understood (its reason names the
    command that failed)."""
    # a probe records nothing, a host key first seen included: it is the gateway's or known_hosts' or refused
    gateway = replace(gateway, management=replace(gateway.management, trust_on_first_use=False))
    driver = registry(gateway.management.driver)(gateway, lambda: None)
    if inline_vtep:
        driver.vtep_known = False
        if hasattr(driver, "target"):
            driver.target = replace(driver.target, vtep_ip="")  # no inventory address to compare the device's with
    at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        await driver.start()
        await wait_connected(driver, timeout)
        actual = await driver.read()
    except DeviceError as err:
        return Unread(err, dict(getattr(driver, "outputs", {}) or {}), at)
    finally:
        await driver.close()
    changes = refused = commands = None
    if desired is not None:
        ops, refused = would_change(desired, actual)
        changes = [op_to_dict(op) for op in ops]
        preview = getattr(driver, "preview", None)
        if preview is not None:
            try:
                commands = preview(ops)
            except DeviceError as err:  # the dialect refuses the batch: the pass would send nothing
                commands = [f"# nothing would be sent: {err.fields.get('reason', err)}"]
    return Probe(gateway.name, gateway.management.driver, gateway.management.dialect, gateway.management.address,
                 at, describe(actual), changes, refused, commands, dict(getattr(driver, "outputs", {}) or {}))
