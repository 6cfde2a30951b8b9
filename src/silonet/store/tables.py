"""Tables. Unique constraints are the last line behind the model's invariants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false as sa_false


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """One row. Every write bumps ``generation`` first, which serializes writers."""

    __tablename__ = "meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # the last event id given: allocated under this row's lock, so ids follow commit order (events)
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class SiloRow(Base):
    __tablename__ = "silos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    apply_set: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the apply set that last applied it


class GatewayRow(Base):
    __tablename__ = "gateways"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    silo_id: Mapped[int | None] = mapped_column(ForeignKey("silos.id"), nullable=True)
    # not unique: the two members of a redundant pair share theirs (the model holds the rule, model/pairs.py)
    vtep_ip: Mapped[str] = mapped_column(String(45), nullable=False)
    pair: Mapped[str | None] = mapped_column(String(64), nullable=True)  # its redundant pair, if any
    driver: Mapped[str] = mapped_column(String(16), nullable=False)
    address: Mapped[str] = mapped_column(String(256), nullable=False)
    dialect: Mapped[str | None] = mapped_column(String(64), nullable=True)
    credentials_ref: Mapped[str | None] = mapped_column(String(256), nullable=True)
    trust_on_first_use: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                     server_default=sa_false())
    host_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # ssh: the pinned public key or fingerprint
    mode: Mapped[str] = mapped_column(String(16), nullable=False, default="enforce", server_default="enforce")
    capacity: Mapped[int] = mapped_column(Integer, nullable=False)
    # deleted from intent, its worker removing what silonet owns on the device before it is forgotten
    decommissioning: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=sa_false())
    apply_set: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the apply set that last applied it


class PortRow(Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("gateway_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    switchback: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class GroupRow(Base):
    __tablename__ = "interface_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    silo_id: Mapped[int | None] = mapped_column(ForeignKey("silos.id"), nullable=True)
    apply_set: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the apply set that last applied it


class GroupPortRow(Base):
    """A port in a group. ``port_id`` unique: groups are disjoint. ``sb_gateway_id`` is set
    only for switch-back rows, so (group, sb_gateway) unique allows one per gateway."""

    __tablename__ = "group_ports"
    __table_args__ = (
        UniqueConstraint("group_id", "sb_gateway_id"),
        Index("ix_group_ports_group_id_port_id", "group_id", "port_id"),  # a group's ports without the rows
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("interface_groups.id", ondelete="CASCADE"), nullable=False)
    port_id: Mapped[int] = mapped_column(ForeignKey("ports.id"), unique=True, nullable=False)
    sb_gateway_id: Mapped[int | None] = mapped_column(ForeignKey("gateways.id"), nullable=True)


class NetworkRow(Base):
    __tablename__ = "networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    tenant: Mapped[str] = mapped_column(String(64), nullable=False)
    vni: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    apply_set: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the apply set that last applied it


class AttachmentRow(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("group_id", "vlan"),
        Index("ix_attachments_group_id_id", "group_id", "id"),  # a group's attachments in pages
        Index("ix_attachments_network_id_group_id", "network_id", "group_id"),  # the groups of a network
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("interface_groups.id"), nullable=False)
    vlan: Mapped[int] = mapped_column(Integer, nullable=False)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False, index=True)
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False)
    apply_set: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the apply set that last applied it


class AuditRow(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    object: Mapped[str] = mapped_column(String(256), nullable=False)
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class GatewayStatusRow(Base):
    """Realization record: what the gateway should be at, what it reached, what went wrong."""

    __tablename__ = "gateway_status"
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    desired_generation: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    realized_generation: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_contact: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reachable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    faults: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    binding_errors: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    foreign: Mapped[list | None] = mapped_column(JSON, nullable=True)
    drift: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # operations the next enforce pass would apply now (observe mode's plan; null: not read)
    pending_operations: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the condition last announced on the event stream (reconcile/announce.py; null: none yet)
    condition: Mapped[str | None] = mapped_column(String(16), nullable=True)


class GatewayActualRow(Base):
    """What a gateway holds as last read (``plan/actual_json.py``), beside its realization record:
    it is O(the device) (100,000 remote MACs are 6.6 MB of JSON) and SQLite rewrites a whole row
    on any update, so while it sat in ``gateway_status`` each pass's few small columns rewrote it
    (12 ms a record at that size; a gateway of 100 VNIs flooding to 99 peers holds 160 KiB)."""

    __tablename__ = "gateway_actual"
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    actual: Mapped[dict] = mapped_column(JSON, nullable=False)


class GatewayMacsRow(Base):
    """The MACs a gateway learned (``actual``'s ``LOCAL_MACS`` part again, alone): every replica reads
    the other replicas' gateways' after each lease round (``reconcile/macs.py``), and a JSON path into
    ``actual`` parsed whole states (in SQLite a column beside ``actual`` sits behind its overflow pages)."""

    __tablename__ = "gateway_macs"
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    local_macs: Mapped[dict] = mapped_column(JSON, nullable=False)


class TokenRow(Base):
    """An API bearer token. Only its SHA-256 is stored: tokens are 256-bit random strings, so a
    fast hash is enough (no password to stretch) and a lookup is one indexed equality."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(80), nullable=False)
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class GatewayLeaseRow(Base):
    """Which ``silonet serve`` replica drives a gateway, until when (by the database's clock):
    one owner at a time, so two replicas never write one device at once. ``epoch`` grows by one
    each time a replica takes the lease and goes to the device with every write (the device
    refuses a lower one); a lease given back is expired, not deleted, so it never goes back."""

    __tablename__ = "gateway_leases"
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    epoch: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class ReplicaRow(Base):
    """A live replica's heartbeat: replicas count each other to share the gateways, even one
    that holds no lease yet."""

    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class TenantRow(Base):
    """A tenant's contract: the interface groups it may attach to (``TenantGroupRow``), its VNI
    pool and its quotas (null: unlimited). A tenant without a row keeps the defaults."""

    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    vni_first: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vni_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_networks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_attachments: Mapped[int | None] = mapped_column(Integer, nullable=True)


class TenantGroupRow(Base):
    """An interface group granted to a tenant (gone with either)."""

    __tablename__ = "tenant_groups"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("interface_groups.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)


class EventRow(Base):
    """One event of the stream (``GET /v1/events``): ``id`` from ``Meta.event_seq`` in the writing
    transaction, so every replica serves the same ids in commit order; ``tenant``: whose network it
    is about (null: admins only)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, nullable=False)


class AttachmentStatusRow(Base):
    """The status last announced for an attachment: a replica announces a change only by moving
    this row, so each change is one event whichever replica saw it."""

    __tablename__ = "attachment_status"
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebhookRow(Base):
    """Where events are POSTed; ``secret``: a reference (``env:SILONET_SECRET_*``, ``file:``),
    never the secret."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    secret: Mapped[str] = mapped_column(String(256), nullable=False)
    events: Mapped[list] = mapped_column(JSON, nullable=False)  # the event types it takes
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(80), nullable=False)


class DeliveryRow(Base):
    """One event to one webhook, until delivered or given up: a row, so it survives a restart;
    ``claimed_until`` lets one replica at a time try it."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_state_next_at", "state", "next_at"),)
    # INTEGER on SQLite: only an INTEGER PRIMARY KEY numbers itself there (a BIGINT one stays NULL)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False, index=True)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_type: Mapped[str] = mapped_column(String(16), nullable=False)
    body: Mapped[dict] = mapped_column(JSON, nullable=False)  # the event as POSTed (events may be pruned first)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # pending, delivered, failed
    attempts: Mapped[list] = mapped_column(JSON, nullable=False)  # [{time, status, error, ms}]
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
