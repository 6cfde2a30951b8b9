"""What a device says is checked where it is read (issue 16, item 1), and what is echoed from a
peer is bounded (the ovsdb ``last_error``): the rows of ``vtep_schema``, the parsed state of
the other SSH dialects (``untrusted.check_read``), the template filters and ``echo``."""

from __future__ import annotations

import shlex

import pytest

from silonet.drivers.untrusted import (
    ECHO_MAX,
    FAULTS,
    SHOWN_MAX,
    UnsafeValue,
    check_read,
    dotted_quad,
    echo,
    ipv4,
    mac,
    number,
    owned_name,
    quoted,
    quoted_format,
    quoted_json,
    shown,
    token,
)
from silonet.drivers.vtep_schema import (
    LS_TABLE,
    OWNER_KEY,
    UCAST_LOCAL,
    UCAST_REMOTE,
    Interpretation,
    PortRows,
    VtepRows,
    interpret,
)
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

EVIL_MAC = "00:11:22:33:44:55$(id>x)"
OWNED = {OWNER_KEY: "true"}
BAD_NAMES = ["-x", "--", "a b", "a;b", "$(id)", "x" * 65, "", "0d4c5b1e-9a0b-4c3e-8d2f-1a2b3c4d5e6f", "a\nb"]


# ------------------------------------------------------------------ values
def test_a_mac_is_six_hex_octets_in_lower_case_colon_form() -> None:
    assert mac("02:00:00:00:00:0b") == "02:00:00:00:00:0b"
    assert mac("AA:BB:CC:DD:EE:0F") == "aa:bb:cc:dd:ee:0f"
    assert mac("aa-bb-cc-dd-ee-0f") == "aa:bb:cc:dd:ee:0f"
    for bad in (EVIL_MAC, "unknown-dst", "aa:bb:cc:dd:ee", "aa:bb-cc:dd:ee:ff", "aa:bb:cc:dd:ee:fg",
                " aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff\n", None, 42):
        assert mac(bad) is None, bad


def test_an_ip_is_a_dotted_quad() -> None:
    assert ipv4("198.18.0.2") == "198.18.0.2"
    for bad in ("198.18.0.2;id", "198.18.0.256", "198.18.0.02", "198.18.0", "::1", " 198.18.0.2", "", None):
        assert ipv4(bad) is None, bad


def test_the_ip_check_is_a_bounded_cache_of_a_pure_validator() -> None:
    """No module-level set of addresses: ``dotted_quad`` is pure, so caching its answers (bounded)
    is all the state there is, and a str subclass never reaches the cache."""

    class Sneaky(str):
        pass

    dotted_quad.cache_clear()
    assert [ipv4("198.18.0.2") for _ in range(3)] == ["198.18.0.2"] * 3
    assert ipv4("198.18.0.2;id") is None and ipv4(Sneaky("198.18.0.2")) is None
    info = dotted_quad.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (2, 2, 65536)


def test_a_name_silonet_claims_is_one_it_could_have_written() -> None:
    assert owned_name("cust-42") and owned_name("0net") and owned_name("a" * 64)
    for bad in BAD_NAMES:
        assert not owned_name(bad), bad


def test_shown_values_are_escaped_and_short() -> None:
    assert shown(EVIL_MAC) == repr(EVIL_MAC)
    long = shown("a\n" * 100)
    assert len(long) <= SHOWN_MAX and "\n" not in long and long.endswith("...")


def test_echo_escapes_control_characters_and_bounds_the_text() -> None:
    """A peer's error text (``management.address`` may be any tcp:/unix: endpoint) as status shows it."""
    text = "HTTP/1.1 400 Bad Request\r\nServer: x\x1b[2J\x00\u2028" + "y" * 1000
    out = echo(text)
    assert len(out) == ECHO_MAX and out.endswith("...")
    assert out.startswith("HTTP/1.1 400 Bad Request\\r\\nServer: x\\x1b[2J\\x00\\u2028y")
    assert all(c.isprintable() for c in out)
    assert echo("transaction error: constraint violation") == "transaction error: constraint violation"
    assert echo(echo(text)) == echo(text)  # idempotent: shown once more, it does not grow


