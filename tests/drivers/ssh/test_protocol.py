"""The SSH driver against a fake vendor CLI over real SSH (127.0.0.1 only): for each shell
dialect one connection reads and parses canned show output, applies a batch exactly as its
golden file says (framed by the session commands), and a refused line sends the abort lines
and raises a DeviceError naming the gateway. Host keys: an unknown key is refused unless
trust on first use is on, and then it is recorded."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from silonet.drivers.base import wait_connected
from silonet.drivers.ssh.dialect import Target, dialects, render_abort
from silonet.drivers.ssh.driver import SshDriver
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.model.entities import Management, Port
from silonet.plan import diff
from tests.drivers.ssh.fakecli import FakeCli
from tests.drivers.ssh.golden import HERE, load_case, parse_fixture, parsed_dict

TARGET = Target("gw-a", "198.18.0.1", ("p1", "p2", "p48"), ("p48",))

# How each CLI's prompt moves between modes (regex on the line typed -> the prompt after it).
MODES = {
    "eos": ("gw-a#", [(r"^configure session \S+$", "gw-a(config-s-silone)#"),
                      (r"^vlan (\d+)$", "gw-a(config-s-silone-vlan-{1})#"),
                      (r"^interface Vxlan1$", "gw-a(config-s-silone-if-Vx1)#"),
                      (r"^interface (\S+)$", "gw-a(config-s-silone-if-{1})#"),
                      (r"^(commit|abort)$", "gw-a#")]),
    "nxos": ("gw-a#", [(r"^configure terminal$", "gw-a(config)#"),
                       (r"^vlan \d+$", "gw-a(config-vlan)#"),
                       (r"^interface nve1$", "gw-a(config-if-nve)#"),
                       (r"^\s+member vni \d+$", "gw-a(config-if-nve-vni)#"),
                       (r"^interface \S+$", "gw-a(config-if)#"),
                       (r"^end$", "gw-a#")]),
    "junos": ("admin@gw-a>", [(r"^configure private$", "admin@gw-a#"),
                              (r"^(commit and-quit|exit configuration-mode)$", "admin@gw-a>")]),
}
# Answers a real session prints besides show output (so failure checks see realistic text).
CHATTER = {
    "eos": {"terminal length 0": "Pagination disabled.",
            "show version | json": '{"modelName": "cEOSLab", "version": "4.30.0F-31408673.4300F (engineering build)"}'},
    "nxos": {"copy running-config startup-config": "[########################################] 100%\nCopy complete.",
             "show version | json": '{"kickstart_ver_str": "9.3(4)", "nxos_ver_str": "9.3(4)", '
                                    '"chassis_id": "Nexus9000 C9300v Chassis", "host_name": "gw-a"}'},
    "junos": {"set cli screen-length 0": "Screen length set to 0",
              "configure private": "warning: uncommitted changes will be discarded on exit\nEntering configuration "
                                   "mode\n\n[edit]",
              "commit and-quit": "commit complete\nExiting configuration mode",
              "rollback 0": "load complete\n\n[edit]", "exit configuration-mode": "Exiting configuration mode",
              "show version | display xml": '<rpc-reply xmlns:junos="http://xml.juniper.net/junos/18.4R1/junos">\n'
                                            "<software-information><host-name>gw-a</host-name><product-model>"
                                            "qfx5100-48s-6q</product-model><junos-version>18.4R1.8</junos-version>"
                                            "</software-information>\n</rpc-reply>"},
}
# A switch with nothing of silonet's on it, as each show command answers it.
EMPTY = {
    "eos": ['{"interfaces": {"Vxlan1": {"name": "Vxlan1", "vlanToVniMap": {}, "vlanToVtepList": {}}}}',
            '{"sourceDetail": "", "vlans": {"1": {"status": "active", "name": "default", "interfaces": {}, '
            '"dynamic": false}}}',
            '{"switchports": {"p1": {"enabled": true, "switchportInfo": {"mode": "trunk", '
            '"trunkAllowedVlans": "1"}}}}'],
    "nxos": ['{"TABLE_vlanbrief": {"ROW_vlanbrief": {"vlanshowbr-vlanid": "1", "vlanshowbr-vlanname": "default"}}}',
             "",
             "interface p1\n  switchport\n  switchport mode trunk\n\ninterface nve1\n  no shutdown\n"
             "  source-interface loopback0"],
    "junos": ["", "", ""],
}
# The line of the add-vni batch the fake switch refuses, and what it answers.
REFUSE = {
    "eos": ("   vxlan vlan add 100 vni 5000", "% Invalid input (at token 3: '100')"),
    "nxos": ("  vn-segment 5000", "ERROR: VLAN 3064: vn-segment is in use"),
    "junos": ("commit and-quit", "[edit vlans silonet-cust-42]\n  'vxlan'\n    error: VNI 5000 is in use\nerror: "
                        "configuration check-out failed"),
}


def _canned(name: str, folder: Path) -> dict[str, str]:
    """The parse fixture's show output as the fake switch prints it (the prompt is its own)."""
    prompt = re.compile(dialects()[name].prompt)
    out = {}
    for i, cmd in enumerate(dialects()[name].show):
        lines = (folder / f"show-{i}.txt").read_text().rstrip("\n").splitlines()
        if lines and prompt.search(lines[-1]):
            lines = lines[:-1]
        out[cmd] = "\n".join(lines)
    return out


