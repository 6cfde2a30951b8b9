"""The shape of the source tree (issue 18): small modules, no two modules importing each other
at run time, imports pointing down the layers, and tooling kept out of the product."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "silonet"
MAX_LINES = 500
TOOLING = ("silonet.lab", "silonet.bench", "silonet.devices", "silonet.demo")
PURE = ("silonet.model", "silonet.plan")
IO_MODULES = ("sqlalchemy", "asyncio", "socket", "subprocess", "asyncssh", "ovs", "fastapi", "httpx", "threading")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> set[str]:
    """What the module imports at run time (anywhere but under ``if TYPE_CHECKING``), as modules
    of the package (``from pkg import mod`` names the submodule when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                out.add(base)
                out.update(f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in MODULES)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in out if m in MODULES and m != name}


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_module_over_the_size_limit() -> None:
    big = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (a module that big does two jobs): {big}"


def test_no_two_modules_import_each_other() -> None:
    pairs = sorted({tuple(sorted((a, b))) for a, deps in IMPORTS.items() for b in deps
                    if a in IMPORTS.get(b, ()) and not _package_of(a, b)})
    assert not pairs, f"modules importing each other at run time: {pairs}"


def _package_of(a: str, b: str) -> bool:
    """A package's ``__init__`` re-exporting its submodule, which imports a sibling through the
    package, is one unit (``from silonet.model import Gateway`` inside ``silonet.model.x``)."""
    return a.startswith(b + ".") or b.startswith(a + ".")


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_io(layer: str) -> None:
    bad = {}
    for name, path in MODULES.items():
        if name == layer or name.startswith(layer + "."):
            tree = ast.parse(path.read_text())
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
            io = sorted(m for m in names if m.split(".")[0] in IO_MODULES)
            upward = sorted(m for m in names if m.startswith("silonet.")
                            and not m.startswith(PURE) and m not in ("silonet.errors", "silonet.heap"))
            if io or upward:
                bad[name] = io + upward
    assert not bad, f"the pure layer {layer} imports I/O or a layer above it: {bad}"


def test_the_product_imports_no_tooling() -> None:
    """The product's modules never import the lab, the benchmarks, the device helpers or the demo
    (the CLI names them only inside the commands that run them)."""
    bad = {name: sorted(d for d in deps if d.startswith(TOOLING))
           for name, deps in IMPORTS.items()
           if not name.startswith(TOOLING) and not name.startswith("silonet.cli")}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"product modules importing tooling: {bad}"
