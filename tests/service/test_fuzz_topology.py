"""Hypothesis against what people type and write: the topology loader and the CLI's arguments.

Whatever the input (broken YAML, wrong types, unknown keys, huge numbers, unicode, control
characters, undecodable bytes, deep nesting), the answer is a value or one readable error line
per problem (the first five, then a count), never a traceback. The CLI runs in-process through its real entry point
(``silonet.cli.main.main``) on a local store, with stdout and stderr encoded as a pipe's
are (strict UTF-8 out, backslash-escaped err), so an unprintable character fails as it
would for a user; ``tests/cli`` covers the same through a subprocess.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet.cli import main as cli
from silonet.errors import InvalidInput
from silonet.service.schemas import Topology
from silonet.service.topology import parse_topology

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"
EXAMPLE_TEXT = EXAMPLE.read_text()
def fuzz(examples: int) -> settings:
    """Deterministic (the same cases every run), no example database, no per-case deadline."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------ strategies
KEYS = ["silos", "gateways", "interface_groups", "networks", "name", "kind", "description", "silo", "vtep_ip",
        "management", "driver", "address", "credentials", "dialect", "capacity", "ports", "switchback", "members",
        "gateway", "port", "tenant", "vni", "attachments", "interface_group", "vlan"]
# argv holds no NUL; undecodable bytes arrive as lone surrogates (U+DC80..U+DCFF, surrogateescape)
ARG_CHARS = st.characters(exclude_characters="\x00", exclude_categories=["Cs"]) | st.characters(
    min_codepoint=0xDC80, max_codepoint=0xDCFF)
BIG = st.one_of(st.integers(), st.integers(min_value=2**31 - 2, max_value=2**64 + 2), st.just(10**4299),
                st.just(-(10**300)))
scalars = st.one_of(st.none(), st.booleans(), BIG, st.floats(), st.text(max_size=30), st.sampled_from(KEYS),
                    st.binary(max_size=8))
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)


def _dump(data: object) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return str(data)


def _mutate(data: tuple[int, int, str]) -> str:
    """The example with a slice replaced: broken indentation, quotes, brackets, values."""
    start, length, insert = data
    start %= len(EXAMPLE_TEXT)
    return EXAMPLE_TEXT[:start] + insert + EXAMPLE_TEXT[start + length:]


def _example_with(section: str, index: int, key: str, value: object) -> str:
    """The example with one field set to another (perhaps wrongly typed) value."""
    data = yaml.safe_load(EXAMPLE_TEXT)
    items = data[section]
    items[index % len(items)][key] = value
    return _dump(data)


SECTION_KEYS = {"silos": ["name", "kind", "description", "extra"],
                "gateways": ["name", "silo", "vtep_ip", "management", "capacity", "ports", "extra"],
                "interface_groups": ["name", "silo", "members", "switchback", "extra"],
                "networks": ["name", "tenant", "vni", "attachments", "extra"]}
field_edits = st.sampled_from(sorted(SECTION_KEYS)).flatmap(
    lambda section: st.builds(_example_with, st.just(section), st.integers(0, 5),
                              st.sampled_from(SECTION_KEYS[section]), structures))
deep = st.one_of(  # nesting by brackets, braces and indentation
    st.builds(lambda n: "silos: " + "[" * n + "1" + "]" * n, st.integers(1, 20_000)),
    st.builds(lambda n: "silos: " + "{a: " * n + "1" + "}" * n, st.integers(1, 5_000)),
    st.builds(lambda n: "networks:\n" + "".join(" " * i + "- a:\n" for i in range(n)), st.integers(1, 300)),
)
yaml_texts = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("{}[]:,-'\"!&*?|>#%@` \n\t")),
    structures.map(_dump),
    st.tuples(st.integers(0, 10**6), st.integers(0, 40), st.text(max_size=20)).map(_mutate),
    field_edits,
    deep,
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=5).map(
        lambda s: EXAMPLE_TEXT + s),  # lone surrogates: undecodable bytes read from stdin
    st.sampled_from(["", "~", "---\n...\n", "--- a\n--- b\n", "&a [*a]", "a: *b", "!!python/object:os.system x",
                     "silos: !!binary aGk=", "? [a]\n: 1", "\ufeffsilos: []", "\x00", "silos: [\x85]",
                     "networks: [{name: n, tenant: t, vni: 1" + "0" * 5000 + "}]",
                     "networks: [{name: n, tenant: t, vni: .nan}]", "networks: [{name: n, tenant: t, vni: 1e999}]"]),
)


def _single_readable_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert "Traceback" not in message, message


# ------------------------------------------------------------------ the loader
@fuzz(400)
@given(text=yaml_texts)
def test_parse_topology_answers_a_topology_or_one_error_line(text: str) -> None:
    try:
        topology = parse_topology(text, "t.yaml")
    except InvalidInput as err:
        for problem in err.problems:
            _single_readable_line(problem.message)
            assert "t.yaml" in problem.message and problem.field, problem.message
    else:
        assert isinstance(topology, Topology)


