"""Engine settings: a TOML file plus ``WAFSMITH_*`` environment variables (pydantic-settings).

Precedence, highest first: keyword arguments, environment (``WAFSMITH_DATABASE_URL``,
``WAFSMITH_AWS__ENDPOINT_URL`` for nested keys), the TOML file, defaults. Unknown keys are
refused and every validation error names the setting, so a bad config fails at start-up, not
mid-stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from engine.core.errors import ConfigError

# Database URL schemes the ledger speaks (a driver suffix, e.g. ``+psycopg``, is allowed).
SUPPORTED_DATABASES = ("sqlite", "postgresql")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AwsSettings(_Section):
    """Where AWS is: unset ``endpoint_url`` means real AWS."""

    endpoint_url: str | None = None
    region: str = "us-east-1"


class SourceSettings(_Section):
    """Where log objects come from."""

    kind: Literal["sqs", "s3_list", "local"] = "sqs"
    queue_url: str | None = None
    bucket: str | None = None
    prefix: str = ""
    paths: list[Path] = Field(default_factory=list)
    format: Literal["auto", "alb", "cloudfront", "waf"] = "auto"
    max_objects_per_poll: int = Field(10, ge=1, le=100)
    visibility_timeout_s: int = Field(300, ge=1, le=43_200)
    wait_time_s: int = Field(1, ge=0, le=20)
    # What one object may cost: decompressed bytes read (``object_too_large`` beyond) and the
    # length of one line (``line_too_long``). An object not read to its end is set aside.
    max_object_bytes: int = Field(4 << 30, ge=1024)
    max_line_bytes: int = Field(256 << 10, ge=1024, le=64 << 20)
    # Where poison objects are copied with their reason: under this prefix of their own bucket
    # (S3; the sources skip it) or in this folder (local files; default <data_dir>/quarantine).
    quarantine_prefix: str = Field("wafsmith-quarantine/", pattern=r"^[^/].*/$")
    quarantine_dir: Path | None = None

    @model_validator(mode="after")
    def _needs_location(self) -> SourceSettings:
        if self.kind == "sqs" and not self.queue_url:
            raise ValueError("source.queue_url is required when source.kind = 'sqs'")
        if self.kind == "s3_list" and not self.bucket:
            raise ValueError("source.bucket is required when source.kind = 's3_list'")
        if self.kind == "local" and not self.paths:
            raise ValueError("source.paths is required when source.kind = 'local'")
        return self


class EnforcementSettings(_Section):
    """How approved decisions reach AWS WAF."""

    mode: Literal["dry_run", "count_only", "enforce"] = "dry_run"
    web_acl_name: str | None = None
    scope: Literal["REGIONAL", "CLOUDFRONT"] = "REGIONAL"
    interval_s: float = Field(10.0, gt=0)
    compiler: dict[str, Any] = Field(default_factory=dict)


class ModelSettings(_Section):
    """The isolation forest trained online on a rolling baseline of benign clients.

    ``trainer`` names the estimator's trainer by ``module:Class`` (the engine does not import
    the ``models`` package; it loads what the config names). Its artifact goes to
    ``directory`` (default ``<data_dir>/models``) and the anomaly detector scores with it from
    the first fit on.
    """

    enabled: bool = False
    trainer: str = Field("models.baseline:RollingBaseline", pattern=r"^[\w.]+:\w+$")
    directory: Path | None = None
    refit_every_s: float = Field(3600.0, gt=0)
    min_rows: int = Field(200, ge=10)
    capacity: int = Field(20_000, ge=100)


class ApiSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Dashboard sessions: the secret that signs their cookies (inline, or a file holding it;
    # unset: a random one per process, so a restart signs everyone out), their lifetime, and
    # the Secure flag (set it whenever the dashboard is reached over HTTPS).
    session_secret: SecretStr | None = Field(None, min_length=16)
    session_secret_file: Path | None = None
    session_ttl_s: float = Field(8 * 3600.0, gt=0, le=30 * 86_400)
    secure_cookies: bool = False
    # Request bodies larger than this are refused (413) before they are read or authenticated.
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)

    @model_validator(mode="after")
    def _one_secret_source(self) -> ApiSettings:
        if self.session_secret is not None and self.session_secret_file is not None:
            raise ValueError("set session_secret or session_secret_file, not both")
        return self


class MetricsSettings(_Section):
    """The metrics-only HTTP listener of ``wafsmith run`` when the API is off (``--no-api`` or
    ``[api] enabled = false``); with the API on, its ``/metrics`` carries the same numbers."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535)