def _gateway(name: str, cli: FakeCli, tofu: bool = False) -> Gateway:
    return Gateway("gw-a", "198.18.0.1",
                   Management(driver="ssh", address=cli.address, dialect=name, credentials=f"file:{cli.client_key}",
                              trust_on_first_use=tofu),
                   ports=(Port("p1"), Port("p2"), Port("p48", switchback=True)))



@pytest.mark.parametrize("name", ["eos", "nxos", "junos"])
def test_read_apply_and_refusal_over_one_connection(name: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    dialect = dialects()[name]
    prompt, modes = MODES[name]
    empty = dict(zip(dialect.show, EMPTY[name], strict=True))
    cli = FakeCli(tmp_path, prompt=prompt, modes=modes, show={**CHATTER[name], **empty})
    _target, case_actual, case_desired = load_case("add-vni")
    ops = diff(case_desired, case_actual)
    golden = (HERE / "golden" / name / "add-vni" / "expected.txt").read_text().splitlines()

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway(name, cli), on_change=lambda: None)
            driver.generation = 0  # the golden files name the config session after generation 1
            await driver.start()
            try:
                await wait_connected(driver)
                # the session's set-up once, then read an empty switch, then apply the add-vni
                # batch: exactly the golden lines
                assert dialect.setup
                assert (await driver.read()).owned == case_actual
                asked = [dialect.version_show] if dialect.version_show else []  # the platform, once per session
                assert cli.lines == [*dialect.setup, *asked, *dialect.show]
                await driver.apply(ops)
                assert cli.lines[len(dialect.setup) + len(asked) + len(dialect.show):] == golden
                mark = len(cli.lines)
                await driver.read()
                assert cli.lines[mark:] == list(dialect.show)  # set-up is not sent again
                # read again: the canned documented output parses as parsed.json says
                cli.show.update(_canned(name, HERE / "golden" / name / "parse-doc"))
                got = await driver.read()
                expected = parse_fixture(dialect, HERE / "golden" / name / "parse-doc", TARGET)
                assert parsed_dict(got) == expected
                # a refused line (on the empty switch again): the abort lines follow it, nothing
                # else, and the error names the gateway and the line
                cli.show.update(empty)
                await driver.read()
                bad, answer = REFUSE[name]
                cli.fail[bad] = answer
                mark = len(cli.lines)
                with pytest.raises(DeviceError) as err:
                    await driver.apply(ops)
                assert "gw-a" in str(err.value) and bad.strip() in str(err.value)
                sent = cli.lines[mark:]
                abort = render_abort(dialect, TARGET, driver.generation)
                assert bad in sent and sent[sent.index(bad) + 1:] == abort
                # the session is still usable afterwards
                await driver.read()
                assert driver.health().connected and cli.sessions == 1
            finally:
                await driver.close()

    asyncio.run(scenario())


def test_unknown_host_key_is_refused_without_trust_on_first_use(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cli = FakeCli(tmp_path)

    async def scenario() -> None:
        async with cli:
            other = FakeCli(tmp_path / "other")  # a known_hosts entry for another key on the same port
            other.port = cli.port
            cli.known_hosts.write_text(other.known_hosts_entry() + "\n")
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway("eos", cli), on_change=lambda: None)
            await driver.start()
            try:
                await asyncio.sleep(1.0)
                assert not driver.health().connected
                assert "host key" in driver.health().detail.lower()
                assert cli.sessions == 0
            finally:
                await driver.close()
            assert cli.known_hosts.read_text() == other.known_hosts_entry() + "\n"

    asyncio.run(scenario())


def test_unknown_host_key_is_trusted_and_recorded_on_first_use(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cli = FakeCli(tmp_path, show={"terminal length 0": ""})

    async def scenario() -> None:
        async with cli:
            cli.known_hosts.write_text("")
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway("eos", cli, tofu=True), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
            finally:
                await driver.close()
            assert cli.known_hosts.read_text().splitlines() == [cli.known_hosts_entry()]
            # and the recorded key is trusted from then on, without trust on first use
            driver = SshDriver(_gateway("eos", cli, tofu=False), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
            finally:
                await driver.close()

    asyncio.run(scenario())