# ------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local store seeded with the example, for every in-process run of this module."""
    base = tmp_path_factory.mktemp("cli-fuzz")
    env = {"SILONET_DATA_DIR": str(base / "data"), "SILONET_CONFIG": str(base / "no-config.json")}
    drop = [k for k in os.environ if k in ("SILONET_SERVER", "SILONET_TOKEN", "SILONET_ADMIN_TOKEN",
                                            "SILONET_DATABASE_URL", "FORCE_COLOR")]
    with mock.patch.dict(os.environ, env):
        for k in drop:
            os.environ.pop(k)
        cli.state._backend = None
        try:
            code, _out, err = run_cli("apply", "-f", str(EXAMPLE))
            assert code == 0, err
            yield base
        finally:
            backend, cli.state._backend = cli.state._backend, None
            if backend is not None and hasattr(backend, "m"):
                backend.m.db.dispose()


def run_cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """``silonet ARGS`` in this process: (exit code, stdout, stderr)."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    code: int | str | None = 0
    with mock.patch.object(sys, "argv", ["silonet", *args]), mock.patch.object(sys, "stdin", io.StringIO(stdin)), \
            redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main()
        except SystemExit as exit_:
            code = exit_.code
        out.flush()
        err.flush()
    return (code if isinstance(code, int) else 1), out_bytes.getvalue().decode(), err_bytes.getvalue().decode()


def assert_outcome(code: int, out: str, err: str) -> None:
    """Success, or a non-zero exit with one `error:` line per problem (at most five, then a
    count) and nothing else."""
    assert "Traceback" not in out + err, err
    if code == 0:
        return
    lines = err.splitlines()
    assert 1 <= len(lines) <= cli.PROBLEMS_SHOWN + 1, (code, out, err)
    for line in lines:
        assert line.startswith("error: "), (code, out, err)
        _single_readable_line(line)
    if len(lines) == cli.PROBLEMS_SHOWN + 1:
        assert lines[-1].startswith("error: and ") and lines[-1].endswith(" more problem(s)"), err
    assert out == "", out


@pytest.mark.slow
@fuzz(120)
@given(text=yaml_texts)
def test_cli_apply_file_gives_one_error_line(cli_env: Path, text: str) -> None:
    path = cli_env / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # a lone surrogate: bytes that are not UTF-8
    code, out, err = run_cli("apply", "--dry-run", "-f", str(path))
    assert_outcome(code, out, err)
    if code != 0:
        assert "file" in err or "fuzz.yaml" in err, err


@pytest.mark.slow
@fuzz(50)
@given(text=yaml_texts)
def test_cli_apply_stdin_gives_one_error_line(cli_env: Path, text: str) -> None:
    code, out, err = run_cli("apply", "--dry-run", "-f", "-", stdin=text)
    assert_outcome(code, out, err)


names = st.one_of(
    st.sampled_from(["cust-42", "cust-43", "vsa", "kvb", "bmc", "pad", "gw-a", "gw-b", "vsphere-a", "nope"]),
    st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
    st.text(ARG_CHARS, max_size=80),
    st.text(ARG_CHARS, min_size=200, max_size=2000),
)
numbers = st.one_of(BIG.map(str), st.floats().map(str), st.text(ARG_CHARS, max_size=12),
                    st.sampled_from(["0", "4094", "4095", "-1", "+5", "0x10", "1_000", " 7", "7 ", "\u0667", "\uff11",
                                     "16777215", "16777216", "1e3", "nan", "--1"]))
commands = st.one_of(
    st.builds(lambda n, t, v: ["network", "create", n, "--tenant", t, "--vni", v], names, names, numbers),
    st.builds(lambda n, g, v: ["attach", n, g, v], names, names, numbers),
    st.builds(lambda n, g, v: ["detach", n, g, v], names, names, numbers),
    st.builds(lambda n, g, v, w: ["attach", n, g, v, "--wait", w], names, names, numbers,
              st.sampled_from(["nan", "-1", "301", "inf", "x"])),
    st.builds(lambda n, k, d: ["silo", "create", n, "--kind", k, "--description", d], names, names, names),
    st.builds(lambda n, ip, a, c, p, d: ["gateway", "create", n, "--vtep-ip", ip, "--address", a, "--capacity", c,
                                         "--port", p, "--driver", d],
              names, names | st.ip_addresses(v=4).map(str), names, numbers, names, st.sampled_from(["ovsdb", "ssh"])
              | names),
    st.builds(lambda n, m: ["group", "create", n, "--member", m], names, names | st.builds("{}:{}".format, names,
                                                                                       names)),
    st.builds(lambda k, verb, n: [k, verb, n], st.sampled_from(["silo", "gateway", "group", "network"]),
              st.sampled_from(["show", "delete"]), names),
    st.builds(lambda lim, cur: ["attachment", "list", "--limit", lim, "--cursor", cur], numbers, names),
    st.builds(lambda n: ["status", n], names),
    st.builds(lambda n: ["plan", "--gateway", n], names),
    st.builds(lambda n: ["audit", "--limit", n], numbers),
    st.lists(names, min_size=1, max_size=4),  # no such command, stray words
)


@pytest.mark.slow
@fuzz(300)
@given(args=commands)
def test_cli_arguments_give_one_error_line(cli_env: Path, args: list[str]) -> None:
    code, out, err = run_cli(*args)
    assert_outcome(code, out, err)  # exit 0 too: a well-formed request on the example store
    if "--wait" in args:
        assert code != 0, (args, err)  # none of the waits drawn is a number of seconds 0..300
