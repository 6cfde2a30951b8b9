"""A throw-away PKI (openssl CLI) for ``ssl:`` OVSDB connections in tests and the lab:
one CA, and key + certificate pairs it signs."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=silonet test CA",
             "-keyout", str(directory / "ca-key.pem"), "-out", str(directory / "cacert.pem"))
    (directory / "ca-key.pem").chmod(0o600)
    return directory / "cacert.pem"


def issue(ca_dir: Path, directory: Path, name: str) -> tuple[Path, Path]:
    """key.pem and cert.pem for ``name`` in ``directory``, signed by the CA in ``ca_dir``;
    the CA certificate is copied beside them as cacert.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    key, csr, cert = directory / "key.pem", directory / "req.pem", directory / "cert.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "cacert.pem"), "-CAkey", str(ca_dir / "ca-key.pem"),
             "-CAcreateserial", "-days", "2", "-out", str(cert))
    key.chmod(0o600)
    csr.unlink()
    (directory / "cacert.pem").write_bytes((ca_dir / "cacert.pem").read_bytes())
    return key, cert