# ------------------------------------------------------------------ template filters
@pytest.mark.parametrize("bad", [EVIL_MAC, "a;b", "--", "-x", "a b", "a\nb", "`id`", "'", '"', "a|b", "$HOME", "",
                                 "x" * 256, None, 1.5])
def test_token_filters_refuse_anything_but_a_plain_token(bad: object) -> None:
    for fn in (token, quoted, lambda v: quoted_format("d={}", v), lambda v: quoted_json({1: v})):
        with pytest.raises(UnsafeValue):
            fn(bad)


def test_token_filters_pass_plain_tokens_unchanged() -> None:
    for good in ("cust-42", "02:00:00:00:00:0b", "198.18.0.2", "Ethernet1/1", "silonet-n.1_x"):
        assert token(good) == good and quoted(good) == good and shlex.split(quoted(good)) == [good]
    assert token("gigabitethernet 1/0/11", words=2) == "gigabitethernet 1/0/11"
    with pytest.raises(UnsafeValue):
        token("a b c", words=2)
    assert quoted_format('description="silonet network {} (VNI {})"', "n1", 5000) == \
        "'description=\"silonet network n1 (VNI 5000)\"'"
    assert shlex.split(quoted_json({5001: "b", 5000: "a"})) == ['{"5000": "a", "5001": "b"}']


def test_number_refuses_text_and_booleans() -> None:
    assert number(5000) == "5000" and quoted_format("vlan{}", 100) == "vlan100"
    with pytest.raises(UnsafeValue):
        token(5000)  # an integer is printed as one, through num
    for bad in ("5000", "1;id", True, 1.5, None):
        with pytest.raises(UnsafeValue):
            number(bad)


# ------------------------------------------------------------------ vtep_schema rows
def _rows(**kw: object) -> VtepRows:
    base = {"switch_faults": [], "ports": [PortRows("p1", [], {100: "s1"})],
            "logical_switches": {"s1": ("cust-42", 5000, OWNED)}}
    return VtepRows(**{**base, **kw})  # type: ignore[arg-type]


def test_bad_macs_and_ips_are_faults_and_never_silonets_state() -> None:
    state, _facts, local, faults = interpret(_rows(
        mcast_remote=[("unknown-dst", "s1", ["198.18.0.2", "198.18.0.3;id"])],
        ucast_remote=[("02:00:00:00:00:0b", "s1", "198.18.0.3"), ("02:00:00:00:00:0c`id`", "s1", "198.18.0.3"),
                      ("02:00:00:00:00:0d", "s1", "198.18.0.4$(id)"), ("AA:00:00:00:00:0E", "s1", "198.18.0.4")],
        ucast_local=[(EVIL_MAC, "s1"), ("02:00:00:00:00:01", "s1"), ("AA-00-00-00-00-02", "s1")],
    ))
    assert state.logical_switches == {5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}
    assert state.remote_macs == {(5000, "02:00:00:00:00:0b"): "198.18.0.3", (5000, "aa:00:00:00:00:0e"): "198.18.0.4"}
    assert local == {5000: frozenset({"02:00:00:00:00:01", "aa:00:00:00:00:02"})}  # the evil one is not published
    assert faults == {FAULTS: sorted([
        f"Mcast_Macs_Remote locator dst_ip {'198.18.0.3;id'!r} is not an IPv4 address; left out of the flood list",
        f"Ucast_Macs_Local MAC {EVIL_MAC!r} is not a MAC address; not published to other gateways",
        f"Ucast_Macs_Remote MAC {'02:00:00:00:00:0c`id`'!r} is not a MAC address; ignored",
        f"Ucast_Macs_Remote locator dst_ip {'198.18.0.4$(id)'!r} is not an IPv4 address; ignored",
    ])}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_switch_marked_silonets_under_a_name_silonet_cannot_write_is_foreign(name: str) -> None:
    state, facts, local, faults = interpret(_rows(logical_switches={"s1": (name, 5000, OWNED)},
                                                  ucast_local=[("02:00:00:00:00:01", "s1")]))
    assert state == GatewayState() and local == {}  # nothing of it is silonet's: not rendered, not published
    assert facts.foreign_vnis == {5000: name} and facts.foreign_bindings == {("p1", 100): name}  # shown as read
    assert faults == {FAULTS: [f"Logical_Switch name {shown(name)} is not a name silonet writes, yet it is marked "
                               f"{OWNER_KEY}=true: taken for someone else's"]}


