"""Engine settings: TOML + WAFSMITH_* environment, validated with errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import ConfigError
from engine.decisions.policy import Policy
from engine.enforcement import compiler_config
from engine.pipeline import AnalysisConfig
from engine.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "config" / "wafsmith.example.toml"


def test_shipped_example_config_is_valid_for_every_stage():
    settings = load_settings(EXAMPLE)
    assert settings.source.kind == "sqs"
    assert compiler_config(settings).placement.web_acl_name == "my-site-acl"
    AnalysisConfig.model_validate(settings.detection)
    Policy.model_validate({**Policy().model_dump(), **settings.policy})


def test_environment_overrides_the_file(monkeypatch):
    monkeypatch.setenv("WAFSMITH_ENFORCEMENT__MODE", "enforce")
    monkeypatch.setenv("WAFSMITH_DATABASE_URL", "postgresql+psycopg://u@db/w")
    settings = load_settings(EXAMPLE)
    assert settings.enforcement.mode == "enforce"
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/w"


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[source]\nkind = "sqs"\n', "source.queue_url is required"),
        ('[source]\nkind = "kafka"\n', "source.kind"),
        ('[enforcement]\nmode = "yolo"\n', "enforcement.mode"),
        ("[api]\nport = 70000\n", "api.port"),
        ("bogus = 1\n", "bogus"),
        ('[source]\nkind = "local"\npaths = ["."]\nextra_key = 1\n', "source.extra_key"),
    ],
)
def test_bad_settings_fail_at_load_naming_the_setting(tmp_path, toml, named):
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(path)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
