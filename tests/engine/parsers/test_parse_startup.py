"""``wafsmith parse`` starts fast: it loads only what parsing needs.

Listing the commands or parsing a local file must not import the ledger (SQLAlchemy), the API
(FastAPI), the models (scikit-learn), AWS clients (boto3) or pandas: together they cost more
start-up time than parsing a five-minute ALB object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import COMMAND_HELP, COMMAND_MODULES, build_parser, main
from tests.support.expectations import FIXTURES, without_expectations

HEAVY = ("sklearn", "fastapi", "sqlalchemy", "boto3", "botocore", "pandas", "alembic")

PROBE = """
import contextlib, io, json, sys
from engine.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as stop:
        code = stop.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(os_heavy)))
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


def probe(*args: str) -> dict:
    """Run ``wafsmith ARGS`` in a fresh interpreter; its exit code, output, heavy modules."""
    code = PROBE.replace("os_heavy", repr(json.dumps(HEAVY)))
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_parse_of_a_local_file_imports_nothing_heavy(tmp_path: Path) -> None:
    log = tmp_path / "alb.log"
    log.write_bytes(without_expectations(FIXTURES / "alb" / "alb-samples.log"))
    done = probe("parse", str(log))
    assert done["code"] == 0
    assert json.loads(done["out"])["rows_by_format"] == {"alb": 13}
    assert done["heavy"] == []


@pytest.mark.parametrize("args", [["--help"], ["parse", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    done = probe(*args)
    assert done["code"] == 0
    assert "parse" in done["out"]
    assert done["heavy"] == []


def test_command_list_matches_what_each_command_registers(capsys) -> None:
    """``wafsmith --help`` lists every command with the help its own module gives."""
    lazy, full = build_parser([]), build_parser([], every=True)
    assert lazy.format_help() == full.format_help()
    assert [m.rsplit(".", 1)[1] for m in COMMAND_MODULES] == list(COMMAND_HELP)
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in COMMAND_HELP)
