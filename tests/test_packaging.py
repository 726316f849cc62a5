"""The wheel is the product: built from this tree, installed the way the image installs it
into a fresh venv, and run from an empty folder with no source tree in sight.

No Docker engine runs on these machines, so the image itself is not built here; instead the
Dockerfile's own install step and HEALTHCHECK command are replayed against a venv.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
# Packages the production image must not carry: the AWS stand-in and the test tools.
NOT_IN_IMAGE = {"moto", "flask", "pytest", "hypothesis", "schemathesis", "playwright", "ruff"}

# Installing into a fresh venv resolves ~60 packages; on a loaded machine that alone can take
# minutes, beyond the suite's default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@dataclass(frozen=True)
class Installed:
    bin: Path
    wheel: Path
    image_packages: frozenset[str]  # distribution names after the image's install step


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=900, check=False, **kw)


def image_install_step() -> str:
    """The final stage's ``RUN`` that pip-installs the wheel, as one shell command."""
    final = DOCKERFILE.read_text().split("\nFROM ")[-1]
    joined = final.replace("\\\n", " ")
    steps = [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]
    (step,) = [s for s in steps if "pip install" in s]
    return step


def image_healthcheck() -> list[str]:
    """The HEALTHCHECK's exec-form command."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.M)
    assert match, "the Dockerfile has no HEALTHCHECK CMD [...]"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)])
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("wafsmith-*.whl")
    constraints = root / "constraints.txt"
    constraints.write_bytes((REPO / "constraints.txt").read_bytes())
    venv = root / "venv"
    step = (
        image_install_step()
        .replace("--no-cache-dir ", "")  # same packages; pip's cache spares the downloads
        .replace("python -m venv", f"{sys.executable} -m venv")
        .replace("/opt/wafsmith", str(venv))
        .replace("/tmp/dist", str(dist))
        .replace("/tmp/constraints.txt", str(constraints))
    )
    step = step.replace(f"rm -rf {dist} {constraints}", "true")  # keep them for the next step
    done = run(["bash", "-ec", step], cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    freeze = run([str(venv / "bin" / "pip"), "freeze"]).stdout
    names = frozenset(re.split(r"[=@ \[]", line)[0].lower() for line in freeze.splitlines())
    # the demo's extra, added after the image's set was recorded
    extra = run(
        [str(venv / "bin" / "pip"), "install", "-c", str(constraints), f"{wheel}[aws-standin]"]
    )
    assert extra.returncode == 0, extra.stderr[-3000:]
    return Installed(bin=venv / "bin", wheel=wheel, image_packages=names)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_image_install_holds_the_engine_and_no_standin_or_test_tools(installed) -> None:
    assert installed.wheel.name == f"wafsmith-{VERSION}-py3-none-any.whl"
    assert {"wafsmith", "psycopg", "pyarrow", "fastapi"} <= installed.image_packages
    assert not NOT_IN_IMAGE & installed.image_packages


def test_version_comes_from_the_package_metadata(installed, tmp_path) -> None:
    reply = run([str(installed.bin / "wafsmith"), "--version"], cwd=tmp_path)
    assert (reply.returncode, reply.stdout.strip()) == (0, f"wafsmith {VERSION}")


def test_the_wheel_ships_the_starter_model_and_scores_with_it(installed, tmp_path) -> None:
    code = (
        "from engine.detectors.anomaly import load_starter; "
        "m = load_starter('models:starter/iforest-starter.npz'); "
        "print(m.card['format'], float(m.combined(m.center[None, :], 2.5)[0][0]) < 0.5)"
    )
    reply = run([str(installed.bin / "python"), "-c", code], cwd=tmp_path)
    assert reply.returncode == 0, reply.stderr[-2000:]
    assert reply.stdout.split() == ["wafsmith-iforest-npz/1", "True"]


def test_the_packaged_engine_passes_the_image_healthcheck(installed, tmp_path, moto_server):
    """``wafsmith run`` from the wheel: migrations, pattern lists, templates and static files
    are found as package data, and the HEALTHCHECK command succeeds once the loop reports."""
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "wafsmith.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "var"}"
[aws]
endpoint_url = "{moto_server}"
[source]
kind = "local"
paths = ["{logs}"]
[api]
port = {port}
[loop]
status_interval_s = 1.0
heartbeat_max_age_s = 30.0
""",
        encoding="utf-8",
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("PYTHONPATH", None)
    engine = subprocess.Popen(
        [str(installed.bin / "wafsmith"), "run", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    command = image_healthcheck()
    command[command.index("python")] = str(installed.bin / "python")
    healthcheck = [part.replace(":8080/", f":{port}/") for part in command]
    try:
        deadline = time.monotonic() + 120
        while engine.poll() is None and time.monotonic() < deadline:
            if run(healthcheck, cwd=tmp_path).returncode == 0:
                break
            time.sleep(0.5)
        assert engine.poll() is None, engine.stderr.read().decode()[-3000:]
        assert run(healthcheck, cwd=tmp_path).returncode == 0
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
            assert json.load(reply)["engine"] == "ok"
        with urllib.request.urlopen(f"{base}/login", timeout=5) as reply:  # a template
            assert b"<form" in reply.read()
        with urllib.request.urlopen(f"{base}/static/app.css", timeout=5) as reply:
            assert reply.status == 200
    finally:
        engine.send_signal(signal.SIGTERM)
        code = engine.wait(timeout=60)
    assert code == 0, engine.stderr.read().decode()[-3000:]


def test_the_demo_from_the_wheel_blocks_attackers_from_any_folder(installed, tmp_path) -> None:
    """15 simulated minutes at 10x: slow enough that a loaded machine's processing delay does
    not outlast the blocks' one-hour TTL on the accelerated clock (at 120x, a two-minute
    delay is four simulated hours and every block has expired by the summary)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    reply = run(
        [str(installed.bin / "wafsmith"), "demo", "--minutes", "15", "--speed", "10",
         "--no-api", "--data-dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert reply.returncode == 0, reply.stderr[-3000:]
    summary = json.loads(reply.stdout)
    assert set(summary["rows_by_format"]) == {"alb", "cloudfront", "waf"}
    assert summary["malformed"] == {}
    assert summary["attackers_blocked"] > 0, summary
    assert summary["benign_clients_blocked"] == 0, summary
    assert summary["last_cycle_ok"] is True
