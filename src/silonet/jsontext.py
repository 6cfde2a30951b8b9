"""JSON text made by orjson, the standard library's where orjson refuses a value.

Two encoders were a tenth of the manager's CPU in a 1,000-gateway converge: SQLAlchemy's JSON
binds (a gateway's recorded actual state, ~160 KB with 100 flood lists of 99 addresses) and the
OVS library's ``ovs.json.to_string`` (every OVSDB transaction, keys sorted). The standard
library's C encoder took 0.62 ms for such a state, orjson 0.05 ms. The text can differ in spacing
and in how characters beyond ASCII (and DEL) are written: UTF-8, not ``\\uXXXX`` escapes. The
values read back are the same. What orjson refuses (an integer beyond 64 bits, a lone surrogate,
a datetime, a type it does not know, a key that is not a string where keys are sorted) goes to the
standard library, which writes it or raises as it always did. Not-a-number and infinities, which
the standard library writes as ``NaN``/``Infinity`` (not JSON), orjson writes as ``null``: silonet
stores and sends none.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# datetimes and dataclasses go to ``default`` (none: refused, then the standard library decides)
_PASS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
_SORTED = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_SORT_KEYS


def dumps(obj: Any) -> str:
    """``json.dumps(obj)``'s value as compact text (SQLAlchemy's ``json_serializer``)."""
    try:
        return orjson.dumps(obj, option=_PASS).decode()
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj)


def loads(text: str | bytes) -> Any:
    """``json.loads(text)`` (SQLAlchemy's ``json_deserializer``): orjson reads what silonet stored,
    the standard library what orjson refuses (``NaN``, which an older writer may have stored)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps_compact(obj: Any, indent: int | None = None, sort_keys: bool = True) -> str:
    """``json.dumps(obj, separators=(",", ":"), indent=indent, sort_keys=sort_keys)``, what the
    OVS library's ``ovs.json.dumper`` is: the same text for what the library sends (string keys,
    printable ASCII). Indented output (the library's ``pretty``) stays the standard library's."""
    if indent is None:
        try:
            return orjson.dumps(obj, option=_SORTED if sort_keys else _PASS).decode()
        except (TypeError, ValueError):
            pass
    return json.dumps(obj, separators=(",", ":"), indent=indent, sort_keys=sort_keys)
