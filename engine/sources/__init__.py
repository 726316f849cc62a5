"""Sources: where log objects come from (local files, S3 listing, S3 notifications via SQS).

``iter_objects(uri)`` is the one-shot reader every command can use; the continuous S3 sources
hand out :class:`Delivery` objects that are acknowledged only after their object is committed.
"""

from engine.sources.objects import (
    SourceError,
    SourceObject,
    iter_local,
    iter_objects,
    list_s3,
    make_client,
    parse_s3_uri,
)

__all__ = [
    "SourceError",
    "SourceObject",
    "iter_local",
    "iter_objects",
    "list_s3",
    "make_client",
    "parse_s3_uri",
]
