"""Reading the event stream (store/events.py writes it): where a reader starts, what it may see,
the next events after its position. The API streams them as Server-Sent Events (api/events.py),
the CLI's local store follows them the same way (``silonet events``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from silonet.service import Manager
from silonet.store import events
from silonet.store.tables import EventRow

BATCH = 500
RESYNC = "/v1/export"


def shown(data: dict[str, Any], tenant: str | None) -> dict[str, Any]:
    """An event's data as the caller may read it: a tenant reads an attachment's reason in general
    terms, without the gateways behind it."""
    out = {k: v for k, v in data.items() if k != "tenant_reason"}
    if tenant is not None and data.get("type") == "attachment":
        out["reason"] = data.get("tenant_reason")
        out.pop("gateways", None)
    return out


class Stream:
    """One reader's position in the stream."""

    def __init__(self, manager: Manager, tenant: str | None, after: int | None) -> None:
        """``tenant``: a tenant's token reads its networks' events only (None: an admin)."""
        self.m, self.tenant, self.after = manager, tenant, after

    def start(self) -> str | None:
        """Where to begin; an error message when ``after`` is no longer (or not yet) kept."""
        with self.m.db.read() as s:
            newest, oldest = events.last_id(s), events.oldest_id(s)
        if self.after is None:
            self.after = newest
            return None
        if self.after > newest:
            return f"event {self.after} does not exist yet (the newest is {newest}): resync from {RESYNC}"
        if self.after < newest and (oldest is None or self.after + 1 < oldest):
            return (f"events after {self.after} are no longer kept (the oldest kept is "
                    f"{oldest if oldest is not None else 'none'}): resync from {RESYNC}, then follow from the "
                    f"newest event")
        return None

    def read(self) -> tuple[list[tuple[int, str, dict[str, Any]]], bool]:
        """The next events the reader may see, and whether more may follow at once (a whole batch
        was scanned). The position moves past every event scanned, seen or not, so a quiet tenant's
        next read starts at the newest event, not where its last visible one was."""
        q = (select(EventRow.id, EventRow.type, EventRow.time, EventRow.data, EventRow.tenant)
             .where(EventRow.id > self.after).order_by(EventRow.id).limit(BATCH))
        with self.m.db.read() as s:
            rows = s.execute(q).all()
        if rows:
            self.after = rows[-1][0]
        seen = [(i, kind, shown(events.body(i, t, kind, data), self.tenant)) for i, kind, t, data, owner in rows
                if self.tenant is None or owner == self.tenant]
        return seen, len(rows) == BATCH
