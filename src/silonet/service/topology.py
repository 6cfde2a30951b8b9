"""Reading a topology file (YAML or JSON) into a validated ``Topology``.

Every problem is one ``InvalidInput`` whose message names the file, the place and the rule.
"""

from __future__ import annotations

from typing import Any

import yaml

from silonet.errors import InvalidInput
from silonet.service.schemas import Topology, validate

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 4x faster on a 4,000-network file


def parse_topology(text: str, source: str = "topology") -> Topology:
    try:
        data: Any = yaml.load(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InvalidInput(field="file", rule=f"{where}: not valid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise InvalidInput(field="file", rule=f"{source}: not valid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(
            field="file",
            rule=f"{source}: the top level must be a mapping with silos, gateways, interface_groups, networks",
        )
    return validate(Topology, data, prefix=f"{source}: ")
