"""The lease fence in the SSH dialects: which dialects check the epoch inside their config session
(``fence.j2``) and why the others cannot (``Dialect.unfenced``), and what vtepctl's check prints.
It is proven on real vtep-ctl over OpenSSH in tests/drivers/test_conformance.py and
tests/functional/test_fencing.py."""

from __future__ import annotations

import shlex

import pytest

from silonet.drivers.base import EPOCH_KEY, Fence, read_epoch
from silonet.drivers.ssh.dialect import FENCE, Target, dialects, render_batch
from silonet.plan import GatewayState, LogicalSwitch, apply_ops
from silonet.plan.ops import Bind, EnsureLogicalSwitch

GW = Target("gw-a", "198.18.0.1", ("p1",))
BEFORE = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset())})
OPS = [Bind("p1", 100, 5000)]


@pytest.mark.parametrize("name", sorted(dialects()))
def test_every_dialect_fences_or_says_why_not(name: str) -> None:
    dialect = dialects()[name]
    if dialect.template(FENCE) is not None:
        assert dialect.unfenced is None, f"{name} has {FENCE} and still says it cannot fence"
    else:
        assert dialect.unfenced and len(dialect.unfenced) > 20, f"{name}: say why it cannot fence"


def test_only_vtepctl_fences_among_todays_dialects() -> None:
    """The README's "Fencing" paragraph names vtepctl alone: this holds it to that."""
    assert [n for n, d in dialects().items() if d.unfenced is None] == ["vtepctl"]


def _lines(held: int | None) -> list[str]:
    return render_batch(dialects()["vtepctl"], OPS, GW, BEFORE, apply_ops(BEFORE, OPS), generation=1,
                        fence=Fence(5, "replica-a"), held=held)


def test_vtepctl_checks_and_sets_the_epoch_in_the_batchs_one_transaction() -> None:
    plain = render_batch(dialects()["vtepctl"], OPS, GW, BEFORE, apply_ops(BEFORE, OPS), generation=1)
    key = f'"{EPOCH_KEY}"'
    assert _lines(4) == [plain[0],  # vtep-ctl --timeout=10: one invocation, one transaction
                         f"add Physical_Switch gw-a other_config '{key}=\"5\"'",
                         f"wait-until Physical_Switch gw-a 'other_config:{key}=\"4\"'",
                         f"set Physical_Switch gw-a 'other_config:{key}=\"5\"'",
                         *plain[1:]]
    # a switch that held no epoch: add sets it, and the wait is for this replica's own
    assert f"wait-until Physical_Switch gw-a 'other_config:{key}=\"5\"'" in _lines(None)
    args = shlex.split(" -- ".join(_lines(4)))  # as the switch's shell splits the batch
    assert f'other_config:{key}="4"' in args and args.count("--") == len(_lines(4)) - 1


def test_a_dialect_that_cannot_fence_prints_the_same_batch_under_a_fence() -> None:
    eos = dialects()["eos"]
    ops = [EnsureLogicalSwitch(5000, "cust-42")]
    after = apply_ops(GatewayState(), ops)
    assert render_batch(eos, ops, GW, GatewayState(), after, 1, fence=Fence(5, "replica-a"), held=4) == \
        render_batch(eos, ops, GW, GatewayState(), after, 1)


@pytest.mark.parametrize(("raw", "epoch"), [
    ("7", 7), ("0", 0), ("123456789012345678", 123456789012345678), ("1234567890123456789", None),
    ("007", None), ("-1", None), ("+1", None), ("1e3", None), ("", None), (" 7", None), ("٣", None),
    (None, None), (7, None), ("7; rm -rf /", None)])
def test_a_devices_epoch_is_read_only_in_the_form_silonet_writes(raw: object, epoch: int | None) -> None:
    assert read_epoch(raw) == epoch
