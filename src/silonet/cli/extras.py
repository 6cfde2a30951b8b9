"""The tooling around the product as pip extras (``silonet[lab]``, ``silonet[bench]``): their
commands import it only when they run, and say in one line which extra to install when it is
missing, before any work starts (a benchmark must not run for minutes to fail at its plot)."""

from __future__ import annotations

import importlib.util

from silonet.errors import SilonetError

# extra -> what it must make importable: the tooling package, then what pyproject.toml's extra
# installs for it. The lab's other needs are system packages (ip, Open vSwitch, sshd: ./run setup).
EXTRAS: dict[str, tuple[str, ...]] = {
    "lab": ("silonet.lab",),
    "bench": ("silonet.bench", "silonet.devices", "matplotlib"),
}


class MissingExtra(SilonetError):
    """A command of the tooling runs where its extra is not installed."""

    code = "missing_extra"
    template = "silonet {extra} needs the '{extra}' extra: pip install 'silonet[{extra}]'"  # extra = command


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent missing, or a module blocked (None in sys.modules)
        return False


def require(extra: str) -> None:
    """Raise ``MissingExtra`` (one error line, exit 1) unless everything of ``extra`` imports."""
    if not all(_importable(module) for module in EXTRAS[extra]):
        raise MissingExtra(extra=extra)
