"""The exec-style Linux-shell dialects (``sonic``, ``cumulus``) through a real ``SshDriver``
against the fake CLI over real SSH (127.0.0.1 only): each show command is one exec, a batch
is ONE exec of the golden lines joined with the dialect's ``join``, the documented show
output parses as its parsed.json says, and a refusal (non-zero exit status, or a failure
string on a zero exit) raises a DeviceError naming the gateway and quoting the device."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from silonet.drivers.base import wait_connected
from silonet.drivers.ssh.dialect import Target, dialects
from silonet.drivers.ssh.dialects import cumulus, sonic
from silonet.drivers.ssh.driver import SshDriver
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.model.entities import Management, Port
from silonet.plan import diff
from tests.drivers.ssh.fakecli import FakeCli
from tests.drivers.ssh.golden import HERE, load_case, parse_fixture, parsed_dict

TARGET = Target("gw-a", "198.18.0.1", ("p1", "p2", "p48"), ("p48",))
# A switch with nothing of silonet's on it, as each show command answers it.
EMPTY = {
    "sonic": {sonic.CONFIG: json.dumps({"PORT": {"p1": {}, "p2": {}, "p48": {}}}),
              sonic.REMOTE_VNI: "+--------+--------------+-------+\n| VLAN   | RemoteVTEP   | VNI   |\n"
                                "+========+==============+=======+\n+--------+--------------+-------+\n"
                                "Total count : 0\n\n",
              # a 202311 build's first line, as sonic-utilities show/main.py prints it (202106 on, the
              # golden files' syntax: the batch writes the EVPN NVO with `config vxlan evpn_nvo add`)
              sonic.VERSION: "\nSONiC Software Version: SONiC.202311.1-8c08d87\n"},
    "cumulus": {cumulus.CONFIG: json.dumps([{"header": {"model": "VX", "rev-id": "1.0"}}, {"set": {}}]),
                cumulus.INTERFACES: json.dumps({"lo": {"type": "loopback"}, "p1": {"type": "swp"},
                                                "p2": {"type": "swp"}, "p48": {"type": "swp"}}),
                cumulus.LEDGER: "{}\n",
                # the keys Cumulus Linux 5.12+ prints (docs: NVUE API "/nvue_v1/system"; 5.15 renders
                # ``mac-learning enabled`` as the golden files, rendered with no platform, do)
                cumulus.VERSION: json.dumps({"build": "Cumulus Linux 5.15.0", "hostname": "gw-a",
                                             "product-name": "Cumulus Linux", "product-release": "5.15.0",
                                             "timezone": "Etc/UTC", "uptime": 763})},
}
# What the device answers when it refuses the add-vni batch.
REFUSAL = {
    "sonic": "Usage: config vlan add [OPTIONS] <vid>\nTry \"config vlan add -h\" for help.\n\n"
             "Error: Vlan100 already exists.",
    "cumulus": "Error: Invalid config [rev_id: 2]\n  bridge.domain.br_default.vlan.100: VNI 5000 is in use",
}
# A failure string on stdout with exit status 0 (the driver must still refuse).
SILENT = {"sonic": "Traceback (most recent call last):\n  File \"/usr/local/bin/config\", line 8",
          "cumulus": "Failure during apply: see /var/log/nvue.log"}


def _gateway(name: str, cli: FakeCli) -> Gateway:
    return Gateway("gw-a", "198.18.0.1",
                   Management(driver="ssh", address=cli.address, dialect=name, credentials=f"file:{cli.client_key}"),
                   ports=(Port("p1"), Port("p2"), Port("p48", switchback=True)))



@pytest.mark.parametrize("name", ["sonic", "cumulus"])
def test_read_apply_and_refusals_as_single_execs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialect = dialects()[name]
    cli = FakeCli(tmp_path, exec_answers=EMPTY[name])
    _target, case_actual, case_desired = load_case("add-vni")
    ops = diff(case_desired, case_actual)
    golden = (HERE / "golden" / name / "add-vni" / "expected.txt").read_text().splitlines()
    batch = dialect.join.join(golden)
    doc = HERE / "golden" / name / "parse-doc"

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway(name, cli), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
                # an empty switch: one exec per show command, nothing owned
                assert (await driver.read()).owned == case_actual
                assert cli.execs == [*filter(None, [dialect.version_show]), *dialect.show]
                # the add-vni batch: exactly one exec, the golden lines joined
                mark = len(cli.execs)
                assert (await driver.apply(ops)).applied == len(ops)
                assert cli.execs[mark:] == [batch]
                # the documented show output parses as parsed.json says
                cli.exec_answers.update({cmd: (doc / f"show-{i}.txt").read_text()
                                         for i, cmd in enumerate(dialect.show)})
                expected = parse_fixture(dialect, doc, TARGET)
                if not dialect.flood_lists:  # the driver leaves EVPN-built flood lists out of the comparison
                    for ls in expected["owned"]["logical_switches"]:
                        ls["flood"] = []
                assert parsed_dict(await driver.read()) == expected
                # back to the empty switch; the device refuses the batch (exit status != 0)
                cli.exec_answers.update(EMPTY[name])
                await driver.read()
                cli.fail[batch] = REFUSAL[name]
                with pytest.raises(DeviceError) as err:
                    await driver.apply(ops)
                assert "gw-a" in str(err.value) and REFUSAL[name].splitlines()[-1].strip() in str(err.value)
                # a failure string on stdout with exit status 0 is a refusal too
                del cli.fail[batch]
                cli.exec_answers[batch] = SILENT[name]
                with pytest.raises(DeviceError) as err:
                    await driver.apply(ops)
                assert "gw-a" in str(err.value)
                # the connection is still usable: every exec went over one SSH connection
                await driver.read()
                assert driver.health().connected
                assert cli.sessions == len(cli.execs)
            finally:
                await driver.close()

    asyncio.run(scenario())


def test_a_release_the_dialect_cannot_serve_is_refused_before_any_show_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SONiC build before 202012 has no `show vxlan remotevni`: the read stops right after the
    version, saying why, instead of at a command the release does not know; asked again on the next
    read (the switch may be upgraded)."""
    old = {**EMPTY["sonic"], sonic.VERSION: "\nSONiC Software Version: SONiC.201911.51-24c44a0b\n"}
    cli = FakeCli(tmp_path, exec_answers=old)

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway("sonic", cli), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
                for _ in range(2):
                    with pytest.raises(DeviceError, match="before 202012"):
                        await driver.read()
                assert cli.execs == [sonic.VERSION, sonic.VERSION]
                cli.exec_answers.update(EMPTY["sonic"])  # upgraded
                await driver.read()
                assert cli.execs[2:] == [sonic.VERSION, *dialects()["sonic"].show]
            finally:
                await driver.close()

    asyncio.run(scenario())
