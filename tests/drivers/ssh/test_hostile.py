"""No value reaches a gateway's command line unchecked (issue 16, item 1).

Structurally: every ``{{ ... }}`` a template of any dialect prints ends in one of the filters of
``untrusted.SAFE_FILTERS`` for its style (a macro call prints what its own checked expressions
print), so a new template cannot forget. In practice: every dialect renders every case with a
hostile value in each slot (network name, port, flood IP, remote MAC and its IP, the gateway's
name and VTEP IP), in the desired state, the actual state or both. Where the same batch with a
harmless marker in that slot prints the marker, the hostile batch is refused with a DeviceError
before a line exists; where it does not print it, the hostile value is nowhere in the batch.
And through the SSH driver: what a dialect's parser read is checked before it is silonet's state.
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from jinja2 import nodes

from silonet.drivers.base import Fence, wait_connected
from silonet.drivers.ssh.dialect import OP_TEMPLATES, Dialect, Target, device_facts, dialects, render_batch
from silonet.drivers.ssh.dialects import junos
from silonet.drivers.ssh.driver import SshDriver
from silonet.drivers.untrusted import FAULTS, SAFE_FILTERS, TEMPLATE_FILTERS
from silonet.errors import DeviceError
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ownership import restrict
from tests.drivers.ssh.fakecli import FakeCli
from tests.drivers.ssh.golden import CASES, load_case
from tests.drivers.ssh.test_protocol import CHATTER, MODES, _gateway

DIALECTS = dialects()
STRING_FILTERS = {"tok", "q", "qfmt", "json_q"}
HOSTILE = ["00:11:22:33:44:55$(id>x)", "a;b", "--", "-x", "a b", "a\nb", "`id`", "'q'", '"q"', "a|b", "$HOME",
           "a\\b", "", "198.18.0.9;reboot"]
MARK = {"network": "zqxnet", "port": "zqxport", "flood": "198.18.99.99", "mac": "02:00:00:99:99:99",
        "mac_ip": "198.18.99.98", "gw_name": "zqxgw", "gw_ip": "198.18.99.97"}
# More templates at work than in the shared cases: a rename, a rebind, a VNI going and one coming,
# remote MACs ("mixed"); a renamed VNI moving to another VLAN with its flood list unchanged ("move");
# an untagged binding, which the check of tagged-only platforms leaves out ("untagged"); a VNI no port
# is bound to going away ("bare").
EXTRA = {"mixed": (
    GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"})),
                  5001: LogicalSwitch(5001, "cust-43", frozenset({"198.18.0.2", "198.18.0.3"}))},
                 {("p1", 100): 5000, ("p2", 200): 5001},
                 {(5000, "02:00:00:00:00:0a"): "198.18.0.2"}),
    GatewayState({5000: LogicalSwitch(5000, "cust-42b", frozenset({"198.18.0.3"})),
                  5002: LogicalSwitch(5002, "cust-44", frozenset({"198.18.0.2"}))},
                 {("p1", 100): 5000, ("p2", 101): 5000, ("p1", 201): 5002},
                 {(5000, "02:00:00:00:00:0b"): "198.18.0.3"}),
), "move": (
    GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 100): 5000}),
    GatewayState({5000: LogicalSwitch(5000, "cust-42b", frozenset({"198.18.0.2"}))}, {("p1", 101): 5000}),
), "untagged": (
    GatewayState(),
    GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 0): 5000}),
), "bare": (
    GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}),
    GatewayState(),
)}
# Templates that call a string-printing macro in a way that never prints a string, and why.
NEVER_PRINTS = {("cumulus", "remove_logical_switch.j2"): "post() prints the ports an Unbind empties, never here"}


# ------------------------------------------------------------------ every printed expression is filtered
def _trees(dialect: Dialect) -> dict[str, nodes.Template]:
    folder = dialect.folder / "templates"
    return {p.name: dialect.env.parse(p.read_text()) for p in sorted(folder.glob("*.j2"))}


def _approved(expr: nodes.Node, style: str, macros: set[str]) -> bool:
    if isinstance(expr, nodes.TemplateData):
        return True
    if isinstance(expr, nodes.Filter) and expr.name in SAFE_FILTERS[style]:
        # qfmt's format is the template's own literal text, never a value
        return expr.name != "qfmt" or (isinstance(expr.node, nodes.Const) and isinstance(expr.node.value, str))
    if isinstance(expr, nodes.Call):  # a macro prints through its own (checked) expressions
        callee = expr.node
        return (isinstance(callee, nodes.Name) and callee.name in macros) or (
            isinstance(callee, nodes.Getattr) and callee.attr in macros)
    return False


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_printed_expression_ends_in_a_checking_filter(name: str) -> None:
    dialect = DIALECTS[name]
    assert SAFE_FILTERS[dialect.style] <= set(TEMPLATE_FILTERS)
    assert all(dialect.env.filters[f] is TEMPLATE_FILTERS[f] for f in TEMPLATE_FILTERS)
    trees = _trees(dialect)
    assert set(OP_TEMPLATES.values()) & set(trees), "no templates found"
    macros = {m.name for tree in trees.values() for m in tree.find_all(nodes.Macro)}
    unchecked = [f"{file}:{expr.lineno}: {type(expr).__name__} {getattr(expr, 'name', '')}"
                 for file, tree in trees.items() for out in tree.find_all(nodes.Output) for expr in out.nodes
                 if not _approved(expr, dialect.style, macros)]
    assert not unchecked, f"{name}: printed without one of {sorted(SAFE_FILTERS[dialect.style])}: {unchecked}"


def test_the_structural_check_catches_an_unfiltered_value() -> None:
    """The check above can fail: the old vtepctl line, and the other ways of printing a value."""
    env = DIALECTS["vtepctl"].env
    for bad in ("add-ucast-remote {{ ls | q }} {{ op.mac }} {{ op.vtep_ip }}", "{{ x if y }}", "{{ 'a' ~ x }}",
                "{{ x | lower }}", "{{ x | tok }}", "{{ fmt | qfmt(x) }}", "{{ helper(x) }}"):
        tree = env.parse(bad)
        assert not all(_approved(e, "exec", set()) for out in tree.find_all(nodes.Output) for e in out.nodes), bad


# ------------------------------------------------------------------ hostile values are refused
def _states(case: str) -> tuple[Target, GatewayState, GatewayState]:
    if case in EXTRA:
        return Target("gw-a", "198.18.0.1", ("p1", "p2", "p48"), ("p48",)), *EXTRA[case]
    return load_case(case)


def _with_network(state: GatewayState, value: str) -> GatewayState:
    return replace(state, logical_switches={v: ls._replace(network=value) for v, ls in state.logical_switches.items()})


def _with_port(state: GatewayState, value: str) -> GatewayState:
    return replace(state, bindings={(value if p == "p1" else p, v): n for (p, v), n in state.bindings.items()})


def _with_flood(state: GatewayState, value: str) -> GatewayState:
    return replace(state, logical_switches={v: ls._replace(flood=ls.flood | {value})
                                            for v, ls in state.logical_switches.items()})


def _with_mac(state: GatewayState, value: str) -> GatewayState:
    return replace(state, remote_macs={**state.remote_macs,
                                       **{(v, value): "198.18.0.7" for v in state.logical_switches}})


def _with_mac_ip(state: GatewayState, value: str) -> GatewayState:
    return replace(state, remote_macs={**state.remote_macs,
                                       **{(v, "02:00:00:00:77:77"): value for v in state.logical_switches}})


STATE_SLOTS = {"network": _with_network, "port": _with_port, "flood": _with_flood, "mac": _with_mac,
               "mac_ip": _with_mac_ip}


def _render(dialect: Dialect, case: str, slot: str, where: str, value: str) -> list[str] | None:
    """The batch with ``value`` in ``slot`` of the desired/actual/both states (or the gateway);
    None when the platform cannot hold the case at all (a switch-wide VLAN conflict)."""
    target, actual, desired = _states(case)
    if not dialect.remote_macs:  # such a device holds none
        actual, desired = replace(actual, remote_macs={}), replace(desired, remote_macs={})
    if slot in STATE_SLOTS:
        poison = STATE_SLOTS[slot]
        if where in ("desired", "both"):
            desired = poison(desired, value)
        if where in ("actual", "both"):
            actual = poison(actual, value)
        if slot == "port":
            target = replace(target, ports=tuple(value if p == "p1" else p for p in target.ports))
    elif slot == "gw_name":
        target = replace(target, name=value)
    else:
        target = replace(target, vtep_ip=value)
    effective, _ = restrict(desired, device_facts(dialect))
    ops = diff(effective, actual)
    try:
        return render_batch(dialect, ops, target, actual, effective, generation=1, fence=Fence(3, "replica-a"),
                            held=2)  # a fencing dialect's fence.j2 prints the gateway's name too
    except DeviceError as err:
        if "refused to put" in err.fields["reason"]:
            raise
        return None  # the dialect refuses the case itself (VLAN 1, one VLAN for two VNIs, ...)


VARIANTS = [(slot, where) for slot in STATE_SLOTS for where in ("desired", "actual", "both")] + [
    ("gw_name", "gateway"), ("gw_ip", "gateway")]


def _prints_strings(dialect: Dialect) -> set[str]:
    """The templates that print a string value, themselves or through a macro they call."""
    trees = _trees(dialect)
    macros = {m.name: m for tree in trees.values() for m in tree.find_all(nodes.Macro)}
    printing = {name for name, m in macros.items() if any(f.name in STRING_FILTERS for f in m.find_all(nodes.Filter))}
    while more := {name for name, m in macros.items() if name not in printing and any(  # a macro calling one
            getattr(c.node, "attr", getattr(c.node, "name", None)) in printing for c in m.find_all(nodes.Call))}:
        printing |= more
    return {file for file, tree in trees.items() if not file.startswith("_") and (
        any(f.name in STRING_FILTERS for out in tree.find_all(nodes.Output) for f in out.find_all(nodes.Filter))
        or any(getattr(c.node, "attr", getattr(c.node, "name", None)) in printing for c in tree.find_all(nodes.Call)))}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_hostile_values_never_reach_a_command_line(name: str) -> None:
    dialect = DIALECTS[name]
    refused_in: set[str] = set()
    rendered = 0
    for case in [*CASES, *EXTRA]:
        for slot, where in VARIANTS:
            if slot.startswith("mac") and not dialect.remote_macs:
                continue  # such a device holds no remote MACs: none in any state
            benign = _render(dialect, case, slot, where, MARK[slot])
            if benign is None:
                continue
            printed = MARK[slot] in "\n".join(benign)
            for value in HOSTILE:
                try:
                    lines = _render(dialect, case, slot, where, value)
                except DeviceError as err:
                    reason = err.fields["reason"]
                    assert "nothing was sent" in reason and repr(value)[1:20] in reason, reason
                    refused_in.add(reason.split(" ", 1)[0].split(":", 1)[0])
                    continue
                rendered += 1
                assert lines is not None, f"{case}/{slot}/{where}/{value!r}: refused for another reason"
                text = "\n".join(lines)
                if printed:  # only an exec batch could carry it, and only as one whole shell argument
                    assert dialect.style == "exec", f"{case} {slot} ({where}): {value!r} printed:\n{text}"
                    args = shlex.split(dialect.join.join(lines))
                    assert value in args and len(args) == len(shlex.split(dialect.join.join(benign)))
                else:  # the slot is not printed: the batch is the harmless one's
                    assert sorted(lines) == sorted(benign), f"{case} {slot} ({where}): {value!r} changed\n{text}"
    assert rendered, "every variant was refused: the benign renderings prove nothing"
    missing = _prints_strings(dialect) - refused_in - {t for (d, t) in NEVER_PRINTS if d == name}
    assert not missing, f"{name}: templates never refused a hostile value: {sorted(missing)} (add a case)"


def test_refusal_names_the_role_and_the_value_and_sends_nothing() -> None:
    dialect = DIALECTS["vtepctl"]
    target, actual, desired = load_case("add-vni")
    desired = _with_mac(desired, "00:11:22:33:44:55$(id>x)")
    with pytest.raises(DeviceError) as err:
        render_batch(dialect, diff(desired, actual), target, actual, desired)
    reason = err.value.fields["reason"]
    assert reason.startswith("set_remote_mac.j2 (SetRemoteMac): refused to put the mac of the operation "
                             "'00:11:22:33:44:55$(id>x)' on a command line"), reason
    assert err.value.fields["gateway"] == "gw-a"


# ------------------------------------------------------------------ a hostile reading, through the driver
def test_the_ssh_driver_checks_what_a_dialect_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Junos over real SSH (a fake CLI on 127.0.0.1) with a VLAN named like silonet's but holding a
    command separator and a flood IP that is not one: the read reports both as faults, the VLAN is
    someone else's, and emptying the gateway types nothing about it (before: ``delete vlans
    silonet-a;reboot`` and its membership were typed into the CLI)."""
    vlans = "\n".join([
        "set vlans silonet-a;reboot vlan-id 100", "set vlans silonet-a;reboot vxlan vni 5000",
        "set vlans silonet-a;reboot vxlan static-remote-vtep-list 198.18.0.2",
        "set vlans silonet-cust-43 vlan-id 101", "set vlans silonet-cust-43 vxlan vni 5001",
        "set vlans silonet-cust-43 vxlan static-remote-vtep-list 198.18.0.2",
        'set vlans silonet-cust-43 vxlan static-remote-vtep-list "198.18.0.3 | display"'])
    interfaces = "\n".join([
        "set interfaces p1 unit 0 family ethernet-switching interface-mode trunk",
        "set interfaces p1 unit 0 family ethernet-switching vlan members silonet-a;reboot",
        "set interfaces p1 unit 0 family ethernet-switching vlan members silonet-cust-43",
        "set interfaces lo0 unit 0 family inet address 198.18.0.1/32"])
    prompt, modes = MODES["junos"]
    cli = FakeCli(tmp_path, prompt=prompt, modes=modes, show={
        **CHATTER["junos"], junos.PAGER_OFF: "Screen length set to 0", junos.SHOW_VLANS: vlans,
        junos.SHOW_INTERFACES: interfaces, junos.SHOW_SWITCH_OPTIONS: "set switch-options vtep-source-interface lo0.0"})

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway("junos", cli), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
                actual = await driver.read()
                assert actual.owned == GatewayState({5001: LogicalSwitch(5001, "cust-43", frozenset({"198.18.0.2"}))},
                                                    {("p1", 101): 5001})
                assert actual.facts.foreign_vnis == {5000: "a;reboot"}
                assert actual.facts.foreign_bindings[("p1", 100)] == "a;reboot"
                assert actual.faults == {FAULTS: [
                    "junos show output: VNI 5000 network name 'a;reboot' is not a name silonet writes; taken for "
                    "someone else's",
                    "junos show output: VNI 5001 flood list IP '198.18.0.3 | display' is not an IPv4 address; "
                    "ignored"]}
                mark = len(cli.lines)
                await driver.apply(diff(GatewayState(), actual.owned))
                typed = cli.lines[mark:]
                assert "delete vlans silonet-cust-43" in typed
                assert not [line for line in typed if "reboot" in line or "display" in line], typed
            finally:
                await driver.close()

    asyncio.run(scenario())
