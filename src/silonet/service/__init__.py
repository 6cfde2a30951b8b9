"""Use cases: each one is one database transaction with the invariants checked inside."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from silonet.service.manager import Manager

__all__ = ["Manager"]


def __getattr__(name: str) -> Any:
    """``Manager`` loads the store (SQLAlchemy, Alembic) on first use: a CLI talking to a
    server never needs them, and starts half a second sooner."""
    if name == "Manager":
        from silonet.service.manager import Manager

        return Manager
    raise AttributeError(name)
