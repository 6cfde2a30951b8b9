"""Pydantic's errors as silonet's: every problem of a request at once, each at a place a person finds.

A request with three mistakes hears of all three (``SilonetError.problems``: the API's
``problems``, one CLI line each), unknown fields first, since a misspelled key also reads as a
missing one. Places are named after the items of the input (``gateways[dc-gw2].capacty``,
``networks[shop-prod].attachments[(r1, 110)]``), not by 0-based index.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ValidationError

from silonet.errors import InvalidInput, SilonetError
from silonet.model import rules


def _label(item: Any) -> str | None:
    """How a list item is named in a message: by its name; an attachment by (group, VLAN); a port
    reference by gateway:port. None when it has no valid name yet (the index names it then)."""
    if not isinstance(item, dict):
        return None

    def ok(v: Any) -> bool:  # a name as written today (a bad name is the problem, not its label)
        return isinstance(v, str) and bool(rules.NAME_RE.fullmatch(v)) and len(v) <= rules.NAME_MAX \
            and rules.name_violation(v) is None

    if ok(item.get("name")):
        return item["name"]
    vlan = item.get("vlan")
    if ok(item.get("interface_group")) and isinstance(vlan, int) and not isinstance(vlan, bool):
        return f"({item['interface_group']}, {vlan})"
    if ok(item.get("gateway")) and ok(item.get("port")):
        return f"{item['gateway']}:{item['port']}"
    return None


class _Places:
    """Pydantic locations as places a person finds in the file: ``gateways[dc-gw2].capacty``, not
    ``gateways.1.capacty``. Items listed twice under one label keep their index."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.labels: dict[int, list[str | None]] = {}

    def _labels(self, items: list) -> list[str | None]:
        if id(items) not in self.labels:
            labels = [_label(i) for i in items]
            counts = Counter(labels)
            self.labels[id(items)] = [lb if lb is not None and counts[lb] == 1 else None for lb in labels]
        return self.labels[id(items)]

    def name(self, loc: tuple | list) -> list[str]:
        parts: list[str] = []
        node = self.data
        for step in loc:
            if isinstance(step, int):
                label = self._labels(node)[step] if isinstance(node, list) and 0 <= step < len(node) else None
                node = node[step] if isinstance(node, list) and 0 <= step < len(node) else None
                text = f"[{label if label is not None else step}]"
                parts[-1:] = [(parts[-1] if parts else "") + text]
            else:
                node = node.get(step) if isinstance(node, dict) else None
                parts.append(str(step))
        return parts


def _problems(error: dict, places: _Places, prefix: str) -> list[InvalidInput]:
    """One pydantic error as silonet problems (a validator of a whole object may report several)."""
    loc = list(error.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path"):
        loc = loc[1:]
    if error.get("type") == "json_invalid":
        loc = []
    parts = places.name(loc)
    ctx_err = (error.get("ctx") or {}).get("error")
    if not isinstance(ctx_err, SilonetError):
        rule = "unknown field" if error.get("type") == "extra_forbidden" else str(error.get("msg", "invalid"))
        return [InvalidInput(field=prefix + (".".join(parts) or "body"), rule=rule)]
    out = []
    for err in ctx_err.problems:
        here = list(parts)
        # A validator of a whole object names its field relative to that object ("ports", or
        # "management.address" from inside management): joined to where the object is.
        if err.field and (not here or isinstance(error.get("input"), dict)):
            own = err.field.split(".")
            if here and own[0] == here[-1].split("[", 1)[0]:
                here.pop()
            here += own
        out.append(InvalidInput(field=prefix + (".".join(here) or "body"), rule=str(err.fields.get("rule", err))))
    return out


def describe_errors(errors: list[Any], prefix: str = "", data: Any = None) -> InvalidInput:
    """Pydantic's error list as one InvalidInput naming the first problem, carrying all of them
    (``problems``): unknown fields first (a misspelled key also reads as a missing one), places
    named after the items of ``data`` (the input) where it has names."""
    places = _Places(data)
    found: list[InvalidInput] = []
    seen: set[str] = set()
    for error in sorted(errors or [{"loc": (), "msg": "invalid input"}],
                        key=lambda e: e.get("type") != "extra_forbidden"):
        for problem in _problems(error, places, prefix):
            if problem.message not in seen:
                seen.add(problem.message)
                found.append(problem)
    first = found[0]
    first.with_more(found[1:])
    return first


def validate(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    """``model.model_validate`` with silonet's error instead of pydantic's."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise describe_errors(err.errors(), prefix, data) from None
