"""Sessions and request limits over HTTP: sign-in CSRF, server-side logout, persistent
session secret and Secure cookies from the settings, oversized bodies refused before they are
read or authenticated, and secrets in URLs kept out of the logs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.auth import LOGIN_COOKIE, SESSION_COOKIE
from api.main import create_app
from api.server import ApiThread
from engine.service import app_options
from engine.settings import load_settings
from tests.support.signin import login_csrf_of, sign_in


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def test_sign_in_needs_the_forms_csrf_token(client, tokens) -> None:
    # A cross-site form post carries the token but not the form's CSRF pair: refused.
    reply = client.post("/login", data={"token": tokens.analyst}, follow_redirects=False)
    assert reply.status_code == 403
    assert SESSION_COOKIE not in reply.cookies
    # A CSRF field from another browser's form does not match this browser's sealed cookie.
    other = TestClient(client.app)
    stolen = login_csrf_of(other.get("/login").text)
    client.get("/login")
    reply = client.post(
        "/login", data={"token": tokens.analyst, "csrf": stolen}, follow_redirects=False
    )
    assert reply.status_code == 403
    assert sign_in(client, tokens.analyst).status_code == 303
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_the_sign_in_form_expires(client, clock, tokens) -> None:
    form = client.get("/login")
    clock.advance(2 * 3600)
    data = {"token": tokens.viewer, "csrf": login_csrf_of(form.text)}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 403


def test_logout_revokes_the_session_on_the_server(app, client, tokens) -> None:
    sign_in(client, tokens.analyst)
    copied = client.cookies[SESSION_COOKIE]
    page = client.get("/dashboard")
    csrf = login_csrf_of(page.text)
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    # The cookie was copied before logout (another tab, a stolen cookie): it is dead now.
    replay = TestClient(app, cookies={SESSION_COOKIE: copied})
    assert replay.get("/dashboard", follow_redirects=False).status_code == 303
    # Signing in again gives a new, working session.
    assert sign_in(client, tokens.analyst).status_code == 303
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


def write_config(tmp_path: Path, db_url: str, **api: object) -> Path:
    lines = [f'database_url = "{db_url}"', "[api]"]
    lines += [
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {str(v).lower()}" for k, v in api.items()
    ]
    path = tmp_path / "wafsmith.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return path


def test_a_persistent_secret_keeps_sessions_across_restarts(
    tmp_path, db_url, service, tokens
) -> None:
    key = tmp_path / "session.key"
    key.write_text("a-long-enough-session-secret-0123456789\n")
    config = write_config(tmp_path, db_url, session_secret_file=str(key), secure_cookies=True)
    options = app_options(load_settings(config).api)

    first = TestClient(create_app(service, **options), base_url="https://testserver")
    reply = sign_in(first, tokens.viewer)
    assert "secure" in reply.headers["set-cookie"].lower()
    cookie = first.cookies[SESSION_COOKIE]
    # "Restart": a new app from the same settings accepts the same cookie.
    second = TestClient(create_app(service, **options), base_url="https://testserver")
    second.cookies.set(SESSION_COOKIE, cookie)
    assert second.get("/dashboard", follow_redirects=False).status_code == 200
    # Without the configured secret (random per process) it does not.
    third = TestClient(create_app(service), base_url="https://testserver")
    third.cookies.set(SESSION_COOKIE, cookie)
    assert third.get("/dashboard", follow_redirects=False).status_code == 303


def test_the_login_form_cookie_is_secure_when_configured(service, tmp_path, db_url) -> None:
    config = write_config(tmp_path, db_url, secure_cookies=True)
    app = create_app(service, **app_options(load_settings(config).api))
    reply = TestClient(app, base_url="https://testserver").get("/login")
    assert LOGIN_COOKIE in reply.headers["set-cookie"]
    assert "secure" in reply.headers["set-cookie"].lower()


def test_a_too_short_or_missing_secret_file_stops_wafsmith_run(tmp_path, db_url) -> None:
    short = tmp_path / "short.key"
    short.write_text("tiny")
    for path, words in ((short, "at least 16 bytes"), (tmp_path / "nope", "No such file")):
        config = write_config(tmp_path, db_url, session_secret_file=str(path))
        done = subprocess.run(
            [sys.executable, "-m", "engine.cli.main", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 2
        assert words in done.stderr
        assert "Traceback" not in done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def small_limit_server(service):
    port = free_port()
    api = ApiThread(service, host="127.0.0.1", port=port, options={"max_body_bytes": 4096})
    api.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield port
    api.stop()


def test_an_oversized_body_is_refused_before_it_is_read_or_authenticated(
    small_limit_server,
) -> None:
    port = small_limit_server
    # Declares a gigabyte and sends none of it: the 413 comes back at once, unauthenticated.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/allowlist HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head
    assert "application/problem+json" in head
    # A chunked body without a length is cut off once it passes the limit.
    chunks = (b"x" * 1024 for _ in range(64))
    reply = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/allowlist",
        content=chunks,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 413
    assert reply.json()["status"] == 413
    # Small bodies still reach authentication as before.
    reply = httpx.post(f"http://127.0.0.1:{port}/api/v1/allowlist", json={"cidr": "10.0.0.0/8"})
    assert reply.status_code == 401


def test_secrets_in_urls_are_redacted_from_the_logs(tmp_path, db_url) -> None:
    port = free_port()
    config = write_config(tmp_path, db_url, port=port)
    env = {**os.environ, "WAFSMITH_LOG_LEVEL": "INFO"}
    cmd = [sys.executable, "-m", "engine.cli.main", "serve", "--config", str(config)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.1)
        httpx.get(f"{base}/login?user=bob&password=hunter2-secret")
        httpx.get(f"{base}/api/v1/status?access_token=wsm_leakedtoken&limit=5")
        httpx.get(f"{base}/dashboard?X-Amz-Signature=deadbeefsig")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    logged = out.decode() + err.decode()
    assert "/login?user=bob&password=[redacted]" in logged  # the request is still logged
    for secret in ("hunter2-secret", "wsm_leakedtoken", "deadbeefsig"):
        assert secret not in logged
