"""Setting a poison object aside: a copy of its bytes, and beside it why it was set aside.

An object the parsers could not read to its end (``ParseResult.poison``) is acknowledged like
any other — the engine must not read it again on every restart — but it is kept for an
operator: a local file is copied to the quarantine folder (the original is left where it
is), an S3 object is copied server-side under the quarantine prefix of its own bucket. Each
copy gets a ``<key>.reason.json`` beside it. The S3 sources skip keys under the quarantine
prefix, so a copy never comes back as a new object.

For an SQS source the object is quarantined here rather than left for the dead-letter queue:
a message left in the queue would be received (and the object parsed, and its first rows
counted again in the sliding windows) up to ``maxReceiveCount`` times, and the queue would
keep only the message, not the reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.sources.objects import SourceError, SourceObject

DEFAULT_PREFIX = "wafsmith-quarantine/"
REASON_SUFFIX = ".reason.json"


def is_quarantined(key: str, prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether an S3 key is a quarantine copy (or its reason)."""
    return bool(prefix) and key.startswith(prefix)


class Quarantine:
    """Where poison objects go: ``directory`` for local files, ``prefix`` in S3."""

    def __init__(self, directory: Path, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix or prefix.startswith("/"):
            raise ValueError("the quarantine prefix must be a non-empty relative S3 prefix")
        self.directory = Path(directory)
        self.prefix = prefix
        self.count = 0

    def put(self, obj: SourceObject, note: dict[str, Any]) -> str:
        """Copy ``obj`` aside with ``note`` (its reason, error, counts); where it went.

        Raises :class:`SourceError` when the copy cannot be made (e.g. no ``s3:PutObject`` on
        the quarantine prefix); the original stays where it is.
        """
        reason = json.dumps({"uri": obj.uri, **note}, indent=2, sort_keys=True, default=str)
        where = self._put_s3(obj, reason) if obj.is_s3 else self._put_local(obj, reason)
        self.count += 1
        return where

    def _put_local(self, obj: SourceObject, reason: str) -> str:
        target = self.directory / _relative(obj.key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(obj.uri, target)
            target.with_name(target.name + REASON_SUFFIX).write_text(reason, encoding="utf-8")
        except OSError as exc:
            raise SourceError(f"cannot quarantine {obj.uri} in {self.directory}: {exc}") from exc
        return str(target)

    def _put_s3(self, obj: SourceObject, reason: str) -> str:
        key = self.prefix + obj.key
        source: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        try:
            obj.s3_client.copy_object(Bucket=obj.bucket, Key=key, CopySource=source)
            obj.s3_client.put_object(
                Bucket=obj.bucket,
                Key=key + REASON_SUFFIX,
                Body=reason.encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            raise SourceError(f"cannot quarantine {obj.uri} under {self.prefix}: {exc}") from exc
        return f"s3://{obj.bucket}/{key}"


def _relative(key: str) -> Path:
    """A key as a path that stays inside the quarantine folder (no ``..``, no root)."""
    parts = [p for p in Path(key).parts if p not in ("", ".", "..", "/")]
    return Path(*parts) if parts else Path("object")
