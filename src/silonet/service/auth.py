"""Who is calling: bearer tokens, the two roles, and what a tenant may see.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored, so a stolen
database yields no usable token. ``SILONET_ADMIN_TOKEN`` is stored the same way at start
(``seed_admin``), so every replica sharing the database knows it. A verified token is
remembered for ``CACHE_S`` seconds per process: a request then costs no query; a revocation
takes effect at once in the replica that made it and within ``CACHE_S`` in the others.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from silonet.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from silonet.model import VirtualNetwork
from silonet.plan.status import TENANT_GATEWAY_ERROR
from silonet.service import schemas as S
from silonet.store.db import Database
from silonet.store.repo import Repository, utc
from silonet.store.tables import TokenRow

ROLES = ("admin", "tenant")
TOKEN_PREFIX = "snt_"
CACHE_S = 5.0
ADMIN_TOKEN_MIN = 16
_R = TypeVar("_R")


def errors_for(real: dict[Any, _R], tenant: str | None) -> dict[Any, _R]:
    """Realization records (anything with ``last_error``) as a caller may read them: a tenant
    gets a gateway's error in general terms."""
    if tenant is None:
        return real
    return {gw: replace(r, last_error=TENANT_GATEWAY_ERROR) if r.last_error else r  # type: ignore[attr-defined]
            for gw, r in real.items()}


@dataclass(frozen=True)
class Claim:
    """Something a write asks for that one network at most may hold: the error field a conflict
    over it carries, how a tenant reads it ("VNI 10001"), and the network holding it (or None)."""

    field: str
    subject: str
    holder: str | None


_QUOTED = re.compile(r"'([^']{1,64})'")
_VNIS = re.compile(r"\bVNIs? \d{1,8}(?:(?:,? and |, )\d{1,8})*\b")  # "VNI 5000", "VNIs 5000 and 6968"
_NUMBER = re.compile(r"\d+")
NOT_SHOWN = "(not shown)"


def conflict_for(err: Conflict, tenant: str | None, networks: Mapping[str, VirtualNetwork],
                 claims: Iterable[Claim] = ()) -> Conflict:
    """A conflict as a caller may read it (``networks``: every network, by name). An admin reads
    it as raised. A tenant whose claim is held by a network of someone else reads only that it is
    "not available", not whose nor which network; any other conflict reads with the names and
    VNIs of networks not its own replaced."""
    if tenant is None:
        return err
    for claim in claims:
        held = networks.get(claim.holder) if claim.holder is not None else None
        if claim.field == err.field and held is not None and held.tenant != tenant:
            return Conflict(field=err.field, rule=f"{claim.subject} is not available")
    theirs = {n: net.vni for n, net in networks.items() if net.tenant != tenant}
    vnis = set(theirs.values())

    def hide_vnis(m: re.Match[str]) -> str:
        return _NUMBER.sub(lambda n: NOT_SHOWN if int(n.group(0)) in vnis else n.group(0), m.group(0))

    text = _QUOTED.sub(lambda m: NOT_SHOWN if m.group(1) in theirs else m.group(0), err.message)
    text = _VNIS.sub(hide_vnis, text)
    return err if text == err.message else Conflict(field=err.field, rule=text)


@dataclass(frozen=True)
class Principal:
    """The caller: an admin, or a tenant who sees only its own networks."""

    role: str
    tenant: str | None = None
    token_id: int | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """As the audit log names it."""
        return "admin" if self.admin else f"tenant:{self.tenant}"

    @property
    def scope(self) -> str | None:
        """The tenant whose networks this caller may see (None: every network). A tenant
        token without a tenant sees nothing rather than everything."""
        return None if self.admin else (self.tenant or "\x00no tenant")

    def require_admin(self, what: str) -> None:
        if not self.admin:
            raise Forbidden(rule=f"{what} needs an admin token (this token is tenant '{self.tenant}')")


ADMIN = Principal("admin")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_admin_secret(secret: str) -> None:
    if len(secret) < ADMIN_TOKEN_MIN:
        raise InvalidInput(field="SILONET_ADMIN_TOKEN", rule=f"at least {ADMIN_TOKEN_MIN} characters: it opens "
                                                             "everything (e.g. python3 -c 'import secrets; "
                                                             "print(secrets.token_urlsafe(32))')")


