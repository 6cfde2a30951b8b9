"""A gateway's mode and pinned host key (field rules), and the merge patch (RFC 7396) that changes
a gateway: the RFC's own examples, properties of the merge, and which gateways a change moves."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from silonet.errors import InvalidInput
from silonet.model import (
    Attachment,
    Gateway,
    InterfaceGroup,
    Inventory,
    Management,
    Port,
    PortRef,
    VirtualNetwork,
    rules,
)
from silonet.model.patch import merge_patch, mode_only, patched, representation, tunnel_peers

ED25519 = "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + bytes(32)).decode()
FINGERPRINT = "SHA256:" + "A" * 43


# ------------------------------------------------------------------- field rules
@pytest.mark.parametrize("mode", rules.MODES)
def test_every_mode_is_a_gateway_mode(mode: str) -> None:
    assert Gateway("gw", "198.18.0.1", Management("memory", "memory:gw"), mode=mode).mode == mode


@pytest.mark.parametrize("bad", ["", "Observe", "enforced", None, 1])
def test_a_bad_mode_names_the_field_and_the_modes(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        Gateway("gw", "198.18.0.1", Management("memory", "memory:gw"), mode=bad)  # type: ignore[arg-type]
    assert err.value.field == "mode" and "enforce, observe, maintenance" in err.value.message


def test_the_status_rule_takes_the_modes_from_the_model() -> None:
    from silonet.plan import status

    assert status.MODES is rules.MODES and status.HOLDING_MODES == set(rules.MODES) - {"enforce"}


@pytest.mark.parametrize("key", [
    ED25519, ED25519 + " root@switch", FINGERPRINT, "SHA256:" + "a+/9" * 10 + "xyz",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNh", "sk-ssh-ed25519@openssh.com AAAA", "ssh-rsa AAAAB3NzaC1yc2E=",
])
def test_a_public_key_line_or_a_fingerprint_is_a_host_key(key: str) -> None:
    assert rules.host_key(key) == key
    assert Management("ssh", "admin@198.18.1.1", "eos", host_key=key).host_key == key


@pytest.mark.parametrize("key", [
    "", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519", "ssh-ed25519 not*base64", "ssh-ed25519 AAAAB",
    "ssh-ed25519 AAA=A", "SHA256:" + "A" * 42, "SHA256:" + "A" * 44, "SHA256:" + "A" * 42 + "=", "MD5:ab:cd",
    "AAAAC3NzaC1lZDI1NTE5", "ssh-ed25519 " + "A" * (rules.HOST_KEY_MAX), "ssh-ed25519\x00AAAA", 42,
])
def test_anything_else_is_refused_naming_the_field_and_the_rule(key: object) -> None:
    with pytest.raises(InvalidInput) as err:
        Management("ssh", "admin@198.18.1.1", "eos", host_key=key)  # type: ignore[arg-type]
    assert err.value.field == "management.host_key"
    assert "OpenSSH public key line" in err.value.message and "SHA256:" in err.value.message


# ------------------------------------------------------------------- merge patch
RFC_7396_EXAMPLES = [  # Appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_the_rfcs_examples(target: object, patch: object, result: object) -> None:
    assert merge_patch(target, patch) == result


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
                    max_leaves=12)


@given(JSON, JSON)
def test_a_patch_applied_twice_is_applied_once_and_changes_neither_input(target: object, patch: object) -> None:
    import copy

    t, p = copy.deepcopy(target), copy.deepcopy(patch)
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
    assert (target, patch) == (t, p)


@given(st.dictionaries(st.text(max_size=2), JSON, max_size=4), st.dictionaries(st.text(max_size=2), JSON, max_size=4))
def test_every_member_of_a_patch_is_set_or_deleted_and_the_rest_kept(target: dict, patch: dict) -> None:
    out = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in out
        elif not isinstance(value, dict):
            assert out[key] == value  # a list too: replaced whole
    assert all(out[k] == v for k, v in target.items() if k not in patch)


# -------------------------------------------------------------- a gateway's patch
GW = Gateway("gw-a", "198.18.0.1", Management("ssh", "admin@198.18.1.1", "eos", "env:SILONET_SECRET_A",
                                               host_key=FINGERPRINT),
             capacity=100, ports=(Port("p1"), Port("p48", switchback=True)), silo="s1", mode="observe")


def test_a_gateway_patches_as_it_would_be_created() -> None:
    assert representation(GW) == {
        "name": "gw-a", "silo": "s1", "vtep_ip": "198.18.0.1", "capacity": 100, "mode": "observe",
        "management": {"driver": "ssh", "address": "admin@198.18.1.1", "dialect": "eos",
                       "credentials": "env:SILONET_SECRET_A", "trust_on_first_use": False, "host_key": FINGERPRINT},
        "ports": [{"name": "p1", "switchback": False}, {"name": "p48", "switchback": True}]}
    out = patched(GW, {"mode": "enforce", "silo": None, "management": {"host_key": None, "dialect": "nxos"},
                       "ports": [{"name": "p2"}], "name": "gw-a"})
    assert out["mode"] == "enforce" and "silo" not in out and out["ports"] == [{"name": "p2"}]
    assert out["management"] == {"driver": "ssh", "address": "admin@198.18.1.1", "dialect": "nxos",
                                 "credentials": "env:SILONET_SECRET_A", "trust_on_first_use": False}


@pytest.mark.parametrize("name", ["gw-b", None, ""])
def test_a_patch_cannot_rename(name: object) -> None:
    with pytest.raises(InvalidInput) as err:
        patched(GW, {"name": name})
    assert err.value.field == "name" and "cannot change" in err.value.message


@pytest.mark.parametrize("body", [[], "observe", None, 3])
def test_a_patch_is_an_object(body: object) -> None:
    with pytest.raises(InvalidInput) as err:
        patched(GW, body)
    assert err.value.field == "body" and "JSON object" in err.value.message


def test_a_mode_change_is_told_from_any_other() -> None:
    from dataclasses import replace

    assert mode_only(GW, replace(GW, mode="enforce"))
    assert not mode_only(GW, replace(GW, mode="enforce", capacity=99))
    assert not mode_only(GW, replace(GW, capacity=99))
    assert not mode_only(GW, GW)


def test_a_new_tunnel_address_moves_the_gateways_sharing_a_vni() -> None:
    inv = Inventory()
    for i, name in enumerate(("gw-a", "gw-b", "gw-c", "gw-d"), start=1):
        inv.put_gateway(Gateway(name, f"198.18.0.{i}", Management("memory", f"memory:{name}"), ports=(Port("p1"),)))
        inv.put_group(InterfaceGroup(f"g-{name}", members=(PortRef(name, "p1"),)))
    inv.put_network(VirtualNetwork("n1", "acme", 5000))
    inv.put_network(VirtualNetwork("n2", "acme", 5001))
    inv.attach(Attachment("g-gw-a", 10, "n1"))
    inv.attach(Attachment("g-gw-b", 20, "n1"))
    inv.attach(Attachment("g-gw-a", 11, "n2"))
    inv.attach(Attachment("g-gw-c", 30, "n2"))
    assert tunnel_peers(inv, "gw-a") == ({"gw-b", "gw-c"}, {5000, 5001})
    assert tunnel_peers(inv, "gw-b") == ({"gw-a"}, {5000})
    assert tunnel_peers(inv, "gw-d") == (set(), set())
