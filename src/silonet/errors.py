"""One error root for the whole manager.

Every error carries keyword fields and builds its message from them, so the API, the CLI
and the logs say the same thing. The HTTP status mapping lives in ``api/errors.py`` only.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SilonetError(Exception):
    """Root of every error silonet raises on purpose."""

    code: ClassVar[str] = "error"
    template: ClassVar[str] = "{message}"

    def __init__(self, field: str | None = None, **fields: Any) -> None:
        self.field = field
        self.fields = fields
        self.more: list[SilonetError] = []  # further problems of the same request (``problems``)
        super().__init__(self.template.format(field=field, **fields))

    @property
    def message(self) -> str:
        return str(self)

    @property
    def problems(self) -> list[SilonetError]:
        """Every problem of the request, this one first: a request with three mistakes hears of
        all three at once (the API's ``problems``, one CLI line each)."""
        return [self, *self.more]

    def with_more(self, more: list[SilonetError]) -> SilonetError:
        self.more = list(more)
        return self


class InvalidInput(SilonetError, ValueError):
    """A value breaks a rule of its field (malformed input).

    A ValueError too, so pydantic reports it with the full location of the field."""

    code = "invalid"
    template = "{field}: {rule}"


class NotFound(SilonetError):
    """A name refers to nothing. ``by``: who refers to it (``interface group 'g1' lists it in
    members``), so a mistake in one group of a large file is found without a search."""

    code = "not_found"
    template = "{kind} '{name}' does not exist{by}"

    def __init__(self, field: str | None = None, *, by: str = "", **fields: Any) -> None:
        super().__init__(field, by=f" ({by})" if by else "", **fields)


class Conflict(SilonetError):
    """The request is well formed but breaks an invariant against stored state."""

    code = "conflict"
    template = "{rule}"


class InUse(Conflict):
    """An object cannot be removed or changed while others refer to it."""

    code = "in_use"
    template = "{kind} '{name}' is still used by {users}"


class OverCapacity(Conflict):
    """A gateway would need more VLAN->VNI entries than its ASIC holds."""

    code = "over_capacity"
    template = "gateway '{gateway}' over capacity: {detail}"


class DeviceError(SilonetError):
    """A gateway refused or failed an operation."""

    code = "device_error"
    template = "gateway '{gateway}': {reason}"


class Fenced(DeviceError):
    """The device holds a newer lease epoch than the writer's: another replica took the gateway
    over while this one was stalled, so this write would land after its successor's. Nothing was
    written (docs/architecture.md, "Leases and the epoch")."""

    code = "fenced"

    def __init__(self, field: str | None = None, *, gateway: str, epoch: int, device: int, **fields: Any) -> None:
        super().__init__(field, gateway=gateway, epoch=epoch, device=device, reason=(
            f"write refused: the device holds lease epoch {device}, newer than this replica's {epoch} "
            "(another replica took the gateway over)"), **fields)


class Unauthorized(SilonetError):
    """No bearer token, or one that is unknown or revoked."""

    code = "unauthorized"
    template = "{reason}"


class Forbidden(SilonetError):
    """A valid token whose role may not do this."""

    code = "forbidden"
    template = "{rule}"
