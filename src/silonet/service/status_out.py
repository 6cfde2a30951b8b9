"""What the API answers about the gateways' realization: each one's status, the summary a poller
reads, a gateway's full status and the plan (re-exported by ``service.schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

PAIR = ("the redundant pair (MLAG, vPC) this gateway is a member of: the two members of a pair "
        "share one vtep_ip (the anycast VTEP), one silo and one driver (and dialect); null: no pair")


class RealizationOut(BaseModel):
    gateway: str
    state: Literal["pending", "realized", "failed", "held", "decommissioning"] = Field(
        description="held: in observe or maintenance mode (silonet writes nothing there); decommissioning: deleted "
                    "from intent, silonet removes its configuration from the device, then forgets the gateway")
    mode: str = Field(default="enforce", description="enforce, observe (read and planned, never written) or "
                                                     "maintenance (not contacted)")
    reachable: bool | None = Field(description="null until the reconciler tried")
    pair: str | None = Field(default=None, description=PAIR)
    desired_generation: int
    realized_generation: int
    drift: int | None = Field(description="operations the device lacks (null until read)")
    pending_operations: int | None = Field(default=None, description=(
        "operations the next enforce pass would apply now, as last read (observe mode: what silonet holds back); "
        "null while unknown (never read, or in maintenance mode)"))
    faults: dict[str, list[str]] = Field(default_factory=dict)
    binding_errors: dict[str, str] = Field(default_factory=dict, description="'port/vlan' -> why it is not bound")
    last_error: str | None
    last_contact: datetime | None
    owner: str | None = Field(default=None, description="the `silonet serve` replica driving the gateway now "
                                                        "(null: none holds its lease)")


class StatusSummaryOut(BaseModel):
    gateways: int
    states: dict[str, int] = Field(description="gateways per state, as `GET /v1/status` gives each one's")
    with_errors: int = Field(description="gateways whose last pass failed or left a binding unbound "
                                         "(`last_error` or `binding_errors` in `GET /v1/status`)")


class GatewayStatusOut(RealizationOut):
    foreign: list[dict[str, Any]] = Field(default_factory=list, description="state on the device silonet does not own")
    desired: dict[str, Any]
    actual: dict[str, Any] | None = Field(description=(
        "as last read from the device; null until read (the replica driving the gateway answers with its "
        "latest read, others with the recorded one, which is at most a second behind)"))
    repair: list[dict[str, Any]] | None = Field(
        description="operations that would bring the device from actual to desired; null until read")


class GatewayForgottenOut(BaseModel):
    """A gateway forgotten before its device was cleaned (``force``, or no reconciler runs)."""

    gateway: str
    left: dict[str, Any] | None = Field(description=(
        "silonet's configuration that may be left on the device: the owned part of its last read state "
        "(null: never read)"))
    message: str


class GatewayPlanOut(BaseModel):
    gateway: str
    mode: str = Field(default="enforce", description="observe: these operations wait for the gateway to be "
                                                     "switched to enforce; maintenance: nothing is read or written")
    actual_known: bool
    entries: int
    capacity: int
    operations: list[dict[str, Any]]


class PlanOut(BaseModel):
    generation: int
    gateways: list[GatewayPlanOut]
