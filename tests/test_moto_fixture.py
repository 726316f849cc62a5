"""The moto fixture gives each test an empty account over real HTTP."""


def test_bucket_from_one_test_is_gone_in_the_next_part1(s3):
    s3.create_bucket(Bucket="fixture-isolation")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["fixture-isolation"]


def test_bucket_from_one_test_is_gone_in_the_next_part2(s3):
    assert s3.list_buckets()["Buckets"] == []


def test_endpoint_is_loopback(aws_endpoint):
    assert aws_endpoint.startswith("http://127.0.0.1:")
