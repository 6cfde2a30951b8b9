"""``silonet gateway probe`` refuses what it cannot use with one line per problem, and no traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import silonet


def test_bad_inline_input_is_one_line_per_problem(tmp_path: Path) -> None:
    p = silonet(tmp_path / "data", "gateway", "probe", "--driver", "ssh", "--dialect", "eos", "--address",
                "admin@198.18.0.9", "--host-key", "garbage")
    assert p.returncode == 1
    assert "Traceback" not in p.stderr and "management.host_key" in p.stderr
    assert len([x for x in p.stderr.splitlines() if x.strip()]) == 1, p.stderr


def test_neither_a_stored_gateway_nor_an_address_is_refused(tmp_path: Path) -> None:
    p = silonet(tmp_path / "data", "gateway", "probe")
    assert p.returncode == 1 and "--address" in p.stderr and "Traceback" not in p.stderr
