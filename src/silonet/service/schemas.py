"""Request and response shapes shared by the API, the CLI and the YAML loader.

Field names are the API contract (README, "REST API"). Value rules come from ``model.rules`` so the
API, the CLI and the model say the same thing about the same bad value.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from silonet.errors import InvalidInput, SilonetError
from silonet.model import Gateway, InterfaceGroup, Management, Port, PortRef, Silo, SiloKind, VirtualNetwork, rules
from silonet.model.legacy import violations
from silonet.plan.status import Status
from silonet.service.problems import describe_errors, validate  # noqa: F401 (callers import them from here)
from silonet.service.status_out import (  # noqa: F401 (callers import them from here)
    PAIR,
    GatewayForgottenOut,
    GatewayPlanOut,
    GatewayStatusOut,
    PlanOut,
    RealizationOut,
    StatusSummaryOut,
)


# ``rules`` check the values (one message everywhere); ``_doc`` tells the OpenAPI document the same
# bounds, so clients and fuzzers see them without pydantic's own checks and messages.
def _doc(**bounds: Any) -> Any:
    return Field(json_schema_extra=bounds)


# Names in a request follow today's rule (``rules.new_name``); older stored names that break it
# are still read, listed and deleted through paths (``api.app.NamePath``), never written anew.
Name = Annotated[StrictStr, AfterValidator(lambda v: rules.new_name(v)),
                 _doc(minLength=1, maxLength=rules.NAME_MAX, pattern=f"^{rules.NEW_NAME_RE.pattern}$")]
Vlan = Annotated[StrictInt, AfterValidator(lambda v: rules.vlan(v)),
                 _doc(minimum=rules.VLAN_MIN, maximum=rules.VLAN_MAX)]
Vni = Annotated[StrictInt, AfterValidator(lambda v: rules.vni(v)), _doc(minimum=rules.VNI_MIN, maximum=rules.VNI_MAX)]
Capacity = Annotated[StrictInt, AfterValidator(lambda v: rules.capacity(v)),
                     _doc(minimum=1, maximum=rules.CAPACITY_MAX)]
IPv4 = Annotated[StrictStr, AfterValidator(lambda v: rules.ipv4(v)), _doc(format="ipv4")]


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold U+0000 (SQLite can): refused here, not as a 500 there."""
    if "\x00" in value:
        raise InvalidInput(field="text", rule="must not contain the NUL character (U+0000)")
    return value


Text = Annotated[StrictStr, Field(max_length=1024), AfterValidator(_no_nul)]
HostKey = Annotated[StrictStr, AfterValidator(lambda v: rules.host_key(v)), _doc(maxLength=rules.HOST_KEY_MAX)]
Mode = Annotated[StrictStr, AfterValidator(lambda v: rules.mode(v)), _doc(enum=list(rules.MODES))]
Ref = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(_no_nul)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiloIn(_In):
    name: Name
    kind: SiloKind = SiloKind.OTHER
    description: Text = ""

    def entity(self) -> Silo:
        return Silo(self.name, self.kind, self.description)


class ManagementIn(_In):
    driver: Literal[rules.DRIVERS]  # type: ignore[valid-type]
    address: Ref | None = Field(default=None, description="ovsdb: tcp:|ssl:|unix: endpoint; ssh: [user@]host[:port]; "
                                                        "memory: optional (default memory:<gateway>)")
    dialect: Name | None = None
    credentials: Ref | None = Field(
        default=None, description="A reference to credentials, never the secret itself: env:SILONET_SECRET_<NAME> "
                                  "or file:<path inside SILONET_SECRETS_DIR>"
    )
    trust_on_first_use: StrictBool = Field(
        default=False, description="ssh: accept and record an unknown host key once (off: known_hosts only)")
    host_key: HostKey | None = Field(
        default=None, description="ssh: the device's host key, pinned: an OpenSSH public key line or a SHA256: "
                                  "fingerprint (then known_hosts and trust on first use are not consulted)")

    @model_validator(mode="after")
    def _address_form(self) -> ManagementIn:
        """Written addresses follow the driver's form (stored older ones load, flagged: ``legacy``)."""
        if self.address is not None:
            rules.new_address(self.driver, self.address, "management.address")
        return self


