"""``wafsmith token`` and ``wafsmith serve`` from the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from engine.cli.main import main


@pytest.fixture()
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def test_token_create_list_revoke(db_url, capsys) -> None:
    base = ["token", "--database-url", db_url]
    assert main([*base, "create", "--name", "carol", "--role", "analyst"]) == 0
    out = capsys.readouterr()
    plaintext = out.out.strip()
    assert plaintext.startswith("wsm_")
    assert "not shown again" in out.err

    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out
    assert "carol\tanalyst\tactive" in listed
    assert plaintext not in listed  # never printed again

    assert main([*base, "revoke", "carol"]) == 0
    capsys.readouterr()
    main([*base, "list"])
    assert "carol\tanalyst\trevoked" in capsys.readouterr().out
    assert main([*base, "revoke", "nobody"]) == 1
    assert "no token with id or name 'nobody'" in capsys.readouterr().err


def test_token_create_refuses_unknown_roles(db_url) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["token", "--database-url", db_url, "create", "--name", "x", "--role", "root"])
    assert stop.value.code == 2


def test_serve_answers_with_a_created_token(db_url, capsys) -> None:
    main(["token", "--database-url", db_url, "create", "--name", "ops", "--role", "viewer"])
    token = capsys.readouterr().out.strip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "engine.cli.main", "serve", "--database-url", db_url]
    cmd += ["--port", str(port)]
    env = {**os.environ, "WAFSMITH_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.1)
        status = httpx.get(f"{base}/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200
        assert status.json()["message"] == "no engine has reported yet"
        assert httpx.get(f"{base}/api/v1/status").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
