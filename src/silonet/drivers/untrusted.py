"""What a device says is untrusted input, and what goes on a device's command line is checked.

A MAC one gateway learned becomes a command in every peer's batch, and a name silonet reads back
as its own is typed into the next one. So every value is checked where it is read: a MAC is six
hex octets, an IP an IPv4 address, a name silonet claims one it could have written. Whatever fails
is a fault of that gateway (under ``FAULTS`` in its status, naming where it was read, the field
and the value) and is never used: not published to other gateways, not taken for silonet's
state, never rendered. Foreign rows keep their names: shown as read, never rendered.

Templates print a value only through the filters of ``TEMPLATE_FILTERS``, which refuse anything
outside a strict token pattern (``UnsafeValue``) instead of escaping it: vendor CLIs have no
quoting, and a refused value writes nothing to the gateway.
"""

from __future__ import annotations

import json
import re
import shlex
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

from silonet.errors import InvalidInput
from silonet.model import rules
from silonet.plan.intern import CompactSet
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import GatewayState, LogicalSwitch

FAULTS = "invalid data"  # the faults key of values a read refused
SHOWN_MAX = 64  # characters of a refused value quoted in a fault
ECHO_MAX = 200  # characters of a peer's own error text shown in a gateway's status
TOKEN_MAX = 255
TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
TOKEN_RULE = (f"a plain token (a letter or digit, then letters, digits and . _ : / -; at most {TOKEN_MAX} "
              "characters)")
_MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_MAC_ANY_RE = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


