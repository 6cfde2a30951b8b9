"""The CLI's HTTP client: https:// servers are checked against httpx's CA bundle; an http:// server
needs no TLS, and its client trusts no certificate at all (an https:// hop there fails closed)
instead of loading the bundle at every call."""

from __future__ import annotations

import ssl

from silonet.cli.backend import RemoteBackend, _tls


def test_an_http_server_gets_a_context_that_trusts_nothing() -> None:
    ctx = _tls("http://198.18.0.10:8080")
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 0


def test_an_https_server_gets_httpx_verification() -> None:
    assert _tls("https://silonet.example") is True
    assert _tls("HTTPS://silonet.example") is True


def test_the_remote_backend_uses_it() -> None:
    backend = RemoteBackend("http://198.18.0.10:8080", None)
    try:
        pool = backend.http._transport._pool  # httpx's transport, httpcore's pool
        assert pool._ssl_context.cert_store_stats()["x509_ca"] == 0
    finally:
        backend.http.close()
