"""Golden files for SSH dialects: shared cases (``cases/<case>.yaml``: gateway, actual,
desired), each dialect's expected batch in ``golden/<dialect>/<case>/expected.txt``, and
parser fixtures in ``golden/<dialect>/parse-<name>/`` (``show-<i>.txt`` per show command,
``setup-<i>.txt`` per session set-up line where the recording has its answer, and
``parsed.json``). ``SILONET_UPDATE_GOLDEN=1`` rewrites them; review the diff before committing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from silonet.drivers.ssh.dialect import Dialect, Parsed, Target, device_facts, render_batch, scope_conflicts
from silonet.plan import GatewayState, diff
from silonet.plan.ownership import restrict

HERE = Path(__file__).parent
CASES = sorted(p.stem for p in (HERE / "cases").glob("*.yaml"))
UPDATE = os.environ.get("SILONET_UPDATE_GOLDEN") == "1"


def load_case(case: str) -> tuple[Target, GatewayState, GatewayState]:
    data = yaml.safe_load((HERE / "cases" / f"{case}.yaml").read_text())
    gw = data["gateway"]
    target = Target(gw["name"], gw["vtep_ip"], tuple(gw["ports"]), tuple(gw["switchbacks"]))
    return target, GatewayState.from_dict(data["actual"]), GatewayState.from_dict(data["desired"])


def render_case(dialect: Dialect, case: str) -> str:
    target, actual, desired = load_case(case)
    if dialect.scope == "switch" and (conflicts := scope_conflicts(desired)):
        vlan, vnis = conflicts[0]
        return f"refused: VLAN {vlan} would map to VNIs {', '.join(map(str, vnis))} on one {dialect.name} switch\n"
    effective, _ = restrict(desired, device_facts(dialect))
    ops = diff(effective, actual)
    return "\n".join(render_batch(dialect, ops, target, actual, effective, generation=1)) + "\n"


def check_golden(path: Path, text: str) -> None:
    if UPDATE or not path.exists():
        if not UPDATE:
            raise AssertionError(f"missing golden file {path} (run with SILONET_UPDATE_GOLDEN=1, then review)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs"


def parsed_dict(p: Parsed) -> dict:
    f = p.facts
    return {
        "owned": p.owned.to_dict(),
        "ports": None if f.ports is None else sorted(f.ports),
        "foreign_bindings": [[port, vlan, ls] for (port, vlan), ls in sorted(f.foreign_bindings.items())],
        "foreign_vnis": {str(k): v for k, v in sorted(f.foreign_vnis.items())},
        "local_macs": {str(k): sorted(v) for k, v in sorted(p.local_macs.items())},
        "faults": p.faults,
    }


def parse_fixture(dialect: Dialect, folder: Path, target: Target) -> dict:
    outputs = {cmd: (folder / f"show-{i}.txt").read_text() for i, cmd in enumerate(dialect.show)}
    return parsed_dict(dialect.parse(outputs, target))


def check_parse(dialect: Dialect, folder: Path, target: Target) -> None:
    got = json.dumps(parse_fixture(dialect, folder, target), indent=2, sort_keys=True) + "\n"
    check_golden(folder / "parsed.json", got)
