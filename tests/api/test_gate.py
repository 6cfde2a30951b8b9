"""Issue 16, item 5: the token is checked before the body is read (401 without reading a byte of
it), then the body's size (413 past SILONET_MAX_BODY_BYTES: by Content-Length at once, else
counted while reading, and reading stops at the limit), and only then is the body parsed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.store.db import Database
from tests.conftest import ADMIN, ADMIN_TOKEN

MiB = 2**20
LIMIT = 4096


class Body:
    """A request body sent in chunks, counting what the server pulled from it."""

    def __init__(self, size: int, chunk: int = MiB, fill: bytes = b" ") -> None:
        self.size, self.chunk, self.fill = size, chunk, fill
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.read < self.size:
            n = min(self.chunk, self.size - self.read)
            self.read += n
            yield self.fill * n


@pytest.fixture
def small(db: Database) -> Iterator[TestClient]:
    """An API whose body limit is LIMIT bytes."""
    manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010), admin_token=ADMIN_TOKEN,
                                   max_body_bytes=LIMIT))
    with TestClient(create_app(manager), headers=ADMIN) as c:
        yield c


@pytest.mark.parametrize("headers", [{"Authorization": ""}, {"Authorization": "Bearer snt_not-a-token"}])
def test_no_token_no_body_read(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/v1/apply", "/v1/networks", "/v1/silos"):
        body = Body(63 * MiB)
        r = client.post(path, headers={**headers, "Content-Type": "application/json"}, content=iter(body))
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
        assert r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        assert body.read == 0, f"{path}: {body.read} bytes of the body were read before the 401"


def test_deep_json_without_a_token_is_401_not_422(client: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/v1/apply", "/v1/networks", "/v1/tokens"):
        r = client.post(path, headers={"Authorization": "", "Content-Type": "application/json"}, content=deep)
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
        message = "missing bearer token: send 'Authorization: Bearer <token>'"
        assert r.json() == {"error": "unauthorized", "field": None, "message": message,
                            "problems": [{"field": None, "message": message}]}


def test_a_body_over_the_limit_by_content_length_is_413_unread(small: TestClient) -> None:
    body = Body(LIMIT + 1, chunk=LIMIT + 1, fill=b"x")
    r = small.post("/v1/networks", content=iter(body),
                   headers={"Content-Type": "application/json", "Content-Length": str(LIMIT + 1)})
    assert r.status_code == 413, r.text
    message = f"the request body is over the limit of {LIMIT} bytes (SILONET_MAX_BODY_BYTES)"
    assert r.json() == {"error": "too_large", "field": "body", "message": message,
                        "problems": [{"field": "body", "message": message}]}
    assert body.read == 0
    assert small.get("/v1/networks").json() == []


def test_a_chunked_body_over_the_limit_is_413(small: TestClient) -> None:
    r = small.post("/v1/networks", content=iter(Body(3 * LIMIT, chunk=1000, fill=b" ")),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large"


def test_a_body_within_the_limit_passes_and_the_token_comes_first(small: TestClient) -> None:
    net = json.dumps({"name": "n1", "tenant": "acme"}).encode()
    padded = net + b" " * (LIMIT - len(net))  # exactly at the limit
    r = small.post("/v1/networks", content=padded, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    # over the limit and without a token: 401 (who asks comes before what is sent)
    r = small.post("/v1/networks", content=padded + b" ", headers={"Authorization": "",
                                                                   "Content-Type": "application/json"})
    assert r.status_code == 401


def test_chunks_are_read_no_further_than_the_limit(db: Database) -> None:
    """At the ASGI level, where a body really arrives in chunks: reading stops at the first chunk
    that passes the limit, and the 413 goes out without the rest being pulled."""
    manager = Manager(Runtime(db), Settings(database_url=db.url, admin_token=ADMIN_TOKEN, max_body_bytes=LIMIT))
    app = create_app(manager)
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b" " * 1024, "more_body": pulled < 1000}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/apply", "raw_path": b"/v1/apply", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {ADMIN_TOKEN}".encode()),
                         (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    anyio.run(app, scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"] == "too_large"
    assert pulled == LIMIT // 1024 + 1


def test_routes_without_a_token_stay_open(client: TestClient) -> None:
    no = {"Authorization": ""}
    for path in ("/healthz", "/openapi.json", "/docs", "/ui", "/ui/static/app.js"):
        assert client.get(path, headers=no).status_code == 200, path
    assert client.get("/", headers=no, follow_redirects=False).status_code == 307
    assert client.get("/no/such/path", headers=no).status_code == 404
    # under a guarded prefix, even a path no route serves needs a token
    assert client.get("/v1/no-such-route", headers=no).status_code == 401
    assert client.get("/metrics", headers=no).status_code == 401
