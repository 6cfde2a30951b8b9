"""The tooling is not the product (issue 18 item 8): importing the CLI or the API loads neither the
lab, the benchmarks, the device helpers, the demo nor matplotlib; `silonet network list` on a local
store loads no server, driver or remote-path library either; and a command of the tooling whose
extra is not installed says which one in one line. Each check runs in a fresh interpreter: this
test process has imported the lab already (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import ROOT

TOOLING = ("silonet.lab", "silonet.bench", "silonet.devices", "silonet.demo", "matplotlib")
NOT_ON_THE_LOCAL_PATH = (*TOOLING, "fastapi", "starlette", "uvicorn", "asyncssh", "ovs", "httpx", "silonet.api")

# Runs CODE, then prints which of WATCHED are in sys.modules (a package or any of its modules),
# at exit: after `main()`'s sys.exit too.
PROBE = """
import atexit, json, sys
WATCHED = {watched!r}
atexit.register(lambda: print("LOADED " + json.dumps(sorted(
    w for w in WATCHED if any(m == w or m.startswith(w + ".") for m in sys.modules)))))
{code}
"""


def _python(code: str, datadir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SILONET_") and k != "FORCE_COLOR"}
    base.update(SILONET_DATA_DIR=str(datadir), SILONET_CONFIG=str(datadir / "cli-config.json"), COLUMNS="200",
                **env)
    return subprocess.run([sys.executable, "-c", code], env=base, cwd=ROOT, capture_output=True, text=True,
                          encoding="utf-8", timeout=60, check=False)


def _loaded(code: str, watched: tuple[str, ...], datadir: Path) -> list[str]:
    p = _python(PROBE.format(watched=watched, code=code), datadir)
    lines = [line for line in p.stdout.splitlines() if line.startswith("LOADED ")]
    assert lines, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(lines[-1].removeprefix("LOADED "))


def test_importing_the_cli_or_the_api_loads_no_tooling(tmp_path: Path) -> None:
    assert _loaded("import silonet.cli.main\nimport silonet.api.app", TOOLING, tmp_path) == []


def test_network_list_on_a_local_store_loads_only_the_local_path(datadir: Path) -> None:
    code = "sys.argv = ['silonet', 'network', 'list']\nfrom silonet.cli.main import main\nmain()"
    p = _python(PROBE.format(watched=NOT_ON_THE_LOCAL_PATH, code=code), datadir)
    assert p.returncode == 0, p.stderr
    assert "Virtual networks" in p.stdout  # it did list (the seeded store's networks)
    assert p.stdout.splitlines()[-1] == "LOADED []"


# The extra's module made unimportable (None in sys.modules), then the CLI's entry point.
MISSING = """
import sys
sys.modules[{module!r}] = None
sys.argv = ["silonet", *{args!r}]
from silonet.cli.main import main
main()
"""


@pytest.mark.parametrize(("extra", "module", "args"), [
    ("bench", "matplotlib", ["bench", "ssh", "--changes", "1"]),
    ("bench", "silonet.bench", ["bench", "control", "--quick"]),
    ("bench", "matplotlib", ["bench", "dataplane", "--sizes", "88", "--pairs", "1"]),
    ("lab", "silonet.lab", ["lab", "status"]),
    ("lab", "silonet.lab", ["lab", "topology"]),
])
def test_a_missing_extra_is_one_line_naming_it(extra: str, module: str, args: list[str], tmp_path: Path) -> None:
    p = _python(MISSING.format(module=module, args=args), tmp_path, SILONET_LAB_DIR=str(tmp_path / "lab"))
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == f"error: silonet {extra} needs the '{extra}' extra: pip install 'silonet[{extra}]'\n"


def test_the_product_runs_without_the_tooling(datadir: Path) -> None:
    code = ("import sys\nsys.modules.update(dict.fromkeys(" + repr(TOOLING) + "))\n"
            "sys.argv = ['silonet', 'network', 'list']\nfrom silonet.cli.main import main\nmain()")
    p = _python(code, datadir)
    assert p.returncode == 0, p.stderr
    assert "Virtual networks" in p.stdout


def test_help_of_a_tooling_command_needs_no_extra(tmp_path: Path) -> None:
    p = _python(MISSING.format(module="matplotlib", args=["bench", "ssh", "--help"]), tmp_path)
    assert p.returncode == 0, p.stderr
    assert "--changes" in p.stdout
