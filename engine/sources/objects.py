"""Where bytes come from: one object (local file or S3 object) and one-shot iteration over many.

``iter_objects("logs/")``, ``iter_objects("access.log.gz")`` and
``iter_objects("s3://bucket/prefix", endpoint_url=...)`` all yield :class:`SourceObject` in key
order. The continuous S3 sources (listing with a checkpoint, SQS notifications) live in
``s3_list`` and ``s3_sqs``; this module is the part every reader shares.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from engine.core.errors import WafsmithError

S3_SCHEME = "s3://"


class SourceError(WafsmithError):
    """A source cannot be read: missing path, bad URI, or an S3 / SQS call that failed."""


class ObjectGoneError(SourceError):
    """The announced object no longer exists in the announced version (deleted or overwritten).

    Retrying cannot succeed; the pipeline may acknowledge it with an empty record (the newer
    version, if any, is announced on its own).
    """


_GONE_CODES = {"NoSuchKey", "PreconditionFailed", "412", "404"}


def make_client(service: str, *, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 client; ``endpoint_url`` points it at moto (or any S3/SQS-compatible server)."""
    import boto3  # imported here: reading local files never needs boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"})
    session = boto3.session.Session()
    return session.client(service, endpoint_url=endpoint_url, region_name=region, config=config)


def _client_error() -> type[Exception]:
    """botocore's ``ClientError``, imported only once an S3 call has failed."""
    from botocore.exceptions import ClientError

    return ClientError


def normalize_etag(etag: str | None) -> str | None:
    """S3 listings quote ETags (``"abc"``), notifications do not: keep one form, unquoted."""
    if etag is None:
        return None
    return etag.strip().strip('"') or None


@dataclass(frozen=True)
class SourceObject:
    """One input object: a local file (``bucket is None``) or an S3 object.

    ``key`` is the S3 key, or for local files the path relative to the directory that was
    given (the file name when a single file was given), so that key-layout detection sees the
    same shape either way. ``uri`` is the full location (``s3://bucket/key`` or the path).
    """

    uri: str  # s3://bucket/key, or the absolute path of a local file
    bucket: str | None
    key: str
    etag: str | None = None
    size: int | None = None
    last_modified: datetime | None = None
    s3_client: Any = field(default=None, compare=False, repr=False)

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    def open(self) -> BinaryIO:
        """A binary stream of the object's bytes; the caller closes it.

        For S3 the read is pinned to the ETag this object was announced with (``IfMatch``),
        so what is recorded as processed is exactly what was read.
        """
        if self.bucket is None:
            try:
                return open(self.uri, "rb")  # the caller owns the stream
            except OSError as exc:
                raise SourceError(f"cannot open {self.uri}: {exc}") from exc
        if self.s3_client is None:
            raise SourceError(f"no S3 client bound to {self.uri}")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if self.etag:
            kwargs["IfMatch"] = f'"{self.etag}"'
        try:
            return self.s3_client.get_object(**kwargs)["Body"]
        except _client_error() as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _GONE_CODES:
                raise ObjectGoneError(f"{self.uri} is gone or changed: {exc}") from exc
            raise SourceError(f"cannot read {self.uri}: {exc}") from exc

    def read(self) -> bytes:
        """All of the object's bytes."""
        with self.open() as stream:
            return stream.read()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → ``(bucket, prefix)``; the prefix may be empty."""
    if not uri.startswith(S3_SCHEME):
        raise SourceError(f"not an s3:// URI: {uri!r}")
    parts = urlsplit(uri)
    if not parts.netloc:
        raise SourceError(f"S3 URI without a bucket: {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def s3_object_from_listing(bucket: str, entry: dict[str, Any], s3_client: Any) -> SourceObject:
    """A :class:`SourceObject` from one ``ListObjectsV2`` ``Contents`` entry."""
    key = entry["Key"]
    return SourceObject(
        uri=f"{S3_SCHEME}{bucket}/{key}",
        bucket=bucket,
        key=key,
        etag=normalize_etag(entry.get("ETag")),
        size=entry.get("Size"),
        last_modified=_utc(entry.get("LastModified")),
        s3_client=s3_client,
    )


def list_s3(
    s3_client: Any, bucket: str, prefix: str = "", *, start_after: str | None = None
) -> Iterator[SourceObject]:
    """Every object under ``prefix`` in key order (S3 lists keys in UTF-8 binary order)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    try:
        for page in s3_client.get_paginator("list_objects_v2").paginate(**kwargs):
            for entry in page.get("Contents", []):
                yield s3_object_from_listing(bucket, entry, s3_client)
    except _client_error() as exc:
        raise SourceError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc


def _local_object(path: Path, key: str) -> SourceObject:
    stat = path.stat()
    return SourceObject(
        uri=str(path.absolute()),
        bucket=None,
        key=key,
        size=stat.st_size,
        last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
    )


def iter_local(path: str | os.PathLike[str]) -> Iterator[SourceObject]:
    """A file, or every regular file under a directory (recursive), in key order.

    Hidden files and directories (name starting with ``.``) are skipped.
    """
    root = Path(path)
    if root.is_file():
        yield _local_object(root, root.name)
        return
    if not root.is_dir():
        raise SourceError(f"no such file or directory: {root}")
    found = [
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    keyed = sorted((p.relative_to(root).as_posix(), p) for p in found)
    for key, p in keyed:
        yield _local_object(p, key)


def iter_objects(
    uri: str, *, endpoint_url: str | None = None, s3_client: Any = None
) -> Iterator[SourceObject]:
    """One-shot iteration over a local file, a local directory or ``s3://bucket/prefix``.

    Objects come in key order. For S3, ``s3_client`` is used when given, otherwise a client
    is created (with ``endpoint_url`` when given).
    """
    if uri.startswith(S3_SCHEME):
        bucket, prefix = parse_s3_uri(uri)
        client = s3_client or make_client("s3", endpoint_url=endpoint_url)
        yield from list_s3(client, bucket, prefix)
    else:
        yield from iter_local(uri)
