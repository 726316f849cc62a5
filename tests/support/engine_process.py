"""`wafsmith run` as a user starts it: one settings file on the demo stand-ins, one process.

The engine-process tests (idle close, poison objects, crash safety, lease failover) differ only
in their source, their enforcement interval and, for the lease, the database and the lease
section; everything else — the stand-ins' endpoint, enforcement on, no API, an ephemeral
metrics port so engines and test runs beside each other never collide, the flood policy — is
written here once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
FLOOD_POLICY = '[{name = "floods", detectors = ["volumetric_flood"], min_score = 0.5}]'


def _value(value: Any) -> str:
    """A TOML scalar or list of scalars (JSON's strings, numbers and arrays are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list):
        value = [str(item) if isinstance(item, Path) else item for item in value]
    if isinstance(value, (str, int, float, list)):
        return json.dumps(value)
    raise TypeError(f"no TOML form for {value!r}")


def _table(name: str, values: dict[str, Any]) -> str:
    body = "".join(f"{key} = {_value(val)}\n" for key, val in values.items())
    return f"[{name}]\n{body}"


def write_engine_config(
    path: Path,
    demo,
    data_dir: Path,
    *,
    source: dict[str, Any],
    interval_s: float | None = 2.0,
    log_level: str = "WARNING",
    database_url: str | None = None,
    lease: dict[str, Any] | None = None,
    mode: str = "enforce",
    metrics: dict[str, Any] | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
    flood_policy: bool = True,
) -> Path:
    """Write the settings of one `wafsmith run` on the demo stand-ins ``demo``; return ``path``.

    ``metrics`` defaults to an ephemeral port; ``extra`` adds whole tables (``notify`` ...);
    ``flood_policy`` auto-approves the flood detector's decisions, as an operator would.
    """
    top = {"data_dir": str(data_dir), "log_level": log_level}
    if database_url is not None:
        top["database_url"] = database_url
    enforcement: dict[str, Any] = {"mode": mode, "web_acl_name": demo.web_acl_name}
    if interval_s is not None:
        enforcement["interval_s"] = interval_s
    parts = [
        "".join(f"{key} = {_value(val)}\n" for key, val in top.items()),
        _table("aws", {"endpoint_url": demo.endpoint_url, "region": demo.region}),
        _table("source", source),
        _table("enforcement", enforcement),
        _table("api", {"enabled": False}),
        _table("metrics", {"port": 0} if metrics is None else metrics),
    ]
    if lease is not None:
        parts.append(_table("lease", lease))
    parts.extend(_table(name, values) for name, values in (extra or {}).items())
    if flood_policy:
        parts.append(f"[policy]\nauto_approve = {FLOOD_POLICY}\n")
    path.write_text("".join(parts), encoding="utf-8")
    return path


def start_engine(config: Path, stderr: int | IO[bytes] = subprocess.PIPE) -> subprocess.Popen:
    """``wafsmith run --config CONFIG --no-api`` as a child process, with the stand-ins' keys."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--config", str(config), "--no-api"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def block_set_so_far(wafv2, name: str = "wafsmith-block-v4-0") -> list[str]:
    """The addresses of the engine's IPv4 block set; empty until its first reconcile made it."""
    for summary in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"]:
        if summary["Name"] == name:
            found = wafv2.get_ip_set(Name=name, Scope="REGIONAL", Id=summary["Id"])
            return found["IPSet"]["Addresses"]
    return []