def test_foreign_switches_keep_their_names_without_a_fault() -> None:
    state, facts, _local, faults = interpret(_rows(logical_switches={"s1": ("ops team; $(x)", 9999, {})}))
    assert state == GatewayState() and faults == {}
    assert facts.foreign_vnis == {9999: "ops team; $(x)"} and facts.foreign_bindings == {("p1", 100): "ops team; $(x)"}


def test_a_port_whose_name_is_not_a_plain_name_is_a_fault_and_its_bindings_ignored() -> None:
    state, facts, _local, faults = interpret(_rows(ports=[PortRows("p1;reboot", [], {100: "s1"}),
                                                         PortRows("p2", [], {100: "s1", 9000: "s1"})]))
    assert state.bindings == {("p2", 100): 5000} and facts.ports == {"p2"}
    assert faults[FAULTS] == ["Physical_Port 'p2' vlan_bindings key 9000 is not a VLAN; ignored",
                              f"Physical_Port name {'p1;reboot'!r} is not a plain name; its bindings are ignored"]


def test_row_by_row_a_fault_lasts_as_long_as_the_row_holds_the_value() -> None:
    it = Interpretation()
    it.row(LS_TABLE, "s1", None, ("s1", ("cust-42", 5000, OWNED)))
    it.port("p1", PortRows("p1", [], {100: "s1"}))
    it.row(UCAST_LOCAL, "r1", None, (EVIL_MAC, "s1"))
    it.row(UCAST_REMOTE, "r2", None, (EVIL_MAC, "s1", "198.18.0.2"))
    _state, _facts, local, faults = it.state()
    assert local == {} and len(faults[FAULTS]) == 2
    assert set(it.rows_on(UCAST_REMOTE, "s1")) == {"r2"}  # still listed: removing the switch removes it too
    it.row(UCAST_LOCAL, "r1", (EVIL_MAC, "s1"), ("02:00:00:00:00:01", "s1"))
    it.row(UCAST_REMOTE, "r2", (EVIL_MAC, "s1", "198.18.0.2"), None)
    state, _facts, local, faults = it.state()
    assert local == {5000: frozenset({"02:00:00:00:00:01"})} and faults == {} and state.remote_macs == {}
    it.row(LS_TABLE, "s1", ("s1", ("cust-42", 5000, OWNED)), ("s1", ("--", 5000, OWNED)))
    state, facts, local, faults = it.state()
    assert state == GatewayState() and local == {} and facts.foreign_vnis == {5000: "--"} and FAULTS in faults
    it.row(LS_TABLE, "s1", ("s1", ("--", 5000, OWNED)), ("s1", ("cust-42", 5000, OWNED)))
    state, facts, local, faults = it.state()
    assert state.bindings == {("p1", 100): 5000} and local and faults == {} and facts.foreign_vnis == {}


# ------------------------------------------------------------------ the other SSH dialects' readings
def test_check_read_keeps_a_clean_reading_as_it_is() -> None:
    owned = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 100): 5000},
                         {(5000, "02:00:00:00:00:0b"): "198.18.0.2"})
    facts = DeviceFacts(frozenset({"p1"}))
    out, out_facts, local, faults = check_read(owned, facts, {5000: frozenset({"02:00:00:00:00:01"})}, "eos show")
    assert out is owned and out_facts is facts and local == {5000: frozenset({"02:00:00:00:00:01"})} and faults == []


