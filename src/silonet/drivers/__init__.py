"""Gateway drivers: one interface, one registry by name (``management.driver``)."""

from silonet.drivers.base import ActualState, ApplyResult, Driver, Health, registry

__all__ = ["ActualState", "ApplyResult", "Driver", "Health", "registry"]
