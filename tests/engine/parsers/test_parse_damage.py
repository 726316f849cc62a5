"""Bad input never raises: it is counted by reason, sampled, and the rest is still read."""

from __future__ import annotations

import gzip
import io

import pyarrow.compute as pc
import pytest

from engine.parsers import parse_object, stream
from engine.schema.request import CLIENT_IP, PATH, REQUEST_SCHEMA, USER_AGENT


def alb_line(i: int, agent: str = "curl/8.5.0") -> str:
    return (
        f"https 2026-11-30T08:00:{i % 60:02d}.000000Z app/shop/1 192.0.2.{i % 250 + 1}:{1024 + i} "
        f'10.0.0.1:80 0.001 0.002 0.003 200 200 10 20 "GET https://shop.example.com:443/p/{i} '
        f'HTTP/1.1" "{agent}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-{i:08x}-x" "-" "-" 0 '
        f'2026-11-30T08:00:00.000000Z "forward" "-" "-" "-" "-" "-" "-"'
    )


def alb_text(n: int, start: int = 0) -> bytes:
    return ("\n".join(alb_line(i) for i in range(start, start + n)) + "\n").encode()


def paths(result) -> set[str]:
    return set(result.table.column(PATH).to_pylist())


def test_plain_and_gzip_and_stream_give_the_same_rows() -> None:
    text = alb_text(50)
    plain = parse_object(text)
    zipped = parse_object(gzip.compress(text))
    streamed = parse_object(io.BytesIO(gzip.compress(text)))
    assert plain.rows == zipped.rows == streamed.rows == 50
    assert plain.table.equals(zipped.table) and plain.table.equals(streamed.table)
    assert plain.bytes_read == zipped.bytes_read == len(text)


def test_multi_member_gzip_is_read_member_after_member() -> None:
    data = gzip.compress(alb_text(30)) + gzip.compress(alb_text(20, start=30))
    result = parse_object(data)
    assert result.rows == 50 and result.malformed == {}