def test_check_read_leaves_out_and_reports_what_fails() -> None:
    owned = GatewayState(
        {5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2", "198.18.0.3 -x"})),
         5001: LogicalSwitch(5001, "a;reboot", frozenset()), 5002: LogicalSwitch(5002, "", frozenset())},
        {("p1", 100): 5000, ("p1", 101): 5001, ("p1;x", 102): 5000, ("p2", 5000): 5000},
        {(5000, EVIL_MAC): "198.18.0.2", (5000, "02:00:00:00:00:0b"): "198.18.0.2`x`"})
    macs = {5000: frozenset({EVIL_MAC, "02:00:00:00:00:01"}), 5001: frozenset({"02:00:00:00:00:02"})}
    out, facts, local, faults = check_read(owned, DeviceFacts(), macs, "junos show")
    assert out == GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))},
                               {("p1", 100): 5000})
    assert facts.foreign_vnis == {5001: "a;reboot", 5002: ""} and facts.foreign_bindings == {("p1", 101): "a;reboot"}
    assert "a;reboot" in facts.foreign_names
    assert local == {5000: frozenset({"02:00:00:00:00:01"})}
    assert all(f.startswith("junos show: ") for f in faults) and len(faults) == 8, faults
    assert f"junos show: VNI 5000 local MAC {EVIL_MAC!r} is not a MAC address; not published" in faults
    assert "junos show: VNI 5001 network name 'a;reboot' is not a name silonet writes; taken for someone else's" \
        in faults
    kept, _f, _l, unnamed = check_read(GatewayState({5002: LogicalSwitch(5002, "", frozenset())}), DeviceFacts(), {},
                                       "alaxala show", unnamed_ok=True)
    assert kept.logical_switches == {5002: LogicalSwitch(5002, "", frozenset())} and unnamed == []


def test_an_ssh_devices_refusal_is_echoed_bounded_and_escaped() -> None:
    from silonet.drivers.ssh.driver import _refusal

    said = _refusal("ok\n% Invalid input \x1b]0;owned\x07" + "w" * 500 + "\nnext\n", ("% Invalid",))
    assert said is not None and said.startswith("% Invalid input \\x1b]0;owned\\x07www")
    assert len(said) == ECHO_MAX and all(c.isprintable() for c in said)


def test_a_flood_list_that_passed_is_not_checked_again_and_one_that_failed_always_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``all_ipv4`` on a shared ``CompactSet`` (the flood list every row flooding to the same peers
    holds): checked once while it lives; a failing one is checked and refused each time; a list that
    is not a ``CompactSet`` (or another set equal to a checked one) is checked as before."""
    import gc

    from silonet.drivers import untrusted
    from silonet.plan.intern import CompactSet, shared_set

    checked: list[object] = []
    real = untrusted.ipv4
    monkeypatch.setattr(untrusted, "ipv4", lambda v: checked.append(v) or real(v))
    good = shared_set(["198.18.0.1", "198.18.0.2"])
    assert untrusted.all_ipv4(good) and len(checked) == 2
    assert untrusted.all_ipv4(good) and len(checked) == 2  # remembered
    assert untrusted.all_ipv4(CompactSet(["198.18.0.1", "198.18.0.2"])) and len(checked) == 4  # equal, not it
    bad = shared_set(["198.18.0.1", "not-an-ip"])
    assert not untrusted.all_ipv4(bad) and not untrusted.all_ipv4(bad)
    assert checked.count("not-an-ip") == 2
    assert untrusted.all_ipv4(["198.18.0.9"]) and untrusted.all_ipv4(["198.18.0.9"])
    assert checked.count("198.18.0.9") == 2
    key = id(good)
    del good
    gc.collect()
    assert key not in untrusted._ALL_IPV4  # held weakly: gone with its set