class PortIn(_In):
    name: Name
    switchback: StrictBool = False



class GatewayIn(_In):
    name: Name
    silo: Name | None = None
    vtep_ip: IPv4
    management: ManagementIn
    capacity: Capacity | None = Field(
        default=None, description="VLAN->VNI entries the device holds; default: the dialect's (ALAXALA AX: "
                                  "8192), else 4096")
    ports: list[PortIn] = Field(default_factory=list, max_length=4096)
    mode: Mode = Field(default="enforce", description="enforce: silonet configures the device; observe: it reads "
                                                      "and plans, never writes; maintenance: it does not contact it")
    pair: Name | None = Field(default=None, description=PAIR)

    @model_validator(mode="after")
    def _ports(self) -> GatewayIn:
        counts = Counter(p.name for p in self.ports)
        twice = [n for n, k in counts.items() if k > 1]
        found: list[SilonetError] = [
            InvalidInput(field="ports", rule=f"port '{n}' is listed twice on gateway '{self.name}'") for n in twice]
        if found:
            raise found[0].with_more(found[1:])
        return self

    @model_validator(mode="after")
    def _address(self) -> GatewayIn:
        m = self.management
        if m.address is None and rules.default_address(m.driver, self.name) is None:
            raise InvalidInput(field="management.address", rule=f"the {m.driver} driver needs an address")
        return self

    def entity(self, default_capacity: int = 4096) -> Gateway:
        m = self.management
        return Gateway(
            name=self.name,
            vtep_ip=self.vtep_ip,
            management=Management(m.driver, m.address or rules.default_address(m.driver, self.name) or "",
                                  m.dialect, m.credentials, m.trust_on_first_use, m.host_key),
            capacity=self.capacity if self.capacity is not None else default_capacity,
            ports=tuple(Port(p.name, p.switchback) for p in self.ports),
            silo=self.silo,
            mode=self.mode,
            pair=self.pair,
        )


class PortRefIn(_In):
    gateway: Name
    port: Name


class GroupIn(_In):
    name: Name
    silo: Name | None = None
    members: list[PortRefIn] = Field(default_factory=list, max_length=4096)
    switchback: list[PortRefIn] = Field(default_factory=list, max_length=4096)

    def entity(self) -> InterfaceGroup:
        return InterfaceGroup(
            name=self.name,
            members=tuple(PortRef(r.gateway, r.port) for r in self.members),
            switchback=tuple(PortRef(r.gateway, r.port) for r in self.switchback),
            silo=self.silo,
        )


class NetworkIn(_In):
    name: Name
    tenant: Name
    vni: Vni | None = Field(default=None, description="1..16777215; allocated from the pool when absent")


class AttachmentIn(_In):
    interface_group: Name
    vlan: Vlan


class TokenIn(_In):
    role: Literal["admin", "tenant"]
    tenant: Name | None = Field(default=None, description="required for role tenant, absent for admin")
    description: Annotated[StrictStr, Field(max_length=200), AfterValidator(_no_nul)] = ""

    @model_validator(mode="after")
    def _tenant(self) -> TokenIn:
        if self.role == "tenant" and self.tenant is None:
            raise InvalidInput(field="tenant", rule="a tenant token names its tenant")
        if self.role == "admin" and self.tenant is not None:
            raise InvalidInput(field="tenant", rule="an admin token has no tenant")
        return self


class TokenOut(BaseModel):
    id: int
    role: str
    tenant: str | None
    description: str
    created: datetime
    created_by: str
    revoked: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="the bearer token: shown in this answer only, stored hashed")


APPLY_SET = ("the apply set this object belongs to; '' (empty): none, as if made directly; absent or null: the set "
             "the apply names (?set=), else 'default'. An apply naming a set takes only objects absent, null or in it")
SetName = Annotated[StrictStr, AfterValidator(lambda v: v and rules.new_name(v, "apply_set")),
                    _doc(maxLength=rules.NAME_MAX, pattern=f"^(?:|{rules.NEW_NAME_RE.pattern})$")]


class _InSet(_In):
    apply_set: SetName | None = Field(default=None, description=APPLY_SET)


