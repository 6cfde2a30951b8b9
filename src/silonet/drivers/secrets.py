"""Reading what a credentials reference points at, inside the fence only.

The fence itself is ``rules.credentials_violation`` (pure, also checked on writes); here it
is checked again before connecting, because rows stored before the fence still load. A file
is opened without following a symlink as its last component, refused when its resolved
location leaves the secrets directory, and its owner and mode are checked on the opened
descriptor, so what is checked is what is read. Messages about a reference outside the
fence say only the rule: nothing about whether that path exists or who may read it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from silonet.config import secrets_dir
from silonet.errors import DeviceError
from silonet.model import rules

MAX_SECRET_BYTES = 64 * 1024  # a private key or a PEM file; more is not a secret silonet reads


def _fail(gateway: str, reason: str) -> DeviceError:
    return DeviceError(gateway=gateway, reason=f"credentials: {reason}")


def fenced_path(ref: str, gateway: str, base: Path | None = None) -> Path:
    """The path of a ``file:`` (or bare path) reference, if it stays inside the secrets directory."""
    base = base or secrets_dir()
    if (rule := rules.credentials_violation(ref, base)) is not None:
        raise _fail(gateway, rule)
    path = Path(ref.removeprefix("file:"))
    real_base = os.path.realpath(base)
    if not os.path.realpath(path).startswith(real_base.rstrip("/") + "/"):
        raise _fail(gateway, f"{path} resolves (through a symlink) outside the secrets directory {base}")
    return path


def read_secret(path: Path, gateway: str) -> bytes:
    """The file's bytes, opened without following a final symlink; owned by this service's
    user or root, readable by its owner only (checked on the descriptor)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO does not hang us
    try:
        fd = os.open(path, flags)
    except OSError as err:
        why = "is a symlink; name the file itself" if err.errno == errno.ELOOP else f"cannot be opened: {err.strerror}"
        raise _fail(gateway, f"{path} {why}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(gateway, f"{path} is not a regular file")
        if st.st_uid not in (os.geteuid(), 0):
            raise _fail(gateway, f"{path} must be owned by the user silonet runs as (uid {os.geteuid()}) or root")
        if st.st_mode & 0o077:
            raise _fail(gateway, f"{path} must be readable by its owner only (chmod 600)")
        if st.st_size > MAX_SECRET_BYTES:
            raise _fail(gateway, f"{path} is larger than {MAX_SECRET_BYTES} bytes")
        return os.read(fd, MAX_SECRET_BYTES)
    finally:
        os.close(fd)