# ------------------------------------------------------------------ showing a value
def shown(value: object) -> str:
    """``value`` for a fault or an error: escaped (repr) and cut to about SHOWN_MAX characters."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX - 3] + "..."


def echo(text: object, limit: int = ECHO_MAX) -> str:
    """A peer's own words (an error it sent) as silonet may show them: what is not printable escaped
    (no forged log lines, terminal escapes or bidi overrides) and at most ``limit`` characters."""
    raw = str(text)
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in raw[:limit])
    return out if len(out) <= limit and len(raw) <= limit else out[:limit - 3] + "..."


# ------------------------------------------------------------------ reading
def mac(value: object) -> str | None:
    """A MAC address in lower-case colon form, or None when ``value`` is not six hex octets."""
    if not isinstance(value, str):
        return None
    if _MAC_RE.fullmatch(value):
        return value
    if _MAC_ANY_RE.fullmatch(value):
        return value.lower().replace("-", ":")
    return None


def is_mac(value: object) -> bool:
    """Already a MAC in lower-case colon form (the fast path of a read)."""
    return type(value) is str and _MAC_RE.fullmatch(value) is not None


@lru_cache(maxsize=65536)  # flood lists repeat a few VTEP IPs on every switch: a read checks each once
def dotted_quad(text: str) -> bool:
    """Whether ``text`` is a dotted-quad IPv4 address (no leading zeros); pure, hence cached."""
    return _IPV4_RE.fullmatch(text) is not None


def ipv4(value: object) -> str | None:
    """A dotted-quad IPv4 address (no leading zeros), or None."""
    return value if type(value) is str and dotted_quad(value) else None


def all_ipv4(values: Iterable[object]) -> bool:
    """Whether every value is a dotted-quad IPv4 address. A flood list is a shared, immutable
    ``CompactSet`` (the same object on every row and gateway that floods to the same peers): one
    that passed is remembered (weakly, by identity), not checked again on each row that reads it."""
    if isinstance(values, CompactSet):
        if _ALL_IPV4.get(id(values)) is values:
            return True
        if all(ipv4(v) is not None for v in values):
            _ALL_IPV4[id(values)] = values
            return True
        return False
    return all(ipv4(v) is not None for v in values)


# Process-wide (one dict operation under the GIL); by id, checked to be the very object: a set
# that went frees its entry, and an id reused by another object is not taken for it.
_ALL_IPV4: weakref.WeakValueDictionary[int, CompactSet] = weakref.WeakValueDictionary()


def is_token(value: object) -> bool:
    return isinstance(value, str) and len(value) <= TOKEN_MAX and TOKEN_RE.fullmatch(value) is not None


def owned_name(value: object) -> bool:
    """Whether silonet could have written ``value`` as a network name (today's rule): a name it
    reads back as its own must be one, or someone else wrote it."""
    if not isinstance(value, str):
        return False
    try:
        rules.name(value)
    except InvalidInput:
        return False
    return rules.name_violation(value) is None


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def vni_ok(value: object) -> bool:
    return _int_in(value, rules.VNI_MIN, rules.VNI_MAX)


def vlan_ok(value: object) -> bool:
    return _int_in(value, rules.VLAN_MIN, rules.VLAN_MAX + 1)  # 4095 exists on devices; refused on writes


def check_read(owned: GatewayState, facts: DeviceFacts, local_macs: Mapping[int, frozenset[str]], source: str,
               unnamed_ok: bool = False) -> tuple[GatewayState, DeviceFacts, dict[int, frozenset[str]], list[str]]:
    """A parser's reading, with every value checked: what fails is left out and described in the
    faults returned. A logical switch claimed as silonet's under a name silonet could not have
    written is someone else's (foreign, under the name as read), and so are its bindings.
    ``unnamed_ok``: an owned switch with an empty name (a dialect's mark of one left unnamed by an
    interrupted batch) is silonet's. Unchanged parts are the very objects given."""
    faults: list[str] = []

    def ip(value: object, what: str) -> str | None:
        good = ipv4(value)
        if good is None:
            faults.append(f"{source}: {what} {shown(value)} is not an IPv4 address; ignored")
        return good

    switches: dict[int, LogicalSwitch] = {}
    demoted: dict[int, str] = {}
    changed = False
    for vni, ls in owned.logical_switches.items():
        if not vni_ok(vni) or ls.vni != vni:
            faults.append(f"{source}: logical switch VNI {shown(vni)} is not a VNI; ignored")
            changed = True
            continue
        if not (owned_name(ls.network) or (unnamed_ok and ls.network == "")):
            faults.append(f"{source}: VNI {vni} network name {shown(ls.network)} is not a name silonet writes; "
                          "taken for someone else's")
            demoted[vni] = str(ls.network)
            changed = True
            continue
        flood = frozenset(filter(None, (ip(x, f"VNI {vni} flood list IP") for x in ls.flood)))
        if flood != ls.flood:
            ls, changed = LogicalSwitch(vni, ls.network, flood), True
        switches[vni] = ls
    bindings: dict[tuple[str, int], int] = {}
    foreign: dict[tuple[str, int], str] = {}
    for key, vni in owned.bindings.items():
        port, vlan = key
        if not is_token(port) or not vlan_ok(vlan) or not vni_ok(vni):
            faults.append(f"{source}: binding port {shown(port)} VLAN {shown(vlan)} -> VNI {shown(vni)} is not a "
                          "port, VLAN and VNI silonet writes; ignored")
            changed = True
        elif vni in demoted:
            foreign[key] = demoted[vni]
            changed = True
        else:
            bindings[key] = vni
    remote: dict[tuple[int, str], str] = {}
    for (vni, address), where in owned.remote_macs.items():
        m, at = mac(address), ip(where, f"VNI {vni} remote MAC {shown(address)} locator IP")
        if m is None:
            faults.append(f"{source}: VNI {vni} remote MAC {shown(address)} is not a MAC address; ignored")
        if m is None or at is None or vni in demoted or not vni_ok(vni):
            changed = True
            continue
        changed |= m != address or at != where
        remote[(vni, m)] = at
    local: dict[int, frozenset[str]] = {}
    for vni, macs in local_macs.items():
        good = frozenset(filter(None, (mac(x) for x in macs)))
        for bad in sorted((x for x in macs if mac(x) is None), key=repr):
            faults.append(f"{source}: VNI {vni} local MAC {shown(bad)} is not a MAC address; not published")
        if good and vni not in demoted:
            local[vni] = good if good != macs else macs
    if changed:
        owned = GatewayState(switches, bindings, remote)
    if facts.unusable and not all(is_token(port) for port in facts.unusable):
        facts = replace(facts, unusable={port: why for port, why in facts.unusable.items() if is_token(port)})
    if facts.foreign_flood:
        good_flood = frozenset(filter(None, (ip(x, "foreign remote VTEP") for x in facts.foreign_flood)))
        if good_flood != facts.foreign_flood:
            facts = replace(facts, foreign_flood=good_flood)
    if demoted or foreign:
        facts = replace(facts, foreign_vnis={**facts.foreign_vnis, **demoted},
                        foreign_bindings={**facts.foreign_bindings, **foreign},
                        foreign_names=facts.foreign_names | frozenset(demoted.values()))
    return owned, facts, local, faults


def bounded_range(lo: int | str, hi: int | str, what: str, most: int = 4094) -> range:
    """``lo``..``hi`` as a device wrote a range (VLANs ``1-99``, ports ``swp1-4``), refused when it
    runs backwards or spans more than ``most`` (a device's ``1-20000000`` must not cost gigabytes)."""
    first, last = int(lo), int(hi)
    if first < 0 or last < first or last - first >= most:
        raise ValueError(f"{what} range {first}-{last} is not a range of at most {most}")
    return range(first, last + 1)


# ------------------------------------------------------------------ writing
class UnsafeValue(ValueError):
    """A template was given a value it must not put on a command line."""

    def __init__(self, value: object, rule: str) -> None:
        super().__init__(f"{shown(value)} is not {rule}")
        self.value = value
        self.rule = rule


def token(value: object, words: int = 1) -> str:
    """``tok``: ``value`` unchanged when it is a plain token (``words``: that many at most,
    separated by single spaces, e.g. an interface ``gigabitethernet 1/0/11``), else UnsafeValue."""
    parts = value.split(" ") if isinstance(value, str) and words > 1 else [value]
    if not 1 <= len(parts) <= words or not all(is_token(p) for p in parts):
        raise UnsafeValue(value, TOKEN_RULE if words == 1 else f"{words} or fewer words, each {TOKEN_RULE}")
    return str(value)


def quoted(value: object) -> str:
    """``q``, for exec-style batches that a shell runs: a plain token, shell-quoted besides."""
    return shlex.quote(token(value))


def number(value: object) -> str:
    """``num``: an integer (a VLAN, a VNI), never text that merely looks like one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsafeValue(value, "an integer")
    return str(value)


def _piece(value: object) -> str:
    return number(value) if isinstance(value, int) else token(value)


def quoted_format(fmt: str, *args: object) -> str:
    """``qfmt``: the template's own literal text with each ``{}`` a plain token or integer, the
    whole shell-quoted (a description with spaces, a database key with '|')."""
    return shlex.quote(fmt.format(*(_piece(a) for a in args)))


def quoted_json(mapping: Mapping[int, Any]) -> str:
    """``json_q``: {integer: plain token} as sorted JSON, shell-quoted (a ledger silonet keeps on the device)."""
    return shlex.quote(json.dumps({number(k): token(v) for k, v in sorted(mapping.items())}, sort_keys=True))


TEMPLATE_FILTERS: dict[str, Callable[..., str]] = {
    "tok": token, "q": quoted, "num": number, "qfmt": quoted_format, "json_q": quoted_json}
# The filters an output expression of a template may end in, by dialect style.
SAFE_FILTERS = {"exec": frozenset({"q", "num", "qfmt", "json_q"}), "shell": frozenset({"tok", "num"})}
