"""A hub that nothing can stop or fool: body limits, logins, clean edges, strict wire parsing.

Real parts only: the hub app over real SQLite (HubKit), FastAPI's TestClient, raw ASGI calls
into the real middleware stack, and the ``shaobing hub user`` CLI as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub import schema
from hub.app import create_app
from hub.users import LoginGuard, create_user
from shaobing.config import ConfigError, HubConfig, load_hub_config
from shaobing.contract import ContractError, Event, check_time_range
from shaobing.http_limits import json_depth
from shaobing.paths import configs_dir
from tests.conftest import HubKit
from tests.support.processes import ROOT, write_yaml

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MiB = 1024 * 1024


def _run(coro: Any) -> None:
    """Run a coroutine on a loop of its own thread: another test (the browser's sync API)
    may hold a running loop in this thread, where ``asyncio.run`` refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _kit(tmp_path: Path, **overrides: Any) -> HubKit:
    return HubKit(f"sqlite:///{tmp_path / 'hub.sqlite'}", tmp_path, **overrides)


def _client(kit: HubKit, **kw: Any) -> TestClient:
    return TestClient(
        create_app(kit.config, kit.store, lambda: True, kit.core),
        raise_server_exceptions=False,
        **kw,
    )


def _auth(overrides: dict[str, Any]) -> dict[str, Any]:
    return {"auth": {"anonymous_read": True, **overrides}}


@pytest.fixture
def small(tmp_path: Path) -> Iterator[HubKit]:
    """A hub with small limits: 2 KiB bodies, 8 KiB uploads (+64 KiB of form overhead)."""
    kit = _kit(tmp_path, max_body_bytes=2048, upload_max_bytes=8192)
    yield kit
    kit.close()


# --------------------------------------------------------------------------- body limits


def _asgi_post(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes]
) -> tuple[int, bytes, int]:
    """Call the ASGI app directly; returns (status, body, chunks the app pulled)."""
    pulled = 0
    out: dict[str, Any] = {"status": None, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    _run(app(scope, receive, send))
    return int(out["status"]), out["body"], pulled


def _endless(size: int = 64 * 1024) -> Iterator[bytes]:
    """100 MB of body in 64 KiB chunks (never all in memory)."""
    for _ in range(100 * MiB // size):
        yield b"a" * size


@pytest.mark.parametrize(
    "path",
    ["/api/v1/login", "/open311/v2/requests.json", "/api/v1/uploads", "/no/such/path"],
)
def test_declared_100mb_refused_before_a_byte_is_read(small: HubKit, path: str) -> None:
    app = create_app(small.config, small.store, lambda: True, small.core)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(100 * MiB).encode()),
    ]
    status, body, pulled = _asgi_post(app, path, headers, _endless())
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "too_large"
    assert pulled == 0  # refused on the header alone


@pytest.mark.parametrize(
    ("path", "ctype", "limit"),
    [
        ("/api/v1/login", b"application/json", 2048),
        ("/open311/v2/requests.json", b"application/x-www-form-urlencoded", 2048),
        ("/api/v1/uploads", b"image/png", 8192 + 64 * 1024),
    ],
)
def test_chunked_100mb_counted_and_refused_near_the_limit(
    small: HubKit, path: str, ctype: bytes, limit: int
) -> None:
    app = create_app(small.config, small.store, lambda: True, small.core)
    tok = create_user(small.store, f"w{len(path)}", "admin")
    headers = [(b"content-type", ctype), (b"authorization", f"Bearer {tok}".encode())]
    status, body, pulled = _asgi_post(app, path, headers, _endless(1024))
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "too_large"
    # stops within one chunk of the limit, not after 100 MB
    assert pulled * 1024 <= limit + 1024, pulled


