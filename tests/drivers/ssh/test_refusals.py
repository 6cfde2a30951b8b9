"""What one switch of a platform cannot hold fails that binding alone (issue 18, item 3).

A dialect's ``check`` names the bindings its platform cannot hold; the SSH driver puts it into
the facts it reads (``DeviceFacts.refuse``), and ``restrict`` leaves those bindings out, each a
binding error of its attachment naming the rule (the reconciler records restrict's failures as
binding errors). The rest of the batch is exactly what it would be without them: nothing of a
refused binding is typed, and nothing else is held back. A batch that still holds one is
refused before a line exists (the framework asks ``check`` again when it renders).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from silonet.drivers.base import wait_connected
from silonet.drivers.ssh.dialect import Target, device_facts, dialects, render_batch
from silonet.drivers.ssh.dialects import eos
from silonet.drivers.ssh.driver import SshDriver
from silonet.errors import DeviceError
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ownership import restrict
from tests.drivers.ssh.fakecli import FakeCli
from tests.drivers.ssh.golden import HERE, load_case
from tests.drivers.ssh.test_protocol import CHATTER, EMPTY, MODES, _gateway

GW = Target("gw-a", "198.18.0.1", ("p1", "p2", "p48"), ("p48",))
GOOD = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 100): 5000})
LONG = "x" * 30  # silonet-<LONG> is 38 characters


def _with(switches: dict[int, str], bindings: dict[tuple[str, int], int]) -> GatewayState:
    more = {vni: LogicalSwitch(vni, name, frozenset({"198.18.0.3"})) for vni, name in switches.items()}
    return GatewayState({**GOOD.logical_switches, **more}, {**GOOD.bindings, **bindings})


UNTAGGED = (_with({}, {("p2", 0): 5000}), ("p2", 0), "maps tagged VLANs only; VLAN 0 (untagged) cannot carry VNI 5000")
TWO_VLANS = (_with({}, {("p2", 200): 5000}), ("p2", 200), "VNI 5000 would need VLANs 100, 200 on one switch")
TWO_VNIS = (_with({5001: "cust-43"}, {("p2", 100): 5001}), ("p2", 100),
            "VLAN 100 would map to VNIs 5000, 5001 on one switch")
LONG_NAME = (_with({5001: LONG}, {("p2", 101): 5001}), ("p2", 101),
             "its VLAN name 'silonet-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' would be 38 characters, the platform allows 32")
# (dialect, desired state: GOOD and one binding more, the binding refused, the rule its error names)
CASES = [
    *[(name, *UNTAGGED) for name in ("eos", "junos", "nxos", "alaxala")],
    *[(name, *TWO_VLANS) for name in ("eos", "junos", "alaxala", "sonic", "cumulus")],
    *[(name, *TWO_VNIS) for name in ("eos", "junos", "alaxala", "sonic", "cumulus")],
    ("eos", *LONG_NAME),
    ("nxos", *LONG_NAME),
    ("nxos", _with({6968: "cust-43"}, {("p2", 101): 6968}), ("p2", 101),
     "VNIs 5000 and 6968 would both translate to VLAN 3064 on this switch; VNI 5000 keeps it"),
    ("nxos", _with({}, {("p1", 101): 5000}), ("p1", 101),
     "VLANs 100 and 101 of port p1 would both map to VLAN 3064 (VNI 5000)"),
    *[(name, _with({}, {("p2", 1): 5000}), ("p2", 1), "VLAN 1 is the switch's default VLAN")
      for name in ("sonic", "cumulus")],
    *[(name, _with({}, {("p1", 0): 5000}), ("p1", 0), "port p1 cannot be both a tagged and the untagged member of "
                                                      "VLAN 100") for name in ("sonic", "cumulus")],
]


@pytest.mark.parametrize(("name", "desired", "refused", "rule"), CASES,
                         ids=[f"{c[0]}-{c[2][0]}-{c[2][1]}-{c[3][:12]}" for c in CASES])
def test_a_refused_binding_fails_alone_and_the_good_one_is_applied(
        name: str, desired: GatewayState, refused: tuple[str, int], rule: str) -> None:
    dialect = dialects()[name]
    facts = device_facts(dialect)
    assert facts.refuse is dialect.check is not None
    effective, failures = restrict(desired, facts)
    assert list(failures) == [refused] and rule in failures[refused], failures
    alone, _ = restrict(GOOD, facts)
    assert effective == alone  # the good binding, as if the refused one had never been asked for
    lines = render_batch(dialect, diff(effective, GatewayState()), GW, GatewayState(), effective, generation=1)
    assert lines == render_batch(dialect, diff(alone, GatewayState()), GW, GatewayState(), alone, generation=1)
    assert any("100" in line for line in lines)
    with pytest.raises(DeviceError) as err:  # never typed, even by a caller that did not restrict
        render_batch(dialect, diff(desired, GatewayState()), GW, GatewayState(), desired, generation=1)
    assert rule in err.value.fields["reason"] and "nothing was sent" in err.value.fields["reason"]


def test_every_switch_scoped_dialect_checks_and_prepares() -> None:
    for dialect in dialects().values():
        if dialect.name != "vtepctl":
            assert dialect.check is not None and dialect.prepare is not None, dialect.name


def test_over_ssh_the_good_binding_is_typed_and_the_refused_ones_are_binding_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EOS over real SSH (a fake CLI on 127.0.0.1): the read's facts carry the dialect's check; of
    one desired state with the add-vni case's binding, an untagged one and one of a network whose
    VLAN name is too long, the switch gets exactly the add-vni golden lines (before: the batch
    began with ``silonet-refuses`` lines the switch rejected, and nothing was applied)."""
    dialect = dialects()["eos"]
    prompt, modes = MODES["eos"]
    trunks = {p: {"enabled": True, "switchportInfo": {"mode": "trunk", "trunkAllowedVlans": "1"}} for p in ("p1", "p2")}
    cli = FakeCli(tmp_path, prompt=prompt, modes=modes,
                  show={**CHATTER["eos"], **dict(zip(dialect.show, EMPTY["eos"], strict=True)),
                        eos.SHOW_SWITCHPORT: json.dumps({"switchports": trunks})})
    _target, _actual, case = load_case("add-vni")
    desired = GatewayState({**case.logical_switches, 5001: LogicalSwitch(5001, LONG, frozenset({"198.18.0.2"}))},
                           {**case.bindings, ("p2", 0): 5000, ("p2", 101): 5001})
    golden = (HERE / "golden" / "eos" / "add-vni" / "expected.txt").read_text().splitlines()

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway("eos", cli), on_change=lambda: None)
            driver.generation = 0  # the golden file names the config session after generation 1
            await driver.start()
            try:
                await wait_connected(driver)
                actual = await driver.read()
                assert actual.facts.refuse is dialect.check
                effective, failures = restrict(desired, actual.facts)  # as a reconcile pass does
                assert effective == case
                assert failures == {
                    ("p2", 0): "the eos dialect maps tagged VLANs only; VLAN 0 (untagged) cannot carry VNI 5000",
                    ("p2", 101): f"its VLAN name 'silonet-{LONG}' would be 38 characters, the platform allows 32"}
                mark = len(cli.lines)
                await driver.apply(diff(effective, actual.owned))
                assert cli.lines[mark:] == golden
            finally:
                await driver.close()

    asyncio.run(scenario())
