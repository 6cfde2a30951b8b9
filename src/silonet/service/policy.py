"""The device layer's word on a gateway, for the model's invariants: does its driver and
dialect exist, and does the platform map VLAN->VNI per switch (so one VLAN ID, one VNI)."""

from __future__ import annotations

from silonet.errors import InvalidInput
from silonet.model import Gateway
from silonet.model.inventory import Proposed


class DriverPolicy:
    def check(self, gateway: Gateway) -> None:
        if gateway.management.driver == "ssh":
            from silonet.drivers.ssh.dialect import get

            get(gateway.management.dialect)
        elif gateway.management.dialect is not None:
            raise InvalidInput(field="management.dialect",
                               rule=f"a dialect is for the ssh driver, not {gateway.management.driver}")

    def switch_scoped(self, gateway: Gateway) -> str | None:
        if gateway.management.driver != "ssh":
            return None
        from silonet.drivers.ssh.dialect import get

        dialect = get(gateway.management.dialect)
        return dialect.name if dialect.scope == "switch" else None

    def default_capacity(self, driver: str, dialect: str | None) -> int:
        """A gateway's capacity when the request leaves it out: its dialect's, else 4096."""
        if driver == "ssh" and dialect:
            from silonet.drivers.ssh.dialect import dialects

            found = dialects().get(dialect)
            if found is not None and found.default_capacity:
                return found.default_capacity
        return 4096

    def refuse(self, gateway: Gateway, proposed: Proposed) -> tuple[str, str] | None:
        """The dialect's own limits (``Dialect.limits``), asked when an attachment is made."""
        if gateway.management.driver != "ssh":
            return None
        from silonet.drivers.ssh.dialect import get

        dialect = get(gateway.management.dialect)
        if dialect.limits is None:
            return None
        rule = dialect.limits(proposed)
        return None if rule is None else (dialect.name, rule)