def test_body_limits_per_kind_of_endpoint(small: HubKit) -> None:
    c = _client(small)
    tok = create_user(small.store, "admin", "admin")
    h = {"Authorization": f"Bearer {tok}"}
    # JSON POST: over 2 KiB → 413 from the middleware; at the limit → the route answers
    over = b'{"name":"x","password":"' + b"p" * 2100 + b'"}'
    r = c.post("/api/v1/login", content=over, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "at most 2048 bytes" in r.json()["error"]["message"]
    at = b'{"name":"x","password":"' + b"p" * (2048 - 26) + b'"}'
    assert len(at) == 2048
    r = c.post("/api/v1/login", content=at, headers={"Content-Type": "application/json"})
    assert r.status_code == 422  # password too long for the model: the route saw it

    def chunked(data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 512):
            yield data[i : i + 512]

    r = c.post("/api/v1/login", content=chunked(over), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "content-length" not in r.request.headers
    # the Open311 form POST
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = c.post("/open311/v2/requests.json", content=b"a=" + b"x" * 3000, headers=form)
    assert r.status_code == 413
    r = c.post("/open311/v2/requests.json", content=chunked(b"a=" + b"x" * 3000), headers=form)
    assert r.status_code == 413
    assert c.post("/open311/v2/requests.json", content=b"a=b", headers=form).status_code == 403
    # uploads take upload_max_bytes (+64 KiB); more than max_body_bytes is fine there
    png = {**h, "Content-Type": "image/png"}
    r = c.post("/api/v1/uploads", content=PNG + b"\x00" * 4000, headers=png)
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/uploads", content=PNG + b"\x00" * 9000, headers=png)
    assert r.status_code == 413  # over upload_max_bytes: the route's own check
    r = c.post("/api/v1/uploads", content=PNG + b"\x00" * (8192 + 64 * 1024), headers=png)
    assert r.status_code == 413 and "73728 bytes" in r.json()["error"]["message"]
    # an unknown path: a big declared body is still refused; a small one is a plain 404
    r = c.post("/no/such/path", content=b"x" * 3000)
    assert r.status_code == 413
    assert c.post("/no/such/path", content=b"x").status_code == 404
    r = c.post("/api/v1/login", content=b"{}", headers={"Content-Length": "12abc"})
    assert r.status_code == 400


def test_json_nested_deeper_than_32_levels_is_422(sqlite_hubkit: HubKit) -> None:
    c = _client(sqlite_hubkit)

    def body(depth: int) -> bytes:
        # the outer object is level 1
        return ('{"name":"x","password":' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()

    r = c.post("/api/v1/login", content=body(33), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "nested at most 32" in r.json()["error"]["message"]
    r = c.post("/api/v1/login", content=body(32), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "nested" not in r.text  # the model's own complaint
    # 100 000 levels: refused without a RecursionError (500)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = c.post("/api/v1/login", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    "ctype", ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"]
)
def test_json_depth_check_whatever_the_media_type_case(sqlite_hubkit: HubKit, ctype: str) -> None:
    """Media types are case-insensitive (RFC 9110): FastAPI parses all of these as JSON,
    so the depth check must see them all before the parser recurses."""
    c = _client(sqlite_hubkit)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = c.post("/api/v1/login", content=deep, headers={"Content-Type": ctype})
    assert r.status_code == 422, (ctype, r.status_code, r.text[:200])
    assert "nested at most 32" in r.json()["error"]["message"]


def test_json_depth_counts_without_parsing() -> None:
    assert json_depth(b"1", 32) == 0
    assert json_depth(b'{"a":[1,{"b":2}]}', 32) == 3
    # brackets inside strings, escaped quotes included, do not count
    assert json_depth(b'{"a":"[[[[\\"[[{{"}', 32) == 1
    # stops as soon as the limit is passed
    assert json_depth(b"[" * 1_000_000, 5) == 6
    assert json_depth(b"[" * 32 + b"]" * 32, 32) == 32


# --------------------------------------------------------------------------- logins


def _login(c: TestClient, name: str, password: str, **kw: Any) -> Any:
    return c.post("/api/v1/login", json={"name": name, "password": password}, **kw)


def test_five_failures_for_a_name_lock_it_with_retry_after(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    create_user(k.store, "viewer", "viewer", password="secret-pass")
    app = create_app(k.config, k.store, lambda: True, k.core)
    a = TestClient(app, client=("10.0.0.1", 1000))
    b = TestClient(app, client=("10.0.0.2", 1000))
    for _ in range(5):
        assert _login(a, "viewer", "wrong").status_code == 401
    r = _login(b, "viewer", "secret-pass")  # right password, other address: the name is locked
    assert r.status_code == 429 and 25 <= int(r.headers["Retry-After"]) <= 30
    assert r.json()["error"]["code"] and "too many failed logins" in r.json()["error"]["message"]
    audit = [x for x in k.store.list_audit(limit=50) if x["action"] == "login.failed"]
    assert len(audit) == 5
    assert {x["detail"]["address"] for x in audit} == {"10.0.0.1"}
    assert all(x["detail"]["known"] is True and x["target"] == "user:viewer" for x in audit)
    assert audit[0]["detail"]["locked"] is True and audit[-1]["detail"]["locked"] is False


def test_five_failures_from_an_address_lock_that_address(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    create_user(k.store, "viewer", "viewer", password="secret-pass")
    app = create_app(k.config, k.store, lambda: True, k.core)
    a = TestClient(app, client=("10.0.0.1", 1000))
    b = TestClient(app, client=("10.0.0.2", 1000))
    for i in range(5):  # five different unknown names from one address
        assert _login(a, f"ghost{i}", "x").status_code == 401
    r = _login(a, "viewer", "secret-pass")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    ok = _login(b, "viewer", "secret-pass")
    assert ok.status_code == 200 and ok.json()["token"]
    audit = [x for x in k.store.list_audit(limit=50) if x["action"] == "login.failed"]
    assert len(audit) == 5 and all(x["detail"]["known"] is False for x in audit)


def test_login_guard_backoff_doubles_and_success_clears_the_name() -> None:
    now = [1000.0]
    g = LoginGuard(max_failures=5, window_s=300, backoff_s=30, clock=lambda: now[0])
    for _ in range(4):
        assert g.failed("name:n", "addr:a") is False
    assert g.retry_after("name:n") is None
    assert g.failed("name:n", "addr:a") is True
    assert g.retry_after("name:n") == pytest.approx(30)
    now[0] += 31
    assert g.retry_after("name:n", "addr:a") is None
    assert g.failed("name:n", "addr:a") is True  # still 5 in the window: locked again, doubled
    assert g.retry_after("name:n") == pytest.approx(60)
    now[0] += 61
    g.failed("name:n", "addr:a")
    assert g.retry_after("name:n") == pytest.approx(120)
    g.succeeded("name:n")
    assert g.retry_after("name:n") is None
    assert g.retry_after("addr:a") == pytest.approx(120)  # the address stays locked
    # failures older than the window do not count
    g2 = LoginGuard(max_failures=3, window_s=10, backoff_s=5, clock=lambda: now[0])
    for _ in range(2):
        g2.failed("name:m")
    now[0] += 11
    assert g2.failed("name:m") is False and g2.retry_after("name:m") is None
    # bounded
    g3 = LoginGuard(max_failures=1, max_keys=100, clock=lambda: now[0])
    for i in range(1000):
        g3.failed(f"addr:{i}")
    assert len(g3._fails) <= 100 and len(g3._locked) <= 100


def test_burst_of_1000_wrong_passwords_is_mostly_429(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    create_user(k.store, "viewer", "viewer", password="secret-pass")
    c = _client(k)
    t0 = time.monotonic()
    codes = [_login(c, "viewer", f"guess{i}").status_code for i in range(1000)]
    took = time.monotonic() - t0
    n429, n401 = codes.count(429), codes.count(401)
    print(f"burst: {n401} x 401, {n429} x 429 in {took:.1f} s")
    assert n401 == 5 and n429 == 995 and codes[:5] == [401] * 5
    assert took < 20  # the 429 path costs no scrypt
    assert len([x for x in k.store.list_audit(limit=2000) if x["action"] == "login.failed"]) == 5


def test_unknown_names_cost_the_same_scrypt_as_known_ones(tmp_path: Path) -> None:
    k = _kit(tmp_path, **_auth({"login_max_failures": 1000}))
    try:
        create_user(k.store, "viewer", "viewer", password="secret-pass")
        c = _client(k)
        assert _login(c, "viewer", "secret-pass").status_code == 200  # warm up

        def timed(name: str) -> float:
            t0 = time.perf_counter()
            r = _login(c, name, "wrong-password")
            took = time.perf_counter() - t0
            assert r.status_code == 401
            return took

        known: list[float] = []
        unknown: list[float] = []
        for i in range(20):  # interleaved, so that load from elsewhere hits both alike
            known.append(timed("viewer"))
            unknown.append(timed(f"nobody-{i}"))
        mk, mu = statistics.median(known), statistics.median(unknown)
        print(f"login medians: known {mk * 1000:.1f} ms, unknown {mu * 1000:.1f} ms")
        assert max(mk, mu) / min(mk, mu) < 2.0
        assert mu > 0.005  # an unknown name does real key-stretching work, not a shortcut
    finally:
        k.close()


def test_logout_revokes_the_session_server_side(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    create_user(k.store, "viewer", "viewer", password="secret-pass")
    c = _client(k)
    tok = _login(c, "viewer", "secret-pass").json()["token"]
    h = {"Authorization": f"Bearer {tok}"}
    assert c.get("/api/v1/me", headers=h).json()["name"] == "viewer"
    r = c.post("/api/v1/logout", headers=h)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert c.get("/api/v1/me", headers=h).status_code == 401
    assert c.post("/api/v1/logout", headers=h).json()["revoked"] is False


def test_a_session_expires_after_session_ttl(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    create_user(k.store, "viewer", "viewer", password="secret-pass")
    c = _client(k)
    tok = _login(c, "viewer", "secret-pass").json()["token"]
    h = {"Authorization": f"Bearer {tok}"}
    k.clock.advance(hours=11)
    assert c.get("/api/v1/me", headers=h).status_code == 200
    k.clock.advance(hours=1, seconds=1)
    assert c.get("/api/v1/me", headers=h).status_code == 401


def test_bearer_token_expires_after_token_ttl_days(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    tok = create_user(k.store, "viewer", "viewer")
    c = _client(k)
    h = {"Authorization": f"Bearer {tok}"}
    k.clock.advance(days=364)
    assert c.get("/api/v1/me", headers=h).status_code == 200
    k.clock.advance(days=1)
    r = c.get("/api/v1/me", headers=h)
    assert r.status_code == 401 and r.headers.get("WWW-Authenticate") == "Bearer"


def test_token_ttl_null_never_expires(tmp_path: Path) -> None:
    k = _kit(tmp_path, **_auth({"token_ttl_days": None}))
    try:
        tok = create_user(k.store, "viewer", "viewer")
        c = _client(k)
        k.clock.advance(days=3650)
        r = c.get("/api/v1/me", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200 and r.json()["name"] == "viewer"
    finally:
        k.close()


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaobing.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def test_hub_user_token_revoke_disable_enable_cli(tmp_path: Path) -> None:
    from hub.store import Store

    db = tmp_path / "cli-hub.sqlite"
    cfg_path = write_yaml(
        tmp_path / "hub.yaml",
        {
            "kind": "hub",
            "db": f"sqlite:///{db}",
            "registry": str(configs_dir() / "demo" / "registry.yaml"),
            "evidence_dir": str(tmp_path / "ev"),
        },
    )
    cfg = load_hub_config(cfg_path)
    store = Store(cfg.db_url())
    store.migrate()
    try:
        old = create_user(store, "alice", "viewer", password="alice-pass")
        bob = create_user(store, "bob", "viewer")
        c = TestClient(create_app(cfg, store, lambda: True), raise_server_exceptions=False)

        def me(tok: str) -> int:
            return c.get("/api/v1/me", headers={"Authorization": f"Bearer {tok}"}).status_code

        session = _login(c, "alice", "alice-pass").json()["token"]
        assert me(old) == 200 and me(session) == 200 and me(bob) == 200
        r = _cli("hub", "user", "token", "alice", "-c", str(cfg_path))
        assert r.returncode == 0, r.stderr
        new = r.stdout.strip().splitlines()[-1]
        assert me(old) == 401 and me(new) == 200 and me(session) == 200
        r = _cli("hub", "user", "revoke", "alice", "-c", str(cfg_path))
        assert r.returncode == 0, r.stderr
        assert me(new) == 401 and me(session) == 401
        assert new not in r.stdout  # no token is shown on revoke
        r = _cli("hub", "user", "disable", "bob", "-c", str(cfg_path))
        assert r.returncode == 0, r.stderr
        assert me(bob) == 401
        r = _cli("hub", "user", "enable", "bob", "-c", str(cfg_path))
        assert r.returncode == 0, r.stderr
        assert me(bob) == 200
        r = _cli("hub", "user", "token", "nobody", "-c", str(cfg_path))
        assert r.returncode == 2 and "nobody" in r.stderr
        actions = [a["action"] for a in store.list_audit(limit=50)]
        for action in ("user.token", "user.revoke", "user.disable", "user.enable"):
            assert action in actions, action
    finally:
        store.close()


def _session_cookie(r: Any) -> str:
    cookies = [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie"]
    found = [v for v in cookies if v.startswith("sb_session=")]
    assert len(found) == 1, cookies
    return found[0]


def _secure(header: str) -> bool:
    return "secure" in [p.strip().lower() for p in header.split(";")]


@pytest.mark.parametrize(
    ("secure_cookies", "base_url", "expected"),
    [
        (None, "http://testserver", False),
        (None, "https://testserver", True),
        (True, "http://testserver", True),
        (False, "https://testserver", False),
    ],
)
def test_session_cookie_secure_flag(
    tmp_path: Path, secure_cookies: bool | None, base_url: str, expected: bool
) -> None:
    k = _kit(tmp_path, **_auth({"secure_cookies": secure_cookies}))
    try:
        create_user(k.store, "viewer", "viewer", password="secret-pass")
        c = _client(k, base_url=base_url)
        r = c.post("/api/v1/login?cookie=true", json={"name": "viewer", "password": "secret-pass"})
        assert r.status_code == 200 and r.json()["token"] is None
        header = _session_cookie(r)
        assert _secure(header) is expected, header
        low = header.lower()
        assert "httponly" in low and "samesite=strict" in low
    finally:
        k.close()


def test_auth_secret_env_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret_env"):
        HubConfig.model_validate({"auth": {"secret_env": "SHAOBING_SECRET"}})
    path = write_yaml(
        tmp_path / "hub.yaml", {"kind": "hub", "auth": {"secret_env": "SHAOBING_SECRET"}}
    )
    with pytest.raises(ConfigError) as exc:
        load_hub_config(path)
    assert any("auth.secret_env" in str(i) for i in exc.value.issues), exc.value.issues
    r = _cli("config", "validate", str(path))
    assert r.returncode == 2 and "auth.secret_env" in r.stderr


# --------------------------------------------------------------------------- clean edges


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/incidents", "/api/v1/work-orders"])
def test_huge_or_negative_cursor_is_400(sqlite_hubkit: HubKit, path: str) -> None:
    c = _client(sqlite_hubkit)
    for bad in ("12345678901234567890123456", str(2**63), "-1", "1e5", "abc"):
        r = c.get(path, params={"cursor": bad})
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert r.json()["error"]["code"] == "bad_request"
    r = c.get(path, params={"cursor": str(2**63 - 1)})
    assert r.status_code == 200 and set(r.json()) == {"items", "next"}


@pytest.mark.parametrize(
    "raw",
    [
        "/static/%00",
        "/static/dashboard.js%00",
        "/static/%00.js",
        "/static/%2e%2e",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/static/..%5capp.py",
        "/static/..%2f..%2fpyproject.toml",
    ],
)
def test_static_nul_and_dotdot_are_404(sqlite_hubkit: HubKit, raw: str) -> None:
    c = _client(sqlite_hubkit)
    assert c.get("/static/dashboard.js").status_code == 200  # the control
    r = c.get(raw)
    assert r.status_code == 404, (raw, r.status_code, r.text[:200])
    assert b"import " not in r.content and b"[project]" not in r.content


def test_static_nul_over_a_raw_asgi_path(sqlite_hubkit: HubKit) -> None:
    """The path as a server hands it over, without any client-side URL normalisation."""
    app = create_app(sqlite_hubkit.config, sqlite_hubkit.store, lambda: True, sqlite_hubkit.core)
    for path in ("/static/\x00", "/static/../app.py", "/static/a\x00b.js", "/static/./app.py"):
        out: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], out: dict[str, Any] = out) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080),
        }
        _run(app(scope, receive, send))
        assert out["status"] == 404, (path, out)


# --------------------------------------------------------------------------- dead letters


def _dead_letters(kit: HubKit) -> list[tuple[str, bytes]]:
    t = schema.dead_letters
    with kit.store.engine.connect() as conn:
        return [(r.topic, r.payload) for r in conn.execute(select(t).order_by(t.c.seq)).all()]


def test_prune_dead_letters_by_age(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    now = k.clock.now()
    k.store.add_dead_letters(
        [
            ("t/old1", b"x" * 10, "bad", now - timedelta(days=40)),
            ("t/old2", b"x" * 10, "bad", now - timedelta(days=30, seconds=1)),
            ("t/mid", b"x" * 10, "bad", now - timedelta(days=29)),
            ("t/new", b"x" * 10, "bad", now),
        ]
    )
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=10**9) == 2
    assert [t for t, _ in _dead_letters(k)] == ["t/mid", "t/new"]
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=10**9) == 0
    k.clock.advance(days=2)  # t/mid is now 31 days old
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=10**9) == 1
    assert [t for t, _ in _dead_letters(k)] == ["t/new"]


def test_prune_dead_letters_by_bytes_keeps_the_newest(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    now = k.clock.now()
    rows = [(f"t/{i}", bytes([65 + i]) * 99, "r", now - timedelta(hours=10 - i)) for i in range(8)]
    k.store.add_dead_letters(rows)  # 100 bytes each (payload + reason), oldest first
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=800) == 0  # exactly the budget
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=350) == 5
    left = _dead_letters(k)
    assert [t for t, _ in left] == ["t/5", "t/6", "t/7"]
    assert sum(len(p) + 1 for _, p in left) <= 350
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=50) == 3
    assert _dead_letters(k) == []
    assert k.store.prune_dead_letters(max_age_days=30, max_bytes=50) == 0


# --------------------------------------------------------------------------- per-node ids


def test_event_id_shared_by_two_nodes(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    eid = "01JSAMEIDFROMTWONODES00000"
    k.feed(k.event(id=eid, node_id="node-a", summary="甲"))
    k.clock.advance(minutes=1)
    k.feed(k.event(id=eid, node_id="node-b", summary="乙", grid_id="beibei-tianfu-02"))
    c = _client(k)
    r = c.get(f"/api/v1/events/{eid}")
    assert r.status_code == 409
    msg = r.json()["error"]["message"]
    assert "node-a" in msg and "node-b" in msg and "node_id" in msg
    a = c.get(f"/api/v1/events/{eid}", params={"node_id": "node-a"})
    b = c.get(f"/api/v1/events/{eid}", params={"node_id": "node-b"})
    assert a.status_code == 200 and a.json()["source"]["node_id"] == "node-a"
    assert a.json()["summary"] == "甲" and b.json()["summary"] == "乙"
    assert c.get(f"/api/v1/events/{eid}", params={"node_id": "node-c"}).status_code == 404
    one = k.feed(k.event(node_id="node-a"))[0]
    assert c.get(f"/api/v1/events/{one}").status_code == 200  # unique id: no node_id needed


def test_evidence_needs_node_id(sqlite_hubkit: HubKit, tmp_path: Path) -> None:
    k = sqlite_hubkit
    tok = create_user(k.store, "admin", "admin")
    h = {"Authorization": f"Bearer {tok}"}
    for node, data in (("node-a", PNG + b"A"), ("node-b", PNG + b"B")):
        f = tmp_path / f"{node}.png"
        f.write_bytes(data)
        k.store.record_evidence(node, "ev-1", "0" * 64, len(data), str(f), k.clock.now())
    c = _client(k)
    r = c.get("/api/v1/evidence/ev-1", headers=h)
    assert r.status_code == 422 and "node_id" in r.text
    a = c.get("/api/v1/evidence/ev-1", params={"node_id": "node-a"}, headers=h)
    b = c.get("/api/v1/evidence/ev-1", params={"node_id": "node-b"}, headers=h)
    assert (
        a.status_code == 200
        and a.content == PNG + b"A"
        and a.headers["content-type"] == "image/png"
    )
    assert b.status_code == 200 and b.content == PNG + b"B"
    assert c.get("/api/v1/evidence/ev-1", params={"node_id": "x"}, headers=h).status_code == 404
    assert c.get("/api/v1/evidence/ev-1?node_id=", headers=h).status_code == 422


# --------------------------------------------------------------------------- wire strictness


def _wire(i: int = 1) -> dict[str, Any]:
    from shaobing_tools.loadgen import synthetic_event

    return json.loads(synthetic_event("fz", i).to_json())


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(ContractError) as exc:
        Event.from_json(json.dumps(data))
    return str(exc.value)


def test_strict_event_refuses_coercible_values() -> None:
    good = _wire()
    assert Event.from_json(json.dumps(good)).confidence == 0.9  # the control
    assert "confidence" in _refused({**good, "confidence": True})
    assert "confidence" in _refused({**good, "confidence": "0.5"})
    assert "occurred_at" in _refused({**good, "occurred_at": 1_700_000_000})
    assert "occurred_at" in _refused({**good, "occurred_at": "1700000000"})
    assert "occurred_at" in _refused({**good, "occurred_at": 1_700_000_000.5})
    assert "occurred_at" in _refused({**good, "occurred_at": "2026-03-02T01:00:00"})  # no offset
    loc = good["location"]
    assert "floor" in _refused({**good, "location": {**loc, "floor": 1.0}})
    assert "floor" in _refused({**good, "location": {**loc, "floor": "3"}})
    assert "floor" in _refused({**good, "location": {**loc, "floor": True}})
    ok = Event.from_json(json.dumps({**good, "location": {**loc, "floor": 3}}))
    assert ok.location.floor == 3


def test_times_out_of_range_are_refused() -> None:
    good = _wire()
    now = datetime.now(UTC)
    for when in (
        "1999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        (now + timedelta(days=1, minutes=5)).isoformat(),
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59Z",
    ):
        for key in ("occurred_at", "detected_at"):
            assert key in _refused({**good, key: when}), (key, when)
    assert check_time_range(datetime(1999, 12, 31, tzinfo=UTC)) is not None
    assert check_time_range(now + timedelta(hours=23), now) is None
    assert check_time_range(now + timedelta(hours=25), now) is not None
    assert check_time_range(datetime(2000, 1, 1, tzinfo=UTC)) is None
    Event.from_json(json.dumps({**good, "occurred_at": (now + timedelta(hours=23)).isoformat()}))


def _nested(levels: int) -> dict[str, Any]:
    """``levels`` dicts inside one another (the attributes dict is level 1), a scalar inside."""
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


def test_attributes_nested_deeper_than_8_are_refused() -> None:
    good = _wire()
    assert "attributes" in _refused({**good, "attributes": _nested(9)})
    assert "attributes" in _refused({**good, "attributes": _nested(50)})
    assert "attributes" in _refused({**good, "attributes": {"a": [[[[[[[[[1]]]]]]]]]}})
    Event.from_json(json.dumps({**good, "attributes": _nested(7)}))


def test_attributes_nested_exactly_8_are_accepted() -> None:
    """The limit is 8 levels: 8 are allowed (9 are refused above), whatever the leaf."""
    good = _wire()
    eight_dicts_empty_leaf: dict[str, Any] = {}
    for _ in range(7):
        eight_dicts_empty_leaf = {"k": eight_dicts_empty_leaf}
    Event.from_json(json.dumps({**good, "attributes": eight_dicts_empty_leaf}))  # accepted
    # the same 8 levels with a scalar in the innermost dict must be accepted too
    Event.from_json(json.dumps({**good, "attributes": _nested(8)}))


def _coercions() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def setloc(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def f(d: dict[str, Any]) -> None:
            d["location"][key] = value
            if key in ("lat", "lon"):
                other = "lon" if key == "lat" else "lat"
                d["location"][other] = 29.5

        return f

    def setsrc(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda d: d["source"].__setitem__(key, value)

    def settop(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda d: d.__setitem__(key, value)

    def setev(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def f(d: dict[str, Any]) -> None:
            item = {
                "id": "ev-1",
                "kind": "image",
                "content_type": "image/jpeg",
                "sha256": "a" * 64,
                "bytes": 10,
            }
            item[key] = value
            d["evidence"] = [item]

        return f

    return [
        ("confidence=true", settop("confidence", True)),
        ("confidence=false", settop("confidence", False)),
        ("confidence='0.5'", settop("confidence", "0.5")),
        ("confidence='1'", settop("confidence", "1")),
        ("occurred_at=int", settop("occurred_at", 1_700_000_000)),
        ("occurred_at=float", settop("occurred_at", 1_700_000_000.25)),
        ("occurred_at='1700000000'", settop("occurred_at", "1700000000")),
        ("detected_at=int", settop("detected_at", 1_700_000_000)),
        ("detected_at='1700000000.5'", settop("detected_at", "1700000000.5")),
        ("occurred_at=date", settop("occurred_at", "2026-03-02")),
        ("occurred_at=naive", settop("occurred_at", "2026-03-02T01:00:00")),
        ("floor=1.0", setloc("floor", 1.0)),
        ("floor='3'", setloc("floor", "3")),
        ("floor=true", setloc("floor", True)),
        ("column=2.0", setloc("column", 2.0)),
        ("column='2'", setloc("column", "2")),
        ("lat='29.8'", setloc("lat", "29.8")),
        ("lon='106.4'", setloc("lon", "106.4")),
        ("lat=true", setloc("lat", True)),
        ("evidence.bytes='10'", setev("bytes", "10")),
        ("evidence.bytes=10.0", setev("bytes", 10.0)),
        ("evidence.bytes=true", setev("bytes", True)),
        ("id=int", settop("id", 12345)),
        ("summary=int", settop("summary", 42)),
        ("incident_key=int", settop("incident_key", 7)),
        ("device_id=int", setsrc("device_id", 7)),
        ("node_id=int", setsrc("node_id", 7)),
        ("related=[int]", settop("related", [123])),
        ("attributes='{}'", settop("attributes", "{}")),
        ("severity=1", settop("severity", 1)),
    ]


def test_coercion_fuzz_corpus_accepts_none() -> None:
    from shaobing_tools.loadgen import synthetic_event

    variants = _coercions()
    n = 1200
    accepted: list[str] = []
    controls = lax = 0
    for i in range(n):
        data = json.loads(synthetic_event("fz", i).to_json())
        if i % 100 == 0:  # the unmodified payload passes
            Event.from_json(json.dumps(data))
            controls += 1
        name, mutate = variants[i % len(variants)]
        mutate(data)
        raw = json.dumps(data)
        try:
            Event.from_json(raw)
        except ContractError:
            pass
        else:
            accepted.append(name)
        try:  # would a lax (coercing) parse have taken it? counts that the corpus bites
            Event.model_validate_json(raw)
            lax += 1
        except ValueError:
            pass
    print(
        f"coercion corpus: {n} payloads, {len(variants)} forms, strict accepted "
        f"{len(accepted)}, lax would accept {lax}"
    )
    assert controls == 12
    assert accepted == [], sorted(set(accepted))
    assert lax >= n // 4  # many of these are values a lax parser silently coerces
