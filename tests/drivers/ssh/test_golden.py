"""Every dialect renders every shared case exactly as its golden file says, and parses
its recorded show output exactly as its parsed.json says."""

from __future__ import annotations

import pytest

from silonet.drivers.ssh.dialect import Target, dialects
from tests.drivers.ssh.golden import CASES, HERE, check_golden, check_parse, render_case

DIALECTS = dialects()
TARGET = Target("gw-a", "198.18.0.1", ("p1", "p2", "p48"), ("p48",))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_rendered_batch_matches_golden(name: str, case: str) -> None:
    check_golden(HERE / "golden" / name / case / "expected.txt", render_case(DIALECTS[name], case))


PARSE = sorted((name, p) for name in DIALECTS for p in (HERE / "golden" / name).glob("parse-*") if p.is_dir())


@pytest.mark.parametrize(("name", "folder"), PARSE, ids=[f"{n}-{p.name}" for n, p in PARSE])
def test_show_output_parses_as_golden(name: str, folder) -> None:  # type: ignore[no-untyped-def]
    check_parse(DIALECTS[name], folder, TARGET)


def test_every_dialect_has_golden_parse_fixtures() -> None:
    assert {n for n, _ in PARSE} == set(DIALECTS)


def test_registry_lists_the_dialects() -> None:
    assert "vtepctl" in DIALECTS
    for d in DIALECTS.values():
        assert d.scope in ("port", "switch") and d.style in ("exec", "shell") and d.show and d.failures
