"""``silonet export``: the intent as a topology file (``GET /v1/export``, service/export.py), printed
as the YAML ``silonet apply -f`` reads, from the local store or a server."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from silonet.cli import render

# Values equal to the input's default, left out of the YAML a person reads; ``apply_set`` stays
# (absent there means the applying call's set, '' means none).
_DEFAULTS: tuple[Any, ...] = (None, False, "", [])


def compact(data: Any) -> Any:
    """Topology data without the fields at their input defaults (``apply_set`` kept): applied, the
    same as the whole."""
    if isinstance(data, list):
        return [compact(item) for item in data]
    if isinstance(data, dict):
        return {k: compact(v) for k, v in data.items()
                if k == "apply_set" or not any(v is d or (v == d and type(v) is type(d)) for d in _DEFAULTS)}
    return data


# A string printed plain (unquoted) when it is one of these and YAML reads it back as a string
# (not ``true``, ``1_0``, ``2024-01-01``...); any other is quoted as PyYAML quotes it in a flow
# mapping, and one that is not printable (line breaks, tabs) on one double-quoted line.
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@-]*")
_STR = "tag:yaml.org,2002:str"


@functools.lru_cache(maxsize=1 << 16)  # names repeat: p1, ig-0001, a set...
def _string(value: str) -> str:
    import yaml

    if _PLAIN.fullmatch(value) and yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False)) == _STR:
        return value
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump([value], Dumper=dumper, default_style=None if value.isprintable() else '"',
                         default_flow_style=True, width=10**9, allow_unicode=True))[1:-2]


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value) if isinstance(value, int) else _string(value)


def _flat(value: Any) -> bool:
    return isinstance(value, dict) and not any(isinstance(v, dict | list) for v in value.values())


def _mapping(data: dict[str, Any], indent: str, first: str, out: list[str]) -> None:
    for i, (key, value) in enumerate(data.items()):
        head = f"{first if i == 0 else indent}{key}:"
        if isinstance(value, list) and value:
            out.append(head)
            for item in value:
                if _flat(item):
                    out.append(f"{indent}- {_flow(item)}")
                elif isinstance(item, dict):
                    _mapping(item, indent + "  ", indent + "- ", out)
                else:
                    out.append(f"{indent}- {_scalar(item)}")
        elif isinstance(value, list | dict):  # a flat mapping, or an empty one or list
            out.append(f"{head} {_flow(value) if value else '[]' if isinstance(value, list) else '{}'}")
        else:
            out.append(f"{head} {_scalar(value)}")


def _flow(data: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in data.items()) + "}"


def as_yaml(data: dict[str, Any]) -> str:
    """Block style, each attachment, port and member a flow mapping on one line (as
    examples/topology.yaml): the text ``yaml.dump(..., default_flow_style=None)`` prints for
    silonet's names and values (odd strings are quoted where PyYAML may not), written here because
    PyYAML's representer takes seconds for a fleet (1,000 gateways: 3.4 s, this 0.4 s)."""
    out: list[str] = []
    _mapping(compact(data), "", "", out)
    return "\n".join(out) + "\n" if out else "{}\n"


def command(backend: Callable[[], Any]) -> Callable[..., None]:
    """The command, exporting through ``backend()`` (the CLI's local store or server)."""

    def export(
        apply_set: Annotated[str | None, typer.Option("--set", help="only this apply set's objects (apply them "
                                                                   "with --set and --prune to make another "
                                                                   "store's set the same)")] = None,
        json_: Annotated[bool, typer.Option("--json", help="print the API's JSON (every field) instead")] = False,
    ) -> None:
        """Print the inventory and networks as a topology file, each object with its apply set ('': none):
        `silonet apply -f` of it changes nothing. Credentials are printed as the references they are."""
        data = backend().export(apply_set)
        if json_:
            render.as_json(data)
        else:
            sys.stdout.write(as_yaml(data))

    return export
