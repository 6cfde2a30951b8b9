"""Field rules shared by the model, the API schemas and the YAML loader.

Each check returns the value or raises ``InvalidInput`` naming the field and the rule.
"""

from __future__ import annotations

import binascii
import ipaddress
import posixpath
import re
from pathlib import PurePath

from silonet.errors import InvalidInput

NAME_MAX = 64
NAME_RE = re.compile(r"[A-Za-z0-9._-]+")  # every stored name, older rows included
NAME_RULE = f"must be 1..{NAME_MAX} characters of [A-Za-z0-9._-]"
# What a name written now must also be: device CLIs read a leading '-' as an option and a lone
# '--' as vtep-ctl's command separator, and vtep-ctl resolves a UUID before a name, so a network
# named after a foreign row's UUID would address that row.
NEW_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
NEW_NAME_RULE = (f"must be 1..{NAME_MAX} characters of [A-Za-z0-9._-], start with a letter or a digit, "
                 "and not have the shape of a UUID")
VLAN_MIN, VLAN_MAX = 0, 4094
VLAN_RULE = f"VLAN must be an integer {VLAN_MIN}..{VLAN_MAX} (0 = untagged)"
VNI_MIN, VNI_MAX = 1, 16_777_215
VNI_RULE = f"VNI must be an integer {VNI_MIN}..{VNI_MAX}"
CAPACITY_MAX = 10_000_000
CAPACITY_RULE = f"capacity must be an integer 1..{CAPACITY_MAX}"
DRIVERS = ("ovsdb", "ssh", "memory")  # the one list of drivers (drivers.base.registry loads them)
# a gateway's mode: enforce (silonet writes), observe (reads and plans, never writes), maintenance
# (not contacted at all); the one list (plan/status, the schemas and the CLI take it from here)
MODES = ("enforce", "observe", "maintenance")
MODE_RULE = f"mode must be one of {', '.join(MODES)}"
HOST_KEY_MAX = 16384
HOST_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                  "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
HOST_KEY_RULE = (f"must be an OpenSSH public key line (<type> <base64> [comment], type one of "
                 f"{', '.join(HOST_KEY_TYPES)}) or a SHA256: fingerprint (SHA256: and 43 base64 characters), "
                 f"at most {HOST_KEY_MAX} characters")
_FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def default_address(driver: str, gateway: str) -> str | None:
    """The management address a driver needs none for: an in-process device named after its gateway."""
    return f"memory:{gateway}" if driver == "memory" else None
SECRETS_SETTING = "SILONET_SECRETS_DIR"
SECRET_ENV_PREFIX = "SILONET_SECRET_"
SECRET_ENV_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
SECRET_ENV_RULE = f"env: may name only a variable {SECRET_ENV_PREFIX}<NAME> (<NAME> of [A-Za-z0-9_])"
REFERENCE_FORMS = f"file:<secrets dir>/<file> or env:{SECRET_ENV_PREFIX}<NAME>"


