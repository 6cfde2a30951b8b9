"""Command-line values and the CLI's own guards: numbers typed as numbers (the help says
``<int>``) that keep silonet's one-line error for a bad value, a note when a read falls back to
an empty local store, and the question before a token for a tenant that owns nothing."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import typer

from silonet.cli import render
from silonet.cli.backend import Backend, LocalBackend
from silonet.errors import InvalidInput, SilonetError
from silonet.model import rules

_INTEGER = re.compile(r"-?[0-9]+")


class BadValue(SilonetError):
    """A value on the command line breaks its rule. Not a ValueError on purpose: Typer would turn
    that into a usage error with its own wording; this one is printed as the API says it (exit 1)."""

    code = "invalid"
    template = "{message}"


def number(field: str, check: Callable[[int, str], int] | None = None) -> Callable[[Any], int]:
    """A parser for an integer option or argument: ``'x' is not an integer``, or the rule of the
    field (``vlan: 4095 is outside 0..4094``), as one error line."""

    def parse(value: Any) -> int:
        if isinstance(value, int):
            n = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            n = int(value)
        else:
            raise BadValue(field=field, message=f"{field}: {value!r} is not an integer")
        if check is None:
            return n
        try:
            return check(n, field)
        except InvalidInput as err:
            raise BadValue(field=err.field, message=err.message) from None

    parse.__name__ = "integer"  # older Typer names the value after the parser: INTEGER, not PARSE
    return parse


def merge_patch(document: str, what: str) -> dict[str, Any]:
    """A PATCH argument: a JSON object (RFC 7396 merge patch of ``what``), else one line naming the rule."""
    import json

    try:
        body = json.loads(document)
    except ValueError as err:
        raise InvalidInput(field="PATCH", rule=f"not JSON: {err}") from None
    if not isinstance(body, dict):
        raise InvalidInput(field="PATCH", rule=f"a merge patch of a {what} is a JSON object (RFC 7396)")
    return body


def note_if_empty_local(backend: Backend) -> None:
    """A read on the local store that holds nothing (after `silonet logout`, or with the server
    forgotten) looks like a server without data: say which store answered, on stderr."""
    if isinstance(backend, LocalBackend) and backend.empty():
        render.note(f"no server given (--server, SILONET_SERVER or `silonet login`): using the local store "
                    f"{backend.where()}, which is empty")


def confirm_new_tenant(backend: Backend, tenant: str) -> None:
    """A tenant token for a name that owns no network is most often a typo (`acme` vs `acm`):
    ask at a terminal; elsewhere (a script) refuse unless --new-tenant says it is meant."""
    if not rules.NAME_RE.fullmatch(tenant):
        return  # the name's own rule answers (one error line from the service)
    if any(n.get("tenant") == tenant for n in backend.list("network")):
        return
    why = f"tenant '{tenant}' owns no network yet (a typo?)"
    if sys.stdin is not None and sys.stdin.isatty():
        typer.confirm(f"{why}: create a token for it anyway?", abort=True, err=True)
        return
    raise InvalidInput(field="--tenant", rule=f"{why}; pass --new-tenant to make a token for a new tenant")


def between(lo: int, hi: int) -> Callable[[int, str], int]:
    """A check for ``number``: lo..hi."""

    def check(n: int, field: str) -> int:
        if not lo <= n <= hi:
            raise InvalidInput(field=field, rule=f"{n} is outside {lo}..{hi}")
        return n

    return check