class NotifySettings(_Section):
    """Who is told when proposals wait, the blast-radius guard holds, or enforcement fails.

    ``webhook_url`` (a secret: Slack's carry their token) gets Slack-compatible JSON
    (``webhook_style = "slack"``) or flat JSON (``"generic"``); ``sns_topic_arn`` gets the
    flat JSON too. Each kind of notice is sent at most once per ``min_interval_s``; those in
    between are counted in the next message.
    """

    webhook_url: SecretStr | None = None
    webhook_style: Literal["slack", "generic"] = "slack"
    sns_topic_arn: str | None = Field(None, pattern=r"^arn:aws[\w-]*:sns:")
    min_interval_s: float = Field(300.0, ge=0, le=86_400)
    timeout_s: float = Field(5.0, gt=0, le=60)
    dashboard_url: str | None = None  # links in messages, e.g. "https://wafsmith.example.com"


class LoopSettings(_Section):
    idle_sleep_s: float = Field(0.5, ge=0)
    status_interval_s: float = Field(5.0, gt=0)
    # ``wafsmith run``'s /healthz answers 503 when the engine's status is older than this.
    heartbeat_max_age_s: float = Field(300.0, gt=0)
    # Wall seconds without a new row after which every open pane is closed and evaluated, so
    # a flood in the newest object is decided without waiting for later traffic.
    idle_close_s: float = Field(20.0, gt=0)
    # Failing polls and enforcement cycles retry after base · 2^(n-1) s (jittered), at most max.
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat_outlives_the_interval(self) -> LoopSettings:
        if self.heartbeat_max_age_s <= self.status_interval_s:
            raise ValueError("heartbeat_max_age_s must be longer than status_interval_s")
        return self


class LeaseSettings(_Section):
    """The enforcer lease: engines sharing one PostgreSQL ledger elect one of them to
    reconcile the WAF (``engine.decisions.lease``). ``name`` keys the lease within the
    ledger; ``instance_id`` names this process in the status API (default: host:pid:random).
    A standby takes over within ``period_s`` of the holder's death, and ends the session of a
    holder that has not renewed for ``stale_after_s``. A SQLite ledger has one process: the
    lease is trivially held."""

    name: str = Field("enforcer", min_length=1, max_length=128)
    instance_id: str | None = Field(None, min_length=1, max_length=256)
    period_s: float = Field(5.0, gt=0)
    stale_after_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _stale_outlives_the_period(self) -> LeaseSettings:
        if self.stale_after_s <= self.period_s:
            raise ValueError("lease.stale_after_s must be longer than lease.period_s")
        return self


class Settings(BaseSettings):
    """Everything ``wafsmith run`` needs, validated before the engine starts."""

    model_config = SettingsConfigDict(
        env_prefix="WAFSMITH_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Path("var")
    database_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    aws: AwsSettings = Field(default_factory=AwsSettings)
    source: SourceSettings = Field(
        default_factory=lambda: SourceSettings(kind="local", paths=[Path(".")])
    )
    detection: dict[str, Any] = Field(default_factory=dict)
    policy: dict[str, Any] = Field(default_factory=dict)
    enforcement: EnforcementSettings = Field(default_factory=EnforcementSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    # Rule-level answers to campaigns addresses cannot stop (engine.decisions.RuleAnswerConfig)
    rule_answers: dict[str, Any] = Field(default_factory=dict)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str | None) -> str | None:
        """Only the ledger's two backends; any other scheme fails here, in one line."""
        if url is None:
            return None
        scheme = url.partition("://")[0] if "://" in url else ""
        if scheme.split("+")[0] not in SUPPORTED_DATABASES:
            raise ValueError(
                f"unsupported database URL scheme {scheme or url!r}: use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST/DB"
            )
        return url

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        """Keyword arguments, then environment, then the TOML file named in ``toml_file``."""
        sources = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        """The ledger URL: ``database_url`` or a SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'wafsmith.db').resolve()}"


def load_settings(toml_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; raise ``ConfigError`` naming each bad setting."""
    if toml_file is not None and not Path(toml_file).is_file():
        raise ConfigError(f"config file {toml_file} does not exist")

    config = {**Settings.model_config, "toml_file": toml_file}
    from_file = type("FileSettings", (Settings,), {"model_config": config})
    try:
        loaded = from_file(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    return Settings.model_validate(loaded.model_dump())
