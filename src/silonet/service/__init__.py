"""Use cases: each one is one database transaction with the invariants checked inside."""

from silonet.service.manager import Manager

__all__ = ["Manager"]