class SiloApplyIn(_InSet, SiloIn):
    """A silo of a topology file."""


class GatewayApplyIn(_InSet, GatewayIn):
    """A gateway of a topology file."""


class GroupApplyIn(_InSet, GroupIn):
    """An interface group of a topology file."""


class AttachmentApplyIn(_InSet, AttachmentIn):
    """An attachment of a topology file's network."""


class TopologyNetworkIn(_InSet, NetworkIn):
    attachments: list[AttachmentApplyIn] = Field(default_factory=list)


class Topology(_In):
    """What `silonet apply -f` reads (and `GET /v1/export` answers): the declarative inventory and networks."""

    silos: list[SiloApplyIn] = Field(default_factory=list)
    gateways: list[GatewayApplyIn] = Field(default_factory=list)
    interface_groups: list[GroupApplyIn] = Field(default_factory=list)
    networks: list[TopologyNetworkIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Topology:
        """Every name listed twice, and every (group, VLAN) listed twice with both places that list it."""
        found: list[SilonetError] = []
        for section in ("silos", "gateways", "interface_groups", "networks"):
            counts = Counter(item.name for item in getattr(self, section))  # linear: 16k networks are common
            dup = sorted(n for n, k in counts.items() if k > 1)
            if dup:
                found.append(InvalidInput(field=section, rule=f"names must be unique; listed twice: {', '.join(dup)}"))
        seen: dict[tuple[str, int], str] = {}
        for net in self.networks:
            for att in net.attachments:
                key = (att.interface_group, att.vlan)
                first = seen.get(key)
                if first is None:
                    seen[key] = net.name
                    continue
                where = f"listed twice in {net.name}" if first == net.name else f"in {first} and {net.name}"
                found.append(InvalidInput(field=f"networks[{net.name}].attachments[({key[0]}, {key[1]})]",
                                          rule=f"({key[0]}, {key[1]}) is {where}: one VLAN of an interface group "
                                               "carries one network"))
        if found:
            raise found[0].with_more(found[1:])
        return self


# ----------------------------------------------------------------------- outputs
VIOLATIONS = ("rules this object, stored by an older version, breaks (field: value rule); empty for objects "
              "written under today's rules")


class SiloOut(BaseModel):
    name: str
    kind: str
    description: str
    violations: list[str] = Field(default_factory=list, description=VIOLATIONS)


class ManagementOut(BaseModel):
    driver: str
    address: str
    dialect: str | None
    credentials: str | None = Field(description="the reference, never the secret")
    trust_on_first_use: bool = False
    host_key: str | None = Field(default=None, description="ssh: the pinned host key (public key line or "
                                                           "SHA256: fingerprint)")


class PortOut(BaseModel):
    name: str
    switchback: bool


class GatewayOut(BaseModel):
    name: str
    silo: str | None
    vtep_ip: str
    management: ManagementOut | None = Field(description="how silonet reaches the device (admins only)")
    capacity: int
    used: int = Field(description="VLAN->VNI entries the current intent needs on this gateway")
    ports: list[PortOut]
    mode: str = Field(default="enforce", description="enforce, observe (reads, never writes) or maintenance "
                                                     "(not contacted)")
    pair: str | None = Field(default=None, description=PAIR)
    violations: list[str] = Field(default_factory=list, description=VIOLATIONS)


class PortRefOut(BaseModel):
    gateway: str
    port: str


class GroupOut(BaseModel):
    name: str
    silo: str | None
    members: list[PortRefOut]
    switchback: list[PortRefOut]
    violations: list[str] = Field(default_factory=list, description=VIOLATIONS)


# plan/status.py says which: pending (not yet realized), realized (on its own gateways and their
# peers), degraded (on its own, not every peer), held (an own gateway in observe/maintenance), failed
AttachmentStatus = Status


class AttachmentGatewayOut(BaseModel):
    gateway: str
    status: AttachmentStatus
    reason: str | None = None
    pair: str | None = Field(default=None, description="the gateway's redundant pair: while its partner carries "
                                                        "the attachment, this member down only degrades it")


class AttachmentOut(BaseModel):
    network: str
    interface_group: str
    vlan: int
    vni: int
    generation: int
    status: AttachmentStatus = Field(description=(
        "failed: a gateway of its interface group failed; held: one is in observe or maintenance mode; pending: "
        "one has not realized it yet; degraded: its own gateways realized it, another gateway of the network "
        "failed; realized: every gateway of the network realized it"))
    reason: str | None = None
    gateways: list[AttachmentGatewayOut] = Field(
        default_factory=list, description="per gateway that carries the VNI: all must realize the attachment")


class AttachmentPageOut(BaseModel):
    items: list[AttachmentOut]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null on the last page (the cursor is opaque)")
    limit: int


class NetworkOut(BaseModel):
    name: str
    tenant: str
    vni: int
    attachments: list[AttachmentOut]
    violations: list[str] = Field(default_factory=list, description=VIOLATIONS)


class AuditOut(BaseModel):
    id: int
    time: datetime
    actor: str
    action: str
    object: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ChangeOut(BaseModel):
    action: Literal["create", "update", "delete", "attach", "detach"]
    kind: str
    name: str
    fields: dict[str, tuple[Any, Any]] = Field(
        default_factory=dict, description="an update's changed fields: name -> [old, new] (apply_set: the apply "
                                          "set that owns the object, null for none)")


class PruneOut(BaseModel):
    """What a prune of one apply set deletes and what its guard says."""

    set: str
    declared: int = Field(description="objects the file declares (silos, gateways, groups, networks, attachments)")
    deletes: dict[str, int] = Field(description="kind -> how many objects of the set the prune deletes")
    refused: bool = Field(description="the guard refuses it (a dry run says so; a real apply answers 409)")
    forced: bool = Field(description="the guard would have refused it; --force (force=true) let it through")
    message: str


class ApplyOut(BaseModel):
    dry_run: bool
    generation: int
    changes: list[ChangeOut]
    gateways: list[str] = []  # whose desired state changed: what ``wait`` waits for
    notes: list[str] = Field(default_factory=list, description="what the apply leaves to finish later: gateways "
                             "being decommissioned, silos that stay until those are gone")
    status: AttachmentStatus | None = None  # after ``wait``: the status reached then
    reason: str | None = Field(default=None, description="after wait: how many of the gateways, which and why")
    set: str = Field(default="default", description="the apply set the file was applied as (a prune's)")
    warnings: list[str] = Field(default_factory=list, description="changes that may surprise: a live network "
                                                                  "moving, an old attachment that stays, ...")
    prune: PruneOut | None = Field(default=None, description="with prune: what it deletes and what the guard says")


def silo_out(s: Silo) -> SiloOut:
    return SiloOut(name=s.name, kind=s.kind.value, description=s.description, violations=violations(s))


def gateway_out(g: Gateway, used: int, secrets_dir: Path | None = None) -> GatewayOut:
    """``secrets_dir``: also judge the credentials reference against today's fence (``violations``)."""
    m = g.management
    return GatewayOut(
        name=g.name, silo=g.silo, vtep_ip=g.vtep_ip, capacity=g.capacity, used=used,
        management=ManagementOut(driver=m.driver, address=m.address, dialect=m.dialect, credentials=m.credentials,
                                 trust_on_first_use=m.trust_on_first_use, host_key=m.host_key),
        ports=[PortOut(name=p.name, switchback=p.switchback) for p in g.ports], mode=g.mode, pair=g.pair,
        violations=violations(g, None if secrets_dir is None else
                              lambda ref: rules.credentials_violation(ref, secrets_dir)),
    )


def group_out(g: InterfaceGroup) -> GroupOut:
    return GroupOut(
        name=g.name, silo=g.silo,
        members=[PortRefOut(gateway=r.gateway, port=r.port) for r in g.members],
        switchback=[PortRefOut(gateway=r.gateway, port=r.port) for r in g.switchback],
        violations=violations(g),
    )


def network_entity(n: NetworkIn, vni: int) -> VirtualNetwork:
    return VirtualNetwork(n.name, n.tenant, vni)


def dump(model: BaseModel | None) -> dict | None:
    """An output model as the JSON the audit log keeps (None stays None)."""
    return None if model is None else model.model_dump(mode="json")
