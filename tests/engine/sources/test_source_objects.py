"""One-shot iteration: local files and directories, and s3:// prefixes on moto, in key order."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest

from engine.sources import ObjectGoneError, SourceError, SourceObject, iter_objects, parse_s3_uri


def test_local_directory_is_recursive_in_key_order_and_skips_hidden(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "b" / "c" / "z.log").write_bytes(b"z")
    (tmp_path / "a.log.gz").write_bytes(b"aa")
    (tmp_path / "b" / "1.log").write_bytes(b"1")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.log").write_bytes(b"x")

    objs = list(iter_objects(str(tmp_path)))

    assert [o.key for o in objs] == ["a.log.gz", "b/1.log", "b/c/z.log"]
    assert [o.read() for o in objs] == [b"aa", b"1", b"z"]
    assert all(o.bucket is None and not o.is_s3 for o in objs)
    assert objs[0].size == 2
    assert objs[0].last_modified.tzinfo is UTC


def test_local_single_file_keyed_by_name(tmp_path):
    path = tmp_path / "sub" / "one.log"
    path.parent.mkdir()
    path.write_bytes(b"line\n")
    (obj,) = iter_objects(str(path))
    assert obj.key == "one.log"
    assert obj.uri == str(path.absolute())
    with obj.open() as stream:
        assert stream.read() == b"line\n"


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        list(iter_objects(str(tmp_path / "nope")))


def test_s3_prefix_lists_in_key_order_with_metadata(s3, aws_endpoint):
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="p/2.gz", Body=b"two")
    s3.put_object(Bucket="logs", Key="p/1 x.gz", Body=b"one")
    s3.put_object(Bucket="logs", Key="other/3.gz", Body=b"three")

    objs = list(iter_objects("s3://logs/p/", endpoint_url=aws_endpoint))

    assert [o.key for o in objs] == ["p/1 x.gz", "p/2.gz"]
    assert objs[0].uri == "s3://logs/p/1 x.gz"
    assert objs[0].size == 3
    assert objs[0].etag and '"' not in objs[0].etag
    assert objs[0].last_modified.tzinfo == UTC
    assert [o.read() for o in objs] == [b"one", b"two"]


def test_s3_read_is_pinned_to_the_listed_etag(s3):
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="k", Body=b"v1")
    (obj,) = iter_objects("s3://logs", s3_client=s3)
    s3.put_object(Bucket="logs", Key="k", Body=b"v2 changed")
    with pytest.raises(ObjectGoneError, match="PreconditionFailed"):
        obj.read()
    stale = dataclasses.replace(obj, etag=None)
    assert stale.read() == b"v2 changed"
    s3.delete_object(Bucket="logs", Key="k")
    with pytest.raises(ObjectGoneError, match="NoSuchKey"):
        stale.read()


def test_s3_errors_other_than_gone_are_source_errors(s3):
    obj = SourceObject(uri="s3://no-such-bucket/k", bucket="no-such-bucket", key="k", s3_client=s3)
    with pytest.raises(SourceError, match="NoSuchBucket") as caught:
        obj.read()
    assert not isinstance(caught.value, ObjectGoneError)


def test_source_object_equality_ignores_client(s3):
    a = SourceObject(uri="s3://b/k", bucket="b", key="k", etag="e", s3_client=s3)
    b = SourceObject(uri="s3://b/k", bucket="b", key="k", etag="e")
    assert a == b and hash(a) == hash(b)


def test_s3_uri_parsing():
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/AWSLogs/1/") == ("bucket", "AWSLogs/1/")
    for bad in ("bucket/key", "s3:///key", "https://bucket.s3.amazonaws.com/k"):
        with pytest.raises(SourceError):
            parse_s3_uri(bad)


def test_whole_bucket_listing(s3):
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="b", Body=b"")
    s3.put_object(Bucket="logs", Key="a/x", Body=b"")
    assert [o.key for o in iter_objects("s3://logs", s3_client=s3)] == ["a/x", "b"]
