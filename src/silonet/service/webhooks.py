"""Webhooks (README, "Webhooks"): where the event stream is POSTed, and what became of each delivery.

A webhook names a URL, the event types it takes and a secret *reference* (``env:SILONET_SECRET_*``
or a file inside the secrets directory, fenced as gateway credentials are): the value is read
when a delivery is signed (service/dispatch.py) and never stored, answered or logged. Each event
becomes one delivery row per webhook taking its type, in the event's own transaction
(store/events.publish), so deliveries survive a restart. Writes are the Manager's transactions,
audited (``webhook/<id>``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr
from sqlalchemy import delete, func, select

from silonet.errors import Conflict, InvalidInput, NotFound
from silonet.model import rules
from silonet.service import schemas as S
from silonet.store.events import EVENT_TYPES
from silonet.store.tables import DeliveryRow, WebhookRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from silonet.service.manager import Manager

URL_MAX = 2048
URL_RULE = (f"must be an http:// or https:// URL with a host, of printable ASCII without spaces, at most {URL_MAX} "
            "characters")
WEBHOOKS_MAX = 100  # each event is one row per webhook taking it, in the event's transaction
DELIVERIES_LIMIT = (1, 1000)
STATES = ("pending", "delivered", "failed")
ID_MAX = 2**31 - 1
BEFORE_MAX = 2**63 - 1  # a delivery id (BIGINT)


def webhook_url(value: str, field: str = "url") -> str:
    """An http(s) URL with a host, nothing else: no user or password in it (it would be stored, listed
    and logged; the secret signs instead), no spaces or control characters."""
    if len(value) > URL_MAX or not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidInput(field=field, rule=URL_RULE)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a port that is not 0..65535 raises)
    except ValueError:
        raise InvalidInput(field=field, rule=URL_RULE) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput(field=field, rule=URL_RULE)
    if "@" in parts.netloc:
        raise InvalidInput(field=field, rule="must not hold a user or password (user:password@host): receivers "
                                             "check the X-Silonet-Signature made with the webhook's secret")
    return value


def event_types(value: list[str]) -> list[str]:
    """At least one known type, each once."""
    if not value:
        raise InvalidInput(field="events", rule=f"at least one event type ({', '.join(EVENT_TYPES)}); leave "
                                                "events out for all of them")
    for i, v in enumerate(value):
        if v not in EVENT_TYPES:
            raise InvalidInput(field="events", rule=f"{v!r} is not an event type ({', '.join(EVENT_TYPES)})")
        if v in value[:i]:
            raise InvalidInput(field="events", rule=f"{v!r} is listed twice")
    return value


Url = Annotated[StrictStr, AfterValidator(webhook_url), S._doc(minLength=1, maxLength=URL_MAX)]
Secret = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(S._no_nul),
                   AfterValidator(lambda v: rules.credentials(v, "secret"))]
EventType = Annotated[StrictStr, S._doc(enum=list(EVENT_TYPES))]
EventTypes = Annotated[list[EventType], AfterValidator(event_types),
                       S._doc(minItems=1, maxItems=len(EVENT_TYPES), uniqueItems=True)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="where events are POSTed: http:// or https://")
    secret: Secret = Field(description="a reference to the signing secret, never the secret itself: "
                                       "env:SILONET_SECRET_<NAME> or file:<path inside SILONET_SECRETS_DIR>")
    events: EventTypes | None = Field(default=None, description=f"the event types it takes (default all: "
                                                                f"{', '.join(EVENT_TYPES)})")


class WebhookOut(BaseModel):
    id: int
    url: str
    secret: str = Field(description="the reference, never the secret")
    events: list[str]
    created: datetime
    created_by: str


class AttemptOut(BaseModel):
    time: datetime
    status: int | None = Field(description="the receiver's HTTP status; null: no answer (error says why)")
    error: str | None
    ms: int = Field(description="how long the attempt took, in milliseconds")


class DeliveryOut(BaseModel):
    id: int = Field(description="as the X-Silonet-Delivery header carried it")
    event_id: int
    event_type: str
    state: Literal[STATES]  # type: ignore[valid-type]
    attempts: list[AttemptOut]
    created: datetime
    next_at: datetime | None = Field(description="when it is tried next (null once delivered or failed)")


def _utc(t: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time silonet shows is UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def webhook_out(row: WebhookRow) -> WebhookOut:
    return WebhookOut(id=row.id, url=row.url, secret=row.secret, events=list(row.events or EVENT_TYPES),
                      created=_utc(row.created), created_by=row.created_by)


def delivery_out(row: DeliveryRow) -> DeliveryOut:
    attempts = [AttemptOut(**a) for a in row.attempts or [] if isinstance(a, dict)]
    return DeliveryOut(id=row.id, event_id=row.event_id, event_type=row.event_type, state=row.state,
                       attempts=attempts, created=_utc(row.created),
                       next_at=_utc(row.next_at) if row.state == "pending" else None)


def _row(session: Session, webhook_id: int) -> WebhookRow:
    row = session.get(WebhookRow, webhook_id) if 1 <= webhook_id <= ID_MAX else None
    if row is None:
        raise NotFound(field="id", kind="webhook", name=str(webhook_id))
    return row


def create(m: Manager, body: WebhookIn, actor: str) -> WebhookOut:
    """A new webhook (admins only: the API checks). It takes the events committed from then on."""
    rules.fenced_credentials(body.secret, m.settings.secrets_dir, field="secret")
    with m._tx() as (repo, _inv, tx):
        s = tx.session
        if (count := s.scalar(select(func.count()).select_from(WebhookRow)) or 0) >= WEBHOOKS_MAX:
            raise Conflict(field="url", rule=f"at most {WEBHOOKS_MAX} webhooks (there are {count}): delete one first")
        row = WebhookRow(url=body.url, secret=body.secret, events=list(body.events or EVENT_TYPES),
                         created=datetime.now(UTC), created_by=actor)
        s.add(row)
        s.flush()
        out = webhook_out(row)
        tx.note(repo.audit(actor, "create", f"webhook/{row.id}", None, S.dump(out)))
    m.runtime.feed.webhook_made()
    return out


def list_(m: Manager) -> list[WebhookOut]:
    with m.db.read() as s:
        return [webhook_out(r) for r in s.scalars(select(WebhookRow).order_by(WebhookRow.id))]


def get(m: Manager, webhook_id: int) -> WebhookOut:
    with m.db.read() as s:
        return webhook_out(_row(s, webhook_id))


def delete_(m: Manager, webhook_id: int, actor: str) -> None:
    """The webhook and every delivery of it (pending ones are not sent any more; one in flight
    right now may still arrive)."""
    with m._tx() as (repo, _inv, tx):
        s = tx.session
        before = webhook_out(_row(s, webhook_id))
        s.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == webhook_id))
        s.execute(delete(WebhookRow).where(WebhookRow.id == webhook_id))
        tx.note(repo.audit(actor, "delete", f"webhook/{webhook_id}", S.dump(before), None))


def deliveries(m: Manager, webhook_id: int, limit: int = 100, before: int | None = None) -> list[DeliveryOut]:
    """The webhook's deliveries, newest first; ``before``: older than this delivery id (the next page)."""
    lo, hi = DELIVERIES_LIMIT
    if not lo <= limit <= hi:  # the API checks too; the CLI's local store relies on this one
        raise InvalidInput(field="limit", rule=f"{limit}: deliveries per page must be {lo}..{hi}")
    if before is not None and not 1 <= before <= BEFORE_MAX:
        raise InvalidInput(field="before", rule=f"{before}: a delivery id 1..{BEFORE_MAX}")
    with m.db.read() as s:
        _row(s, webhook_id)
        q = select(DeliveryRow).where(DeliveryRow.webhook_id == webhook_id)
        if before is not None:
            q = q.where(DeliveryRow.id < before)
        return [delivery_out(r) for r in s.scalars(q.order_by(DeliveryRow.id.desc()).limit(limit))]

