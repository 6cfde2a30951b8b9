"""Every dialect's parser on output captured from real devices (``corpus/<dialect>/<case>/``).

Each case names its public source (repository, path and commit; or package, version and path)
and the platform version, and says what the device holds as the source shows it (``expected``),
never as a parser read it. The layout is ``silonet.drivers.report``'s, the one
``silonet gateway probe --save`` writes, so an operator's capture becomes a case by adding it
here and writing ``expected``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from silonet.drivers.base import ActualState
from silonet.drivers.report import CASE_FILE, Case, describe, load_case
from silonet.drivers.ssh.dialect import Target, dialects
from silonet.drivers.ssh.driver import Unsupported, replay

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.parent for p in CORPUS.glob(f"*/*/{CASE_FILE}"))
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def read(case: Case) -> ActualState:
    """What the SSH driver makes of these answers (the version command's first, when captured)."""
    t = case.target
    target = Target(t.get("name", "gw"), t.get("vtep_ip") or "", tuple(t.get("ports", ())),
                    tuple(t.get("switchbacks", ())))
    return replay(dialects()[case.dialect], target, case.outputs)


def _owned(want: dict[str, Any]) -> dict[str, Any]:
    return {"logical_switches": [], "bindings": [], "remote_macs": [], **want}


def _foreign(want: dict[str, Any]) -> dict[str, Any]:
    full = {"vnis": {}, "bindings": [], "names": [], "flood": [], **want}
    full["vnis"] = {int(k): v for k, v in full["vnis"].items()}
    return full


@pytest.mark.parametrize("folder", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_case_reads_as_its_source_says(folder: Path) -> None:
    case = load_case(folder)
    assert case.dialect == folder.parent.name, f"{folder}: dialect {case.dialect!r} filed under {folder.parent.name}"
    src = case.source
    probe = src.get("probe") or {}
    assert (src.get("repository") and src.get("path") and COMMIT.match(str(src.get("commit", "")))) or \
        (src.get("package") and src.get("version") and src.get("path")) or (probe.get("gateway") and probe.get("at")), \
        f"{folder}: source names no public origin (nor the probe of an operator's switch that saved it)"
    assert case.platform and case.platform.get("version"), f"{folder}: the platform version is not said"
    d = dialects()[case.dialect]
    missing = [cmd for cmd in d.show if cmd not in case.outputs]
    assert not missing, f"{folder}: no answer to {missing} (capture it, or fill it saying why)"
    assert case.expected is not None, f"{folder}: no `expected` (check `parsed` against the device, then rename it)"
    want = case.expected
    if "unsupported" in want:  # the driver stops after the version: no show command is asked
        with pytest.raises(Unsupported, match=re.escape(want["unsupported"])):
            read(case)
        return
    got = describe(read(case))
    assert got["owned"] == _owned(want.get("owned") or {}), "owned"
    assert got["foreign"] == _foreign(want.get("foreign") or {}), "foreign"
    wanted_faults = want.get("faults") or {}
    assert sorted(got["faults"]) == sorted(wanted_faults), f"faults: {got['faults']}"
    for where, parts in wanted_faults.items():
        for part in parts:
            assert any(part in fault for fault in got["faults"][where]), f"no fault at {where} says {part!r}: " \
                                                                          f"{got['faults'][where]}"
    assert got["vtep_ip"] == want.get("vtep_ip"), "vtep_ip"
    wanted_unusable = want.get("unusable") or {}  # port -> what the reason says (a part of it)
    assert sorted(got["unusable"]) == sorted(wanted_unusable), f"unusable: {got['unusable']}"
    for port, part in wanted_unusable.items():
        assert part in got["unusable"][port], f"port {port} is unusable because {got['unusable'][port]!r}"
    if d.version_show is not None and d.version_show in case.outputs:
        assert got["platform"] == want.get("platform"), "platform"
    if "ports" in want:
        assert got["ports"] == want["ports"], "ports"


def test_every_dialect_proven_on_a_capture() -> None:
    """Every dialect not run against the real thing here has captured device output to read."""
    covered = {p.parent.name for p in CASES}
    unproven = sorted(name for name, d in dialects().items() if d.verified != "lab" and name not in covered)
    assert not unproven, f"dialects without captured output: {unproven}"
