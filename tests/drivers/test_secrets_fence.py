"""The credentials fence: ``env:`` only for ``SILONET_SECRET_*``, a path only inside the secrets
directory; the pure rule (``rules.credentials_violation``) and what the drivers open at connect
time (no final symlink, nothing resolving outside, owner and mode of the opened file)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from silonet import config
from silonet.drivers.ssh import credentials
from silonet.errors import DeviceError, InvalidInput
from silonet.model import Management, rules

BASE = "/srv/silonet/secrets"
FILE_RULE = rules.secret_file_rule(BASE)


@pytest.mark.parametrize(("ref", "rule"), [
    ("env:SILONET_SECRET_SWITCH_PW", None),
    ("env:SILONET_SECRET_a1", None),
    ("env:SILONET_SECRET_", rules.SECRET_ENV_RULE),  # no name after the prefix
    ("env:SILONET_DB_PASSWORD", rules.SECRET_ENV_RULE),
    ("env:SILONET_ADMIN_TOKEN", rules.SECRET_ENV_RULE),
    ("env:HOME", rules.SECRET_ENV_RULE),
    ("env:silonet_secret_x", rules.SECRET_ENV_RULE),
    ("env:XSILONET_SECRET_X", rules.SECRET_ENV_RULE),
    ("env:SILONET_SECRET_A-B", rules.SECRET_ENV_RULE),
    (f"file:{BASE}/gw.key", None),
    (f"{BASE}/gw.key", None),  # a bare path
    (f"file:{BASE}/lab-sn/id_ed25519", None),
    (f"file:{BASE}//./gw.key", None),
    (f"file:{BASE}", FILE_RULE),  # the directory itself
    (f"file:{BASE}/", FILE_RULE),
    (f"file:{BASE}/../../../etc/shadow", FILE_RULE),
    (f"file:{BASE}/sub/../gw.key", FILE_RULE),  # no '..' at all, even one that stays inside
    (f"file:{BASE}-other/gw.key", FILE_RULE),  # a sibling sharing the prefix
    (f"file:{BASE}x/gw.key", FILE_RULE),
    ("file:/etc/shadow", FILE_RULE),
    ("/etc/shadow", FILE_RULE),
    ("file:~/.ssh/id_ed25519", FILE_RULE),
    ("file:gw.key", FILE_RULE),
    (f"file:/{BASE}/gw.key", FILE_RULE),  # '//srv/...' is not '/srv/...' to POSIX
])
def test_the_fence(ref: str, rule: str | None) -> None:
    assert rules.credentials_violation(ref, BASE) == rule
    trailing = rules.secret_file_rule(BASE + "/") if rule == FILE_RULE else rule  # a trailing slash is the same dir
    assert rules.credentials_violation(ref, BASE + "/") == trailing


def test_rule_texts_name_the_setting_and_the_directory() -> None:
    assert "SILONET_SECRET_<NAME>" in rules.SECRET_ENV_RULE
    assert BASE in FILE_RULE and "SILONET_SECRETS_DIR" in FILE_RULE and "'..'" in FILE_RULE


def test_a_write_names_field_and_rule_while_stored_shapes_still_construct() -> None:
    with pytest.raises(InvalidInput) as err:
        rules.fenced_credentials("env:SILONET_DB_PASSWORD", BASE, "gateways.gw-a.management.credentials")
    assert (err.value.field, err.value.fields["rule"]) == ("gateways.gw-a.management.credentials",
                                                         rules.SECRET_ENV_RULE)
    assert rules.fenced_credentials(None, BASE) is None
    # rows stored before the fence are built by the same constructor: it checks the shape only
    assert Management("ssh", "admin@198.18.1.1", "vtepctl", "env:SILONET_DB_PASSWORD").credentials
    assert Management("ssh", "admin@198.18.1.1", "vtepctl", "file:/etc/shadow").credentials


def test_the_secrets_directory_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SILONET_SECRETS_DIR", raising=False)
    monkeypatch.setenv("SILONET_DATA_DIR", str(tmp_path / "data"))
    assert config.secrets_dir() == tmp_path / "data" / "secrets" == config.Settings().secrets_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SILONET_SECRETS_DIR", "rel/../keys")
    assert config.secrets_dir() == tmp_path / "keys"  # absolute: the fence is a prefix check


# ------------------------------------------------------------------ at connect time
@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "secrets"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("SILONET_SECRETS_DIR", str(d))
    return d


def _key(path: Path, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    path.chmod(mode)
    return path


def _refused(ref: str) -> str:
    with pytest.raises(DeviceError) as err:
        credentials.resolve(ref, "gw-a")
    assert err.value.fields["gateway"] == "gw-a"
    return err.value.fields["reason"]


def test_a_key_inside_is_read_from_the_checked_descriptor(base: Path) -> None:
    key = _key(base / "sub" / "gw.key")
    for ref in (f"file:{key}", str(key)):
        secret = credentials.resolve(ref, "gw-a")
        assert secret.key_file == key and secret.key is not None and secret.password is None
        assert secret.key.export_public_key() == asyncssh.read_private_key(str(key)).export_public_key()


def test_env_only_for_silonet_secret_variables(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILONET_SECRET_SW", "pw-of-the-switch")
    monkeypatch.setenv("SILONET_DB_PASSWORD", "pw-of-the-database")
    assert credentials.resolve("env:SILONET_SECRET_SW", "gw-a").password == "pw-of-the-switch"
    reason = _refused("env:SILONET_DB_PASSWORD")
    assert reason == f"credentials: {rules.SECRET_ENV_RULE}" and "pw-of-the-database" not in reason


def test_outside_the_directory_says_the_rule_only(base: Path, tmp_path: Path) -> None:
    """Whether the file exists or who may read it: the same answer."""
    exists = _key(tmp_path / "outside.key")
    world = tmp_path / "world.key"
    world.write_text("x")
    world.chmod(0o644)
    said = {_refused(ref) for ref in (f"file:{exists}", f"file:{world}", f"file:{tmp_path}/nothing-here",
                                      "file:/etc/shadow", f"file:{base}/../outside.key")}
    assert said == {f"credentials: {rules.secret_file_rule(base)}"}


def test_a_symlink_leaving_the_directory_is_refused(base: Path, tmp_path: Path) -> None:
    outside = _key(tmp_path / "elsewhere" / "id_ed25519")
    (base / "link.key").symlink_to(outside)
    (base / "linkdir").symlink_to(outside.parent)
    for ref in (f"file:{base}/link.key", f"file:{base}/linkdir/id_ed25519"):
        assert "resolves (through a symlink) outside the secrets directory" in _refused(ref)


def test_a_symlink_as_the_last_component_is_not_followed(base: Path) -> None:
    _key(base / "real.key")
    (base / "alias.key").symlink_to(base / "real.key")
    assert _refused(f"file:{base}/alias.key") == f"credentials: {base}/alias.key is a symlink; name the file itself"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o700 | 0o001])
def test_group_or_other_bits_are_refused(base: Path, mode: int) -> None:
    key = _key(base / "gw.key", mode)
    assert _refused(f"file:{key}") == f"credentials: {key} must be readable by its owner only (chmod 600)"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_file_of_another_user_is_refused(base: Path) -> None:
    key = _key(base / "gw.key")
    os.chown(key, 65534, 65534)
    assert "must be owned by the user silonet runs as" in _refused(f"file:{key}")


def test_not_a_regular_file(base: Path) -> None:
    (base / "dir.key").mkdir()
    os.mkfifo(base / "fifo.key", 0o600)  # opened without blocking, then refused
    for name in ("dir.key", "fifo.key"):
        assert _refused(f"file:{base / name}") == f"credentials: {base / name} is not a regular file"


def test_a_key_asyncssh_cannot_parse_is_an_error_of_the_gateway(base: Path) -> None:
    for i, junk in enumerate((b"not a key\n", b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                              b"-----END OPENSSH PRIVATE KEY-----\n", b"")):
        bad = base / f"bad{i}.key"
        bad.write_bytes(junk)
        bad.chmod(0o600)
        assert f"{bad} is not a private key silonet can use" in _refused(f"file:{bad}")


def test_ovsdb_ssl_directory_is_fenced_too(base: Path, tmp_path: Path) -> None:
    ovsdb = pytest.importorskip("silonet.drivers.ovsdb")
    from silonet.model import Gateway

    (tmp_path / "ssl").mkdir()
    said = set()
    for ref in (str(tmp_path / "ssl"), "/etc", "/no/such/dir"):  # old messages told which lacked key.pem
        gw = Gateway("gw-a", "198.18.0.1", Management("ovsdb", "ssl:127.0.0.1:6640", credentials=ref))
        with pytest.raises(DeviceError) as err:
            ovsdb.configure_ssl(gw)
        said.add(err.value.fields["reason"])
    assert said == {f"credentials: {rules.secret_file_rule(base)}"}
