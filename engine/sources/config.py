"""Source configuration: pydantic models (unknown keys refused) whose ``build()`` makes the source.

>>> store = ProcessedStoreConfig(url="sqlite:///var/ingest.db").build()
>>> source = S3SqsSourceConfig(queue_url=url, endpoint_url=moto).build(clock=clock, store=store)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.sources.delivery import LocalSource
from engine.sources.objects import make_client
from engine.sources.processed import ProcessedStore
from engine.sources.quarantine import DEFAULT_PREFIX
from engine.sources.s3_list import S3ListSource
from engine.sources.s3_sqs import S3SqsSource

DEFAULT_STORE_URL = "sqlite:///wafsmith-ingest.db"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessedStoreConfig(_Config):
    """Where processed objects and checkpoints are recorded."""

    url: str = Field(
        DEFAULT_STORE_URL,
        description="SQLAlchemy URL: sqlite:///path.db (WAL) or postgresql+psycopg://…",
    )
    table_prefix: str = Field("ingest_", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    def build(self, *, clock: Clock = SYSTEM_CLOCK) -> ProcessedStore:
        return ProcessedStore(self.url, table_prefix=self.table_prefix, clock=clock)


class _AwsConfig(_Config):
    endpoint_url: str | None = Field(None, description="unset for AWS; the moto URL in tests")
    region: str | None = Field(None, description="AWS Region of the bucket / queue")
    store: ProcessedStoreConfig = Field(default_factory=ProcessedStoreConfig)
    quarantine_prefix: str = Field(
        DEFAULT_PREFIX,
        pattern=r"^[^/].*/$",
        description="keys under it are the engine's quarantine copies: never read as logs",
    )

    def _client(self, service: str) -> Any:
        return make_client(service, endpoint_url=self.endpoint_url, region=self.region)

    def _store(self, store: ProcessedStore | None, clock: Clock) -> ProcessedStore:
        return store if store is not None else self.store.build(clock=clock)


class LocalSourceConfig(_Config):
    """Local files and directories (recursive), each file once, in key order."""

    paths: list[str] = Field(min_length=1)
    store: ProcessedStoreConfig | None = Field(
        None, description="record processed files so a re-run skips them"
    )

    def build(
        self, *, clock: Clock = SYSTEM_CLOCK, store: ProcessedStore | None = None
    ) -> LocalSource:
        if store is None and self.store is not None:
            store = self.store.build(clock=clock)
        return LocalSource(self.paths, store=store)


class S3ListSourceConfig(_AwsConfig):
    """Poll a bucket prefix by listing; tolerant of objects ``lookback_s`` late."""

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = ""
    lookback_s: float = Field(25 * 3600, ge=0, description="seconds; above the longest delay")
    checkpoint_interval_s: float = Field(60.0, gt=0, description="seconds between snapshots")
    start_after: str | None = Field(None, description="on first run, ignore keys up to this")
    list_page_size: int = Field(1000, ge=1, le=1000, description="keys per ListObjectsV2 page")

    def build(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: ProcessedStore | None = None,
        s3_client: Any = None,
    ) -> S3ListSource:
        return S3ListSource(
            bucket=self.bucket,
            prefix=self.prefix,
            store=self._store(store, clock),
            s3_client=s3_client or self._client("s3"),
            clock=clock,
            lookback_s=self.lookback_s,
            checkpoint_interval_s=self.checkpoint_interval_s,
            start_after=self.start_after,
            page_size=self.list_page_size,
            quarantine_prefix=self.quarantine_prefix,
        )


class S3SqsSourceConfig(_AwsConfig):
    """S3 object-created notifications read from an SQS queue."""

    queue_url: str = Field(min_length=1)
    wait_time_s: int = Field(20, ge=0, le=20, description="long-poll seconds per receive")
    visibility_timeout_s: int = Field(300, ge=0, le=43_200, description="seconds per claim")
    max_messages: int = Field(10, ge=1, le=10, description="messages per receive")
    heartbeat_fraction: float = Field(
        0.5, gt=0, le=1, description="extend once this fraction of the timeout has passed"
    )
    unparseable_sample_size: int = Field(20, ge=0, le=1000)

    def build(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: ProcessedStore | None = None,
        sqs_client: Any = None,
        s3_client: Any = None,
    ) -> S3SqsSource:
        return S3SqsSource(
            queue_url=self.queue_url,
            store=self._store(store, clock),
            sqs_client=sqs_client or self._client("sqs"),
            s3_client=s3_client or self._client("s3"),
            clock=clock,
            wait_time_s=self.wait_time_s,
            visibility_timeout_s=self.visibility_timeout_s,
            max_messages=self.max_messages,
            heartbeat_fraction=self.heartbeat_fraction,
            sample_size=self.unparseable_sample_size,
            quarantine_prefix=self.quarantine_prefix,
        )


SOURCE_CONFIGS: dict[str, type[_Config]] = {
    "local": LocalSourceConfig,
    "s3_list": S3ListSourceConfig,
    "sqs": S3SqsSourceConfig,
}
"""Config model for each source kind (the names ``engine.settings`` uses)."""
