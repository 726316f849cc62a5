"""Sources: where log objects come from (local files, S3 listing, S3 notifications via SQS).

``iter_objects(uri)`` is the one-shot reader every command can use. The continuous sources
(:class:`LocalSource`, :class:`S3ListSource`, :class:`S3SqsSource`) hand out
:class:`Delivery` objects that are acknowledged with a :class:`ProcessedRecord` only after the
object's result is committed; the :class:`ProcessedStore` makes re-delivery a no-op.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it: imported on first use (PEP 562), so that
# reading a local file does not load boto3, SQLAlchemy or pydantic.
_HOME = {
    "SOURCE_CONFIGS": "config",
    "LocalSourceConfig": "config",
    "ProcessedStoreConfig": "config",
    "S3ListSourceConfig": "config",
    "S3SqsSourceConfig": "config",
    "Delivery": "delivery",
    "LocalSource": "delivery",
    "Source": "delivery",
    "KeepAlive": "keepalive",
    "BodyKind": "notifications",
    "DecodedBody": "notifications",
    "ObjectEvent": "notifications",
    "decode_body": "notifications",
    "ObjectGoneError": "objects",
    "SourceError": "objects",
    "SourceObject": "objects",
    "iter_local": "objects",
    "iter_objects": "objects",
    "list_s3": "objects",
    "make_client": "objects",
    "parse_s3_uri": "objects",
    "ProcessedRecord": "processed",
    "ProcessedStore": "processed",
    "Quarantine": "quarantine",
    "is_quarantined": "quarantine",
    "S3ListSource": "s3_list",
    "S3SqsSource": "s3_sqs",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and readers
    from engine.sources.config import (
        SOURCE_CONFIGS,
        LocalSourceConfig,
        ProcessedStoreConfig,
        S3ListSourceConfig,
        S3SqsSourceConfig,
    )
    from engine.sources.delivery import Delivery, LocalSource, Source
    from engine.sources.keepalive import KeepAlive
    from engine.sources.notifications import BodyKind, DecodedBody, ObjectEvent, decode_body
    from engine.sources.objects import (
        ObjectGoneError,
        SourceError,
        SourceObject,
        iter_local,
        iter_objects,
        list_s3,
        make_client,
        parse_s3_uri,
    )
    from engine.sources.processed import ProcessedRecord, ProcessedStore
    from engine.sources.quarantine import Quarantine, is_quarantined
    from engine.sources.s3_list import S3ListSource
    from engine.sources.s3_sqs import S3SqsSource


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "SOURCE_CONFIGS",
    "BodyKind",
    "DecodedBody",
    "Delivery",
    "KeepAlive",
    "LocalSource",
    "LocalSourceConfig",
    "ObjectEvent",
    "ObjectGoneError",
    "ProcessedRecord",
    "ProcessedStore",
    "ProcessedStoreConfig",
    "Quarantine",
    "S3ListSource",
    "S3ListSourceConfig",
    "S3SqsSource",
    "S3SqsSourceConfig",
    "Source",
    "SourceError",
    "SourceObject",
    "decode_body",
    "is_quarantined",
    "iter_local",
    "iter_objects",
    "list_s3",
    "make_client",
    "parse_s3_uri",
]
