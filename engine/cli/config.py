"""One configuration for every command: the engine's TOML plus ``WAFSMITH_*`` variables.

Each command takes ``--config FILE.toml`` (or ``$WAFSMITH_CONFIG``) in the shape of
``data/config/wafsmith.example.toml``, read through ``engine.settings.load_settings`` exactly
as ``wafsmith run`` reads it; its own flags override the file. ``analyze`` and ``compile`` also
accept their older, narrower files (detection settings at the top level; a compiler table),
told apart by their keys. ``wafsmith config show`` prints the effective settings with secrets
redacted.

Every configuration error is one line naming the file and the problem (a TOML syntax error
with its line and column), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from engine.core.errors import ConfigError

CONFIG_ENV = "WAFSMITH_CONFIG"
# Top-level keys only the engine's settings file has (``policy`` is in both shapes).
ENGINE_KEYS = frozenset(
    {"data_dir", "database_url", "log_level", "aws", "source", "detection", "enforcement",
     "model", "api", "loop"}
)
REDACTED = "***"
_SECRET_KEY = re.compile(r"(password|secret|token|credential|api_key)", re.IGNORECASE)

EPILOG = """examples:
  wafsmith config show --config wafsmith.toml
  WAFSMITH_ENFORCEMENT__MODE=enforce wafsmith config show --config wafsmith.toml --json
  WAFSMITH_CONFIG=/etc/wafsmith/wafsmith.toml wafsmith config show
"""


def config_path(given: Path | str | None) -> Path | None:
    """The settings file a command reads: ``--config``, else ``$WAFSMITH_CONFIG``, else none."""
    if given:
        return Path(given)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def read_toml(path: Path | str) -> dict[str, Any]:
    """The TOML file as a dict; ``ConfigError`` with the line and column of a syntax error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {getattr(exc, 'strerror', exc)}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: TOML syntax error: {exc}") from None


def is_engine_settings(data: dict[str, Any]) -> bool:
    """Whether a parsed TOML file is the engine's settings file (not an older command file)."""
    return bool(ENGINE_KEYS & set(data))


def load_engine_settings(path: Path | None, **overrides: Any) -> Any:
    """``engine.settings.Settings`` from the file (syntax checked first) and the environment."""
    from engine.settings import load_settings

    if path is not None:
        read_toml(path)  # a syntax error names its line and column
    return load_settings(path, **overrides)


def redact(value: Any, key: str = "") -> Any:
    """Settings as plain data with passwords in URLs and secret-named keys replaced."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return REDACTED
        return redact_url(value)
    return value


def redact_url(text: str) -> str:
    """``scheme://user:password@host`` → ``scheme://user:***@host``; query-string secrets too."""
    text = re.sub(r"(://[^/:@\s]*):[^@/\s]*@", rf"\1:{REDACTED}@", text)
    return re.sub(
        r"([?&](?:password|secret|token|sslpassword)=)[^&\s]*", rf"\1{REDACTED}", text,
        flags=re.IGNORECASE,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the effective settings (file + WAFSMITH_* environment), secrets redacted",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    show = verbs.add_parser(
        "show",
        help="print the effective settings",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("--config", type=Path, help=f"TOML settings file (default: ${CONFIG_ENV})")
    show.add_argument("-o", "--output", choices=("toml", "json"), default="toml")
    show.add_argument("--json", dest="output", action="store_const", const="json",
                      help="same as -o json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_engine_settings(config_path(args.config))
    except ConfigError as exc:
        print(f"wafsmith config: {exc}", file=sys.stderr)
        return 2
    doc = redact(settings.model_dump(mode="json"))
    doc["resolved_database_url"] = redact_url(settings.resolved_database_url)
    if args.output == "json":
        json.dump(doc, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(to_toml(doc))
    return 0


def to_toml(doc: dict[str, Any]) -> str:
    """A small TOML writer for the settings' shape: scalars first, then tables; None omitted."""
    lines: list[str] = []
    _write_table(doc, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
    for key, value in sorted(scalars.items()):
        if value is not None:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in sorted(tables.items()):
        _write_table(value, [*path, key], lines)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }"
    return json.dumps(str(value))