def name(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not value or len(value) > NAME_MAX or not NAME_RE.fullmatch(value):
        raise InvalidInput(field=field, rule=f"{value!r} {NAME_RULE}")
    return value


def name_violation(value: str) -> str | None:
    """The rule a name breaks that older versions accepted (None: it is fine). Stored rows that
    break it still load; they are flagged, and never rendered into a device command."""
    if not NEW_NAME_RE.fullmatch(value):
        return "must start with a letter or a digit (a device CLI reads a leading '-' as an option)"
    if UUID_RE.fullmatch(value):
        return "must not have the shape of a UUID (device tools resolve a UUID before a name)"
    return None


def new_name(value: str, field: str = "name") -> str:
    """A name being written now: ``name`` and ``name_violation``."""
    name(value, field)
    why = name_violation(value)
    if why is not None:
        raise InvalidInput(field=field, rule=f"{value!r} {why}")
    return value


def _integer(value: object, field: str, lo: int, hi: int, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(field=field, rule=f"{value!r}: {rule}")
    return value


def vlan(value: object, field: str = "vlan") -> int:
    return _integer(value, field, VLAN_MIN, VLAN_MAX, VLAN_RULE)


def vni(value: object, field: str = "vni") -> int:
    return _integer(value, field, VNI_MIN, VNI_MAX, VNI_RULE)


def capacity(value: object, field: str = "capacity") -> int:
    return _integer(value, field, 1, CAPACITY_MAX, CAPACITY_RULE)


def ipv4(value: str, field: str = "vtep_ip") -> str:
    """A unicast IPv4 address another device can send tunnel traffic to."""
    try:
        addr = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise InvalidInput(field=field, rule=f"{value!r} is not an IPv4 address") from None
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback or addr.is_reserved or addr.is_link_local \
            or addr == ipaddress.IPv4Address("255.255.255.255"):
        raise InvalidInput(field=field, rule=f"{value!r} must be a unicast address reachable from other gateways")
    return str(addr)


def driver(value: str, field: str = "management.driver") -> str:
    if value not in DRIVERS:
        raise InvalidInput(field=field, rule=f"{value!r} is not one of {', '.join(DRIVERS)}")
    return value


def mode(value: object, field: str = "mode") -> str:
    """A gateway's mode (``MODES``)."""
    if not isinstance(value, str) or value not in MODES:
        raise InvalidInput(field=field, rule=f"{value!r}: {MODE_RULE}")
    return value


def host_key(value: object, field: str = "management.host_key") -> str:
    """A pinned SSH host key: an OpenSSH public key line (its type known, its key base64 that
    decodes) or a ``SHA256:`` fingerprint. The key itself is not parsed here (no crypto in the
    model): the ssh driver imports it when it connects. Not echoed: it may be long."""
    ok = isinstance(value, str) and 0 < len(value) <= HOST_KEY_MAX and "\x00" not in value
    if ok and value.startswith("SHA256:"):
        ok = bool(_FINGERPRINT_RE.fullmatch(value))
    elif ok:
        parts = value.split()
        ok = len(parts) >= 2 and parts[0] in HOST_KEY_TYPES and _decodes(parts[1])
    if not ok:
        raise InvalidInput(field=field, rule=HOST_KEY_RULE)
    return value  # type: ignore[return-value]


def _decodes(b64: str) -> bool:
    """Strict base64 (alphabet and padding) of at least one byte."""
    try:
        return len(binascii.a2b_base64(b64.encode("ascii"), strict_mode=True)) > 0
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


def text(value: str, field: str, limit: int = 1024) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(field=field, rule=f"must be text of at most {limit} characters")
    return value


def parse_pool(spec: str, field: str = "SILONET_VNI_POOL") -> range:
    """Parse a VNI pool like ``10000-19999`` into an inclusive range."""
    try:
        lo_s, hi_s = spec.split("-", 1)
        lo, hi = int(lo_s), int(hi_s)
    except ValueError:
        raise InvalidInput(field=field, rule=f"{spec!r} is not of the form LOW-HIGH") from None
    vni(lo, field)
    vni(hi, field)
    if lo > hi:
        raise InvalidInput(field=field, rule=f"{spec!r}: LOW must not exceed HIGH")
    return range(lo, hi + 1)


def ssh_address(value: str, field: str = "management.address") -> str:
    """``[ssh://][user@]host[:port]``: a ``user:password@`` would be stored, shown and logged, so refuse it
    (without echoing it)."""
    if ":" in value.removeprefix("ssh://").rpartition("@")[0]:
        raise InvalidInput(field=field, rule="must not hold a password (user:password@host); name the secret in "
                                             f"management.credentials ({REFERENCE_FORMS})")
    return value


_PORT = r"(?P<port>[0-9]{1,5})"
SSH_ADDRESS_RE = re.compile(rf"(?:ssh://)?(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^:/@\s]+)(?::{_PORT})?/?")
OVSDB_INET_RE = re.compile(rf"(?P<scheme>tcp|ssl):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):{_PORT}")
OVSDB_ADDRESS_RULE = ("is not tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH (the ovsdb driver's forms, "
                      "e.g. tcp:198.18.1.1:6640)")
INET_RULE = "needs HOST:PORT after {scheme}: (an IPv4 address, [IPv6 address] or host name, and a port 1..65535)"
SSH_ADDRESS_RULE = "is not [ssh://][user@]host[:port] (port 1..65535)"


def _host_ok(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return True


def address_violation(driver: str, value: str) -> str | None:
    """The rule a management address breaks (None: it is fine). Checked when written
    (``new_address``); rows stored before the rule still load and are flagged (``legacy``), so a
    gateway with ``198.18.1.9:6640`` (no ``tcp:``) is named instead of failing every connection."""
    if driver == "ovsdb":
        if value.startswith("unix:"):
            return None if value[5:].strip() else "unix: needs the path of the socket"
        if not value.startswith(("tcp:", "ssl:")):
            return OVSDB_ADDRESS_RULE
        m = OVSDB_INET_RE.fullmatch(value)
        if m is None or not _host_ok(m["host"]) or not 1 <= int(m["port"]) <= 65535:
            return INET_RULE.format(scheme=value[:3])
        return None
    if driver == "ssh":
        m = SSH_ADDRESS_RE.fullmatch(value)
        if m is None or (m["port"] is not None and not 1 <= int(m["port"]) <= 65535):
            return SSH_ADDRESS_RULE
    return None


def new_address(driver: str, value: str, field: str = "management.address") -> str:
    """A management address being written now: a password is refused unechoed (``ssh_address``),
    then the driver's form (``address_violation``)."""
    if driver == "ssh":
        ssh_address(value, field)
    if (why := address_violation(driver, value)) is not None:
        raise InvalidInput(field=field, rule=f"{value!r} {why}")
    return value


def management_endpoint(driver: str, value: str) -> tuple[str, str]:
    """The device an address reaches, so two gateways on one device are told from two devices:
    ``ssh://admin@GW1`` and ``gw1:22`` are one endpoint, as are ``tcp:`` and ``ssl:`` to one host and port."""
    value = value.strip()
    if driver == "ssh" and (m := SSH_ADDRESS_RE.fullmatch(value)):
        return driver, f"{m['host'].lower()}:{int(m['port'] or 22)}"
    # an older row's bare host:port reaches the device its tcp: form does (fixing the form moves nothing)
    if driver == "ovsdb" and (m := OVSDB_INET_RE.fullmatch(value) or OVSDB_INET_RE.fullmatch(f"tcp:{value}")):
        return driver, f"{m['host'].lower()}:{int(m['port'])}"
    if driver == "ovsdb" and value.startswith("unix:"):
        return driver, "unix:" + posixpath.normpath(value[5:])
    return driver, value


def secret_file_rule(secrets_dir: str | PurePath) -> str:
    """The fence for ``file:`` references (one text for the API, the status flag and the driver)."""
    return (f"file: (or a bare path) must be an absolute path, without '..', inside the secrets directory "
            f"{secrets_dir} ({SECRETS_SETTING})")


def credentials_violation(value: str, secrets_dir: str | PurePath) -> str | None:
    """The fence a credentials reference breaks, or None. Pure (no file is looked at, so the
    answer says nothing about what exists outside the fence): ``env:`` only for variables named
    ``SILONET_SECRET_*`` (else any admin could send the database password or the admin token
    to an address of their choosing), a path only inside ``secrets_dir``. Checked on writes
    and before connecting; rows stored before the fence still load (``credentials`` below)."""
    if value.startswith("env:"):
        var = value[4:]
        ok = var.startswith(SECRET_ENV_PREFIX) and SECRET_ENV_NAME_RE.fullmatch(var[len(SECRET_ENV_PREFIX):])
        return None if ok else SECRET_ENV_RULE
    path, base = value.removeprefix("file:"), str(secrets_dir)
    inside = (posixpath.isabs(path) and posixpath.isabs(base) and ".." not in path.split("/")
              and posixpath.normpath(path).startswith(posixpath.normpath(base).rstrip("/") + "/"))
    return None if inside else secret_file_rule(secrets_dir)


def fenced_credentials(value: str | None, secrets_dir: str | PurePath,
                       field: str = "management.credentials") -> str | None:
    """``value`` if it passes the fence (a write), else InvalidInput naming the field and the rule."""
    if value is not None and (rule := credentials_violation(value, secrets_dir)) is not None:
        raise InvalidInput(field=field, rule=rule)
    return value


def credentials(value: str, field: str = "management.credentials") -> str:
    """A reference to a secret (``file:/path``, ``/path`` or ``env:VAR``), never the secret.
    The shape only: where a reference may point is ``credentials_violation``."""
    text(value, field, 256)
    if value.startswith("env:"):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value[4:]):
            # not echoed: what follows env: may be the secret itself, typed in the wrong place
            raise InvalidInput(field=field, rule="env: needs a variable name ([A-Za-z_][A-Za-z0-9_]*)")
        return value
    if not value.removeprefix("file:").startswith(("/", "~")):
        raise InvalidInput(field=field, rule=f"must be a reference ({REFERENCE_FORMS}), never the secret itself")
    return value