def _info(r: TokenRow) -> S.TokenOut:
    return S.TokenOut(id=r.id, role=r.role, tenant=r.tenant, description=r.description, created=utc(r.created),
                      created_by=r.created_by, revoked=utc(r.revoked))


class Tokens:
    """Token store and verifier over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._revoked: set[int] = set()  # by this process: never cached again
        self._lock = threading.Lock()

    def seed_admin(self, secret: str) -> None:
        """Store ``SILONET_ADMIN_TOKEN``: one row however often (and by however many replicas at
        once) the server starts. A new value adds a token; the old one stays valid until it is
        revoked (`silonet token revoke`): replicas may be restarted one by one with the new value."""
        check_admin_secret(secret)
        d = digest(secret)
        try:
            with self.db.sessions() as s, s.begin():
                row = s.execute(select(TokenRow).where(TokenRow.digest == d)).scalar_one_or_none()
                if row is not None and (row.revoked is not None or row.role != "admin"):
                    raise Unauthorized(reason="SILONET_ADMIN_TOKEN was revoked: choose a new one")
                if row is None:
                    s.add(TokenRow(digest=d, role="admin", tenant=None, description="SILONET_ADMIN_TOKEN",
                                   created=datetime.now(UTC), created_by="environment"))
        except IntegrityError:  # another replica seeded the same value meanwhile
            pass

    def any_admin(self) -> bool:
        with self.db.read() as s:
            return s.execute(select(TokenRow.id).where(TokenRow.role == "admin", TokenRow.revoked.is_(None))
                             .limit(1)).first() is not None

    @staticmethod
    def _digest_of(header: str | None) -> str:
        if not header:
            raise Unauthorized(reason="missing bearer token: send 'Authorization: Bearer <token>'")
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise Unauthorized(reason="the Authorization header must be 'Bearer <token>'")
        return digest(secret)

    def cached(self, header: str | None) -> Principal | None:
        """The caller if its token was verified less than CACHE_S ago (no I/O: safe on the
        event loop); None when the database must be asked."""
        hit = self._cache.get(self._digest_of(header))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def verify(self, header: str | None) -> Principal:
        """The caller of an ``Authorization`` header value; 401 without a valid bearer token."""
        d = self._digest_of(header)
        now = time.monotonic()
        hit = self._cache.get(d)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as s:
            row = s.execute(select(TokenRow).where(TokenRow.digest == d)).scalar_one_or_none()
        if row is None or row.revoked is not None:
            raise Unauthorized(reason="unknown or revoked token")
        who = Principal(row.role, row.tenant, row.id)
        with self._lock:
            if row.id not in self._revoked:  # a revocation that committed meanwhile wins
                self._cache[d] = (now + CACHE_S, who)
        return who

    def create(self, role: str, tenant: str | None, description: str, actor: str) -> tuple[S.TokenOut, str]:
        """A new token: its record, and the secret, which is never shown again."""
        secret = new_secret()
        with self._write() as s:
            row = TokenRow(digest=digest(secret), role=role, tenant=tenant, description=description,
                           created=datetime.now(UTC), created_by=actor)
            s.add(row)
            s.flush()
            info = _info(row)
            Repository(s).audit(actor, "create", f"token/{row.id}", None,
                                {"id": row.id, "role": role, "tenant": tenant, "description": description})
        return info, secret

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """Token writes are not intent: no generation bump (which would make every replica
        reload the inventory), just one transaction."""
        with self.db.sessions() as s, s.begin():
            yield s

    def list(self) -> list[S.TokenOut]:
        with self.db.read() as s:
            return [_info(r) for r in s.execute(select(TokenRow).order_by(TokenRow.id)).scalars()]

    def revoke(self, token_id: int, actor: str) -> None:
        with self._write() as s:
            row = s.get(TokenRow, token_id)
            if row is None or row.revoked is not None:
                raise NotFound(field="id", kind="token", name=str(token_id))
            s.execute(update(TokenRow).where(TokenRow.id == token_id).values(revoked=datetime.now(UTC)))
            Repository(s).audit(actor, "revoke", f"token/{token_id}",
                                {"id": token_id, "role": row.role, "tenant": row.tenant}, None)
        with self._lock:  # this replica stops accepting it at once
            self._revoked.add(token_id)
            self._cache = {d: v for d, v in self._cache.items() if v[1].token_id != token_id}
