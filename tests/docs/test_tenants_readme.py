"""The README's tenant contracts example runs as written (only the scratch path is swapped)."""

from __future__ import annotations

from pathlib import Path

from tests.docs.test_readme import blocks, run


def test_tenant_contracts_walkthrough(tmp_path: Path) -> None:
    script = next(b for b in blocks("sh") if "silonet tenant create acme" in b)
    result = run(script.replace("/tmp/silonet-tenants", str(tmp_path / "data")), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kvb, vsa" in result.stdout and "20000-21999" in result.stdout and "1 / 20" in result.stdout
    assert "error: name: tenant 'globex' is still used by 1 network(s): 'cust-43' (delete them first)" in result.stderr
    assert "exit 1" in result.stdout