def test_truncated_gzip_keeps_what_was_inflated_and_counts_it() -> None:
    text = alb_text(3000)
    data = gzip.compress(text)
    result = parse_object(data[: len(data) * 2 // 3])
    assert result.malformed.get("truncated_gzip") == 1
    assert 1000 < result.rows < 3000
    assert result.table.schema == REQUEST_SCHEMA


def test_corrupt_gzip_is_counted_not_raised() -> None:
    data = bytearray(gzip.compress(alb_text(3000)))
    for i in range(200, 260):
        data[i] ^= 0xFF
    result = parse_object(bytes(data))
    assert {"corrupt_gzip", "truncated_gzip"} & set(result.malformed)
    assert result.table.schema == REQUEST_SCHEMA


def test_trailing_garbage_after_the_last_member_is_counted() -> None:
    result = parse_object(gzip.compress(alb_text(10)) + b"this is not gzip")
    assert result.rows == 10
    assert result.malformed == {"trailing_garbage": 1}


@pytest.mark.parametrize("data", [b"", gzip.compress(b""), b"\n\n  \n"])
def test_empty_objects(data: bytes) -> None:
    result = parse_object(data)
    assert (result.rows, result.format, result.malformed) == (0, "unknown", {"empty_object": 1})
    assert result.table.schema == REQUEST_SCHEMA


def test_a_one_megabyte_line_is_counted_and_the_rest_read() -> None:
    huge = alb_line(5, agent="A" * (1 << 20))
    text = alb_text(5) + huge.encode() + b"\n" + alb_text(5, start=6)
    result = parse_object(text)
    assert result.rows == 10
    assert result.malformed == {"line_too_long": 1}
    assert result.bad_samples[0].line_no == 6
    assert len(result.bad_samples[0].text) == 500


def test_a_one_megabyte_line_without_fields_is_counted() -> None:
    text = alb_text(3) + b"x" * (1 << 20) + b"\n" + alb_text(3, start=3)
    result = parse_object(text, fmt="alb")
    assert result.rows == 6
    assert sum(result.malformed.values()) == 1


def test_bytes_that_are_not_utf8_are_replaced_and_the_line_kept() -> None:
    text = alb_text(4) + alb_line(4, agent="caf\xe9").encode("latin-1") + b"\n" + alb_text(4, 5)
    result = parse_object(text)
    assert result.rows == 9
    assert result.malformed == {} and result.repaired == {"invalid_utf8": 1}
    assert "caf\ufffd" in result.table.column(USER_AGENT).to_pylist()
    assert {"/p/4", "/p/5"} <= paths(result)


def test_an_unbalanced_quote_is_closed_and_does_not_swallow_the_next_lines() -> None:
    broken = alb_line(2).replace('"curl/8.5.0"', '"curl/8.5.0')
    text = alb_text(2) + broken.encode() + b"\n" + alb_text(5, start=3)
    result = parse_object(text)
    assert result.rows == 8
    assert result.malformed == {} and result.repaired == {"unbalanced_quote": 1}
    assert paths(result) == {f"/p/{i}" for i in range(8)}


def test_a_quote_inside_a_quoted_field_keeps_the_line_and_its_fields() -> None:
    sneaky = alb_line(2, agent='Mozilla "evil').encode()
    result = parse_object(alb_text(2) + sneaky + b"\n" + alb_text(2, start=3))
    assert result.rows == 5 and result.malformed == {}
    row = result.table.filter(pc.equal(result.table.column(PATH), "/p/2")).to_pylist()[0]
    assert "evil" in row[USER_AGENT] and row["tls_protocol"] == "TLSv1.2"


def test_a_file_of_another_format_is_counted_line_by_line() -> None:
    waf = b'{"timestamp": 1, "action": "ALLOW", "httpRequest": {"clientIp": "192.0.2.1"}}\n' * 7
    result = parse_object(waf, fmt="alb")
    assert result.rows == 0
    assert sum(result.malformed.values()) == 7
    unknown = parse_object(b"hello world\nthis is prose\n")
    assert unknown.format == "unknown" and unknown.malformed == {"unknown_format": 2}


def test_bad_samples_are_bounded_but_counts_are_complete() -> None:
    text = b"".join(alb_line(i).replace("192.0.2.", "X.X.X.").encode() + b"\n" for i in range(50))
    result = parse_object(text, max_bad_samples=5)
    assert result.malformed == {"invalid_client_ip": 50}
    assert [s.line_no for s in result.bad_samples] == [1, 2, 3, 4, 5]


def test_line_numbers_stay_exact_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "BLOCK_BYTES", 4096)
    lines = [alb_line(i) for i in range(200)]
    lines[7] = lines[7].replace("192.0.2.", "X.X.X.")
    lines[150] = lines[150].replace("192.0.2.", "X.X.X.")
    lines[151] = lines[151].replace('"curl/8.5.0"', '"curl/8.5.0')
    lines[180] = lines[180].replace(" 200 200 ", " 2O0 200 ")
    result = parse_object(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert result.rows == 197 and result.repaired == {"unbalanced_quote": 1}
    found = sorted((s.line_no, s.reason) for s in result.bad_samples)
    assert found == [
        (8, "invalid_client_ip"),
        (151, "invalid_client_ip"),
        (181, "invalid_value"),
    ]
    assert result.table.column(CLIENT_IP).null_count == 0


def test_prefetch_passes_errors_through_and_stops_when_abandoned() -> None:
    def numbers():
        yield from range(3)
        raise ValueError("source broke")

    got = []
    with pytest.raises(ValueError, match="source broke"):
        for item in stream.prefetch(numbers()):
            got.append(item)
    assert got == [0, 1, 2]

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    items = stream.prefetch(endless(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # the producer thread must stop, not run forever
    assert len(produced) <= 5 + 4


def test_damage_deep_in_a_large_block_costs_only_its_line() -> None:
    lines = [alb_line(i) for i in range(3000)]
    lines[1733] = lines[1733].replace('"curl/8.5.0"', '"curl/8.5.0')
    lines[2900] = lines[2900].replace("192.0.2.", "X.X.X.")
    result = parse_object(("\n".join(lines) + "\n").encode())
    assert result.rows == 2999 and result.repaired == {"unbalanced_quote": 1}
    assert sorted((s.line_no, s.reason) for s in result.bad_samples) == [
        (2901, "invalid_client_ip"),
    ]
    assert f"/p/{1734}" in paths(result) and f"/p/{1733}" in paths(result)


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        (
            "waf",
            b'{"timestamp":1764489600000,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.9",'
            b'"uri":"/p/\xff","headers":[{"name":"User-Agent","value":"caf\xe9"}]}}',
        ),
        (
            "cloudfront",
            b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.9\tGET\td.net\t/p/\xff\t200\t-\tcaf\xe9",
        ),
    ],
)
def test_one_bad_byte_does_not_hide_a_request_from_waf_or_cloudfront(fmt: str, line: bytes) -> None:
    result = parse_object(line + b"\n", fmt=fmt)
    assert result.rows == 1 and result.malformed == {}
    assert result.repaired == {"invalid_utf8": 1}
    assert result.table.column(CLIENT_IP).to_pylist() == ["192.0.2.9"]
    assert result.table.column(PATH).to_pylist() == ["/p/\ufffd"]
    assert result.table.column(USER_AGENT).to_pylist() == ["caf\ufffd"]
