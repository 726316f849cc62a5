"""Sources: where log objects come from (local files, S3 listing, S3 notifications via SQS).

``iter_objects(uri)`` is the one-shot reader every command can use. The continuous sources
(:class:`LocalSource`, :class:`S3ListSource`, :class:`S3SqsSource`) hand out
:class:`Delivery` objects that are acknowledged with a :class:`ProcessedRecord` only after the
object's result is committed; the :class:`ProcessedStore` makes re-delivery a no-op.
"""

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
