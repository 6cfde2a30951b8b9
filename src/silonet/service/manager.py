"""The manager's use cases.

Each write is one transaction: load the intent, let the pure model check and change it,
write the rows, bump the generation of every gateway whose desired state changed, audit.
Anything raised inside rolls the whole transaction back, so a rejected request writes
nothing anywhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import anyio

from silonet.config import Settings
from silonet.errors import Conflict, Forbidden, InvalidInput, NotFound
from silonet.model import Attachment, Inventory, rules
from silonet.model.legacy import quarantine_reason, violations
from silonet.plan import GatewayState, compile_gateway, diff
from silonet.plan.compiler import Learned, vni_carriers
from silonet.plan.ops import op_to_dict
from silonet.service import schemas as S
from silonet.service.auth import Claim, conflict_for, errors_for
from silonet.service.policy import DriverPolicy
from silonet.store.db import Database
from silonet.store.repo import Realization, Repository

ADMIN = "admin"
WAIT_MAX_S = 300.0
AUDIT_LIMIT = (1, 1000)


def _learned(real: dict[str, Realization]) -> Learned:
    """MACs each gateway learned, as its last reconcile pass read them."""
    return {gw: {int(v): frozenset(m) for v, m in (r.actual or {}).get("local_macs", {}).items()}
            for gw, r in real.items()}


@contextmanager
def _told_to(inv: Inventory, tenant: str | None, claims: Callable[[], list[Claim]] = list) -> Iterator[None]:
    """Conflicts raised inside, as ``auth.conflict_for`` lets the caller read them (same field,
    same status); ``claims``: what the write asks for, looked up only when one is refused."""
    try:
        yield
    except Conflict as err:
        told = conflict_for(err, tenant, inv.networks, claims() if tenant is not None else ())
        if told is err:
            raise
        raise told from None


def _holder_of_vni(inv: Inventory, vni: int | None) -> str | None:
    return None if vni is None else next((n.name for n in inv.networks.values() if n.vni == vni), None)


def _holder_of_vlan(inv: Inventory, group: str, vlan: int) -> str | None:
    att = inv.attachments.get((group, vlan))
    return None if att is None else att.network


def _visible(inv: Inventory, name: str, tenant: str | None) -> None:
    """The network, if this caller may see it: another tenant's is as unknown as a missing one,
    so names do not leak."""
    net = inv.network(name)
    if tenant is not None and net.tenant != tenant:
        raise NotFound(field="name", kind="network", name=name)


class Manager:
    """Use cases over one database."""

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or Settings(database_url=db.url)
        self.policy = DriverPolicy()
        self.cache = db.intent
        self.cache.policy = self.policy

    # ------------------------------------------------------------------- reads
    @contextmanager
    def _view(self) -> Iterator[tuple[Repository, Inventory]]:
        """A read: the repository and the intent at the database's generation. The cache
        lock is held meanwhile, so the inventory does not change under the reader."""
        with self.db.read() as s, self.cache.lock:
            inv, _gen = self.cache.current(s)
            yield Repository(s), inv

    def inventory(self) -> Inventory:
        """A private copy of the intent (for callers outside the cache lock)."""
        with self.db.read() as s:
            return Repository(s).load_inventory(self.policy)

    def list_silos(self) -> list[S.SiloOut]:
        with self._view() as (_repo, inv):
            return [S.silo_out(inv.silos[n]) for n in sorted(inv.silos)]

    def get_silo(self, name: str) -> S.SiloOut:
        with self._view() as (_repo, inv):
            return S.silo_out(inv.silo(name))

    def list_gateways(self) -> list[S.GatewayOut]:
        with self._view() as (_repo, inv):
            secrets = self.settings.secrets_dir
            return [S.gateway_out(inv.gateways[n], inv.usage(n), secrets) for n in sorted(inv.gateways)]

    def get_gateway(self, name: str) -> S.GatewayOut:
        with self._view() as (_repo, inv):
            return S.gateway_out(inv.gateway(name), inv.usage(name), self.settings.secrets_dir)

    def list_groups(self) -> list[S.GroupOut]:
        with self._view() as (_repo, inv):
            return [S.group_out(inv.groups[n]) for n in sorted(inv.groups)]

    def get_group(self, name: str) -> S.GroupOut:
        with self._view() as (_repo, inv):
            return S.group_out(inv.group(name))

    def _network_out(self, inv: Inventory, name: str, real: dict[str, Realization]) -> S.NetworkOut:
        net = inv.network(name)
        return S.NetworkOut(
            name=net.name, tenant=net.tenant, vni=net.vni,
            attachments=[self._attachment_out(inv, a, real) for a in inv.attachments_of(name)],
            violations=violations(net),
        )

    def _attachment_out(self, inv: Inventory, att: Attachment, real: dict[str, Realization]) -> S.AttachmentOut:
        group = inv.groups[att.group]
        per_gw = []
        for gw in sorted(inv.gateways_of_network(att.network)):  # the attachment's own group's included
            r = real.get(gw)
            errors = [e for p in group.bound_ports(gw) if r and (e := r.binding_error(p, att.vlan))]
            if errors:
                per_gw.append(S.AttachmentGatewayOut(gateway=gw, status="failed", reason=errors[0]))
            elif r is not None and r.realized_generation >= att.generation:
                per_gw.append(S.AttachmentGatewayOut(gateway=gw, status="realized"))
            elif r is not None and r.last_error:
                per_gw.append(S.AttachmentGatewayOut(gateway=gw, status="failed", reason=r.last_error))
            else:
                per_gw.append(S.AttachmentGatewayOut(gateway=gw, status="pending"))
        failed = [g for g in per_gw if g.status == "failed"]
        status = "failed" if failed else "pending" if any(g.status == "pending" for g in per_gw) else "realized"
        reason = f"gateway '{failed[0].gateway}': {failed[0].reason}" if failed else None
        if (quarantined := inv.quarantined.get(att.network)) is not None:
            status, reason = "failed", quarantine_reason(quarantined)
        return S.AttachmentOut(
            network=att.network, interface_group=att.group, vlan=att.vlan,
            vni=inv.networks[att.network].vni, generation=att.generation, status=status,
            reason=reason, gateways=per_gw,
        )

    def list_networks(self, tenant: str | None = None) -> list[S.NetworkOut]:
        with self._view() as (repo, inv):
            real = errors_for(repo.realizations(observed=False), tenant)
            return [self._network_out(inv, n, real) for n in sorted(inv.networks)
                    if tenant is None or inv.networks[n].tenant == tenant]

    def get_network(self, name: str, tenant: str | None = None) -> S.NetworkOut:
        with self._view() as (repo, inv):
            _visible(inv, name, tenant)
            real = errors_for(repo.realizations(inv.gateways_of_network(name), observed=False), tenant)
            return self._network_out(inv, name, real)

    def audit(self, limit: int = 100, before_id: int | None = None) -> list[S.AuditOut]:
        lo, hi = AUDIT_LIMIT
        if not lo <= limit <= hi:  # the API checks too; the CLI's local store relies on this one
            raise InvalidInput(field="limit", rule=f"{limit}: entries per page must be {lo}..{hi}")
        with self.db.read() as s:
            entries = Repository(s).audit_entries(limit, before_id)
        return [S.AuditOut(**e.__dict__) for e in entries]

    def statuses(self) -> list[S.RealizationOut]:
        with self.db.read() as s:
            real = Repository(s).realizations()
        return [self._realization_out(real[n]) for n in sorted(real)]

    @staticmethod
    def _realization_out(r: Realization) -> S.RealizationOut:
        return S.RealizationOut(
            gateway=r.gateway, state=r.state, reachable=r.reachable, desired_generation=r.desired_generation,
            realized_generation=r.realized_generation, drift=r.drift, faults=r.faults or {},
            binding_errors=r.binding_errors or {}, last_error=r.last_error, last_contact=r.last_contact,
            owner=r.owner,
        )

    def _observed(self, repo: Repository) -> dict[str, Realization]:
        """Realization records, with the actual state as this process's reconciler last read it
        where it drives the gateway (the recorded one may be up to a second older)."""
        real = repo.realizations()
        for name, r in real.items():
            fresh = self.db.actual_here(name)
            if fresh is not None:
                real[name] = replace(r, actual=fresh)
        return real

    def gateway_status(self, name: str) -> S.GatewayStatusOut:
        with self._view() as (repo, inv):
            inv.gateway(name)
            everyone = self._observed(repo)
            desired = compile_gateway(inv, name, learned=_learned(everyone))
        real = everyone[name]
        actual = None if real.actual is None else GatewayState.from_dict(real.actual)
        repair = None if actual is None else [op_to_dict(op) for op in diff(desired, actual)]
        base = self._realization_out(real).model_dump()
        return S.GatewayStatusOut(
            **base, foreign=real.foreign or [], desired=desired.to_dict(),
            actual=None if actual is None else actual.to_dict(), repair=repair,
        )

    def plan(self, gateway: str | None = None) -> S.PlanOut:
        """Dry run: what the next reconcile would change on each gateway."""
        with self._view() as (repo, inv):
            generation, real = repo.generation(), self._observed(repo)
            names = [inv.gateway(gateway).name] if gateway else sorted(inv.gateways)
            carriers, learned = vni_carriers(inv), _learned(real)
            out = []
            for name in names:
                desired = compile_gateway(inv, name, carriers, learned)
                seen = real[name].actual if name in real else None
                actual = None if seen is None else GatewayState.from_dict(seen)
                ops = diff(desired, actual or GatewayState())
                out.append(S.GatewayPlanOut(
                    gateway=name, actual_known=actual is not None, entries=desired.entries,
                    capacity=inv.gateways[name].capacity, operations=[op_to_dict(op) for op in ops],
                ))
        return S.PlanOut(generation=generation, gateways=out)

    # ------------------------------------------------------------------ writes
    @contextmanager
    def _tx(self) -> Iterator[tuple[Repository, Inventory, int]]:
        """One write: the repository, the intent to check and change, the new generation."""
        with self.cache.transaction(self.db) as (session, inv, generation):
            yield Repository(session), inv, generation

    def create_silo(self, body: S.SiloIn, actor: str = ADMIN) -> S.SiloOut:
        silo = body.entity()
        with self._tx() as (repo, inv, _gen):
            self._must_be_new(inv.silos, "silo", silo.name)
            inv.put_silo(silo)
            repo.save_silo(silo)
            out = S.silo_out(silo)
            repo.audit(actor, "create", f"silo/{silo.name}", None, S.dump(out))
        return out

    def delete_silo(self, name: str, actor: str = ADMIN) -> None:
        with self._tx() as (repo, inv, _gen):
            silo = inv.remove_silo(name)
            repo.delete_silo(name)
            repo.audit(actor, "delete", f"silo/{name}", S.dump(S.silo_out(silo)), None)

    def create_gateway(self, body: S.GatewayIn, actor: str = ADMIN) -> S.GatewayOut:
        gw = body.entity(self.policy.default_capacity(body.management.driver, body.management.dialect))
        rules.fenced_credentials(gw.management.credentials, self.settings.secrets_dir)  # writes only: old rows load
        with self._tx() as (repo, inv, gen):
            self._must_be_new(inv.gateways, "gateway", gw.name)
            inv.put_gateway(gw)
            repo.save_gateway(gw)
            repo.bump([gw.name], gen)
            out = S.gateway_out(gw, 0)
            repo.audit(actor, "create", f"gateway/{gw.name}", None, S.dump(out))
        return out

    def delete_gateway(self, name: str, actor: str = ADMIN) -> None:
        with self._tx() as (repo, inv, _gen):
            gw = inv.remove_gateway(name)
            repo.delete_gateway(name)
            repo.audit(actor, "delete", f"gateway/{name}", S.dump(S.gateway_out(gw, 0)), None)

    def create_group(self, body: S.GroupIn, actor: str = ADMIN) -> S.GroupOut:
        group = body.entity()
        with self._tx() as (repo, inv, _gen):
            self._must_be_new(inv.groups, "interface group", group.name)
            inv.put_group(group)
            repo.save_group(group)
            out = S.group_out(group)
            repo.audit(actor, "create", f"interface-group/{group.name}", None, S.dump(out))
        return out

    def delete_group(self, name: str, actor: str = ADMIN) -> None:
        with self._tx() as (repo, inv, _gen):
            group = inv.remove_group(name)
            repo.delete_group(name)
            repo.audit(actor, "delete", f"interface-group/{name}", S.dump(S.group_out(group)), None)

    def create_network(self, body: S.NetworkIn, actor: str = ADMIN, tenant: str | None = None) -> S.NetworkOut:
        if tenant is not None and body.tenant != tenant:
            raise Forbidden(field="tenant", rule=f"a tenant token creates networks of its own tenant "
                                                 f"'{tenant}' only, not '{body.tenant}'")
        def claims() -> list[Claim]:
            return [Claim("name", f"network name '{body.name}'", body.name if body.name in inv.networks else None),
                    Claim("vni", f"VNI {body.vni}", _holder_of_vni(inv, body.vni))]

        with self._tx() as (repo, inv, _gen), _told_to(inv, tenant, claims):
            self._must_be_new(inv.networks, "network", body.name)
            vni = body.vni if body.vni is not None else inv.allocate_vni(self.settings.vni_pool)
            net = S.network_entity(body, vni)
            inv.put_network(net)
            repo.save_network(net)
            out = S.NetworkOut(name=net.name, tenant=net.tenant, vni=net.vni, attachments=[])
            repo.audit(actor, "create", f"network/{net.name}", None, S.dump(out))
        return out

    def delete_network(self, name: str, cascade: bool = False, actor: str = ADMIN,
                       tenant: str | None = None) -> tuple[set[str], int]:
        """Returns the affected gateways and the generation that realizes the change."""
        with self._tx() as (repo, inv, gen):
            _visible(inv, name, tenant)
            before = self._network_out(inv, name, {})
            affected = inv.gateways_of_network(name)
            vni = inv.networks[name].vni
            inv.remove_network(name, cascade)
            repo.delete_network(name)
            repo.bump(affected, gen, vnis=[vni])
            repo.audit(actor, "delete", f"network/{name}", S.dump(before), None)
        return affected, gen

    def attach(self, network: str, body: S.AttachmentIn, actor: str = ADMIN,
               tenant: str | None = None) -> S.AttachmentOut:
        def claims() -> list[Claim]:
            return [Claim("vlan", f"VLAN {body.vlan} of interface group '{body.interface_group}'",
                          _holder_of_vlan(inv, body.interface_group, body.vlan))]

        with self._tx() as (repo, inv, gen), _told_to(inv, tenant, claims):
            _visible(inv, network, tenant)
            if (quarantined := inv.quarantined.get(network)) is not None:
                raise Conflict(field="network", rule=quarantine_reason(quarantined))
            att = inv.attach(Attachment(body.interface_group, body.vlan, network, gen))
            repo.add_attachment(att, gen)
            affected = inv.gateways_of_network(network)
            repo.bump(affected, gen, vnis=[inv.networks[network].vni])
            out = self._attachment_out(inv, att, errors_for(repo.realizations(affected, observed=False), tenant))
            repo.audit(actor, "attach", f"network/{network}/attachments/{att.group}/{att.vlan}", None, S.dump(out))
        return out

    def detach(self, network: str, group: str, vlan: int, actor: str = ADMIN,
               tenant: str | None = None) -> tuple[set[str], int]:
        """Returns the affected gateways and the generation that realizes the change."""
        with self._tx() as (repo, inv, gen):
            _visible(inv, network, tenant)
            affected = inv.gateways_of_network(network)
            att = inv.attachment(network, group, vlan)
            before = self._attachment_out(inv, att, repo.realizations(affected, observed=False))
            att = inv.detach(network, group, vlan)
            repo.delete_attachment(att)
            repo.bump(affected, gen, vnis=[inv.networks[network].vni])
            repo.audit(actor, "detach", f"network/{network}/attachments/{group}/{vlan}", S.dump(before), None)
        return affected, gen

    def apply(self, topology: S.Topology, prune: bool = False, dry_run: bool = False, actor: str = ADMIN) -> S.ApplyOut:
        from silonet.service.apply import apply_topology

        return apply_topology(self, topology, prune=prune, dry_run=dry_run, actor=actor)

    def get_attachment(self, network: str, group: str, vlan: int, tenant: str | None = None) -> S.AttachmentOut:
        with self._view() as (repo, inv):
            _visible(inv, network, tenant)
            att = inv.attachment(network, group, vlan)
            return self._attachment_out(inv, att, errors_for(repo.realizations(inv.gateways_of_network(network),
                                                                         observed=False), tenant))

    # -------------------------------------------------------------------- wait
    def wait(self, gateways: Iterable[str], generation: int, timeout: float) -> str:
        """Block up to ``timeout`` s until every gateway realized ``generation`` (or one failed)."""
        steps = self._waiting(gateways, generation, timeout)
        try:
            step = next(steps)
            while True:
                step = steps.send(self._state(step[1], generation) if step[0] == "ask"
                                  else self.db.wait_status(step[1], step[2]))
        except StopIteration as done:
            return done.value

    async def wait_async(self, gateways: Iterable[str], generation: int, timeout: float) -> str:
        """``wait`` for the API: the waiting holds no thread (a thread per waiter let a few dozen
        ``?wait=`` requests exhaust the pool every sync route shares); only a database read
        borrows one for its duration."""
        steps = self._waiting(gateways, generation, timeout)
        try:
            step = next(steps)
            while True:
                if step[0] == "ask":
                    answer: str | bool = await anyio.to_thread.run_sync(self._state, step[1], generation)
                else:
                    answer = await self.db.wait_status_async(step[1], step[2])
                step = steps.send(answer)
        except StopIteration as done:
            return done.value

    def _waiting(self, gateways: Iterable[str], generation: int,
                 timeout: float) -> Generator[tuple[Any, ...], str | bool, str]:
        """The decisions of a wait, without its I/O (one copy for ``wait`` and ``wait_async``):
        yields ``("ask", names)`` to read the state from the database (send it back) and
        ``("sleep", seq, seconds)`` to wait for a status change after ``seq`` (send back whether
        one came); returns the result."""
        names = sorted(set(gateways))
        bound = 0.0 if math.isnan(timeout) else min(max(timeout, 0.0), WAIT_MAX_S)  # NaN: every compare is false
        deadline = time.monotonic() + bound
        # The database: at first (unless this process's reconciler drives them all and none
        # ever failed here), after a poll timeout (another process may have written), at the
        # deadline, or when this process recorded an error for one of them; otherwise what this
        # process's reconciler recorded tells enough.
        ask = not self.db.healthy_here(names)
        while True:
            seq = self.db.status_seq()
            if self.db.realized_here(names, generation):  # no query
                return "realized"
            if ask or time.monotonic() >= deadline:
                state = yield ("ask", names)
                if state != "pending" or time.monotonic() >= deadline:
                    return str(state)
            # woken by this process's reconciler at once; another process's within 0.1 s
            woke = yield ("sleep", seq, min(0.1, max(deadline - time.monotonic(), 0.0)))
            ask = not woke or self.db.failed_since(names, seq)

    def _state(self, names: list[str], generation: int) -> str:
        """realized, failed or pending, as the database has it."""
        with self.db.read() as s:
            real = Repository(s).realizations(names, observed=False)
        states = [
            "realized" if (r := real.get(n)) and r.realized_generation >= generation
            else "failed" if r and r.last_error else "pending"
            for n in names
        ]
        return "failed" if "failed" in states else "pending" if "pending" in states else "realized"

    @staticmethod
    def _must_be_new(table: dict, kind: str, name: str) -> None:
        if name in table:
            raise Conflict(field="name", rule=f"{kind} '{name}' already exists")
