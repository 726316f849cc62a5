"""Per-row signals of one request batch, computed on dictionary-unique values.

Each string column is dictionary-encoded once; pattern matches and hashes run over its
unique values and reach the rows through the dictionary indices (a numpy take), so the cost
scales with distinct paths and user agents, not with requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.features import behaviour
from engine.features.config import FeatureConfig
from engine.features.hashing import hash32, hash64
from engine.features.patterns import Patterns
from engine.schema import request as R

# Per-pane counters, in column order of ``PanePartial.counts``.
COUNTERS = (
    "req",
    "has_status",
    "s3xx",
    "s4xx",
    "s404",
    "s5xx",
    "auth_fail",
    "get",
    "head",
    "post",
    "other_method",
    "asset",
    "robots",
    "login_post",
    "login_fail",
    "referer_known",
    "no_referer",
    "sensitive",
    "injection",
    "tool_ua",
    "crawler_ua",
    "crawler_verified",
    "declared_bot",
    "robots_disallowed",
    "health",
    "waf_acted",
    "depth_sum",
    "depth_sq",
    "browser_ua",
    "login_path",
    "has_query",
    *behaviour.COUNTERS,
)
C = {name: i for i, name in enumerate(COUNTERS)}
# Distinct-value families (bottom-k sets per client and pane).
DISTINCT = ("path", "ua", "probe", "sensitive_path", "fingerprint", *behaviour.DISTINCT)
_WAF_ACTED = pa.array(["BLOCK", "CAPTCHA", "CHALLENGE"])
_BROWSER_RE = r"^mozilla/5\.0 \((windows|macintosh|x11|linux|iphone|ipad)"


@dataclass
class RowSignals:
    """Everything ``from_batch`` needs per row, as numpy arrays aligned with the batch."""

    ts_ms: np.ndarray  # int64 event time
    client_idx: np.ndarray  # int32 index into ``clients``
    clients: pa.Array  # unique client keys
    counters: np.ndarray  # (rows, len(COUNTERS)) uint32
    bucket: np.ndarray  # path-template bucket for the entropy histogram
    hashes: dict[str, tuple[np.ndarray, np.ndarray]]  # family -> (row mask, uint32 hash)
    priority: np.ndarray  # evidence priority of each row (higher = more telling)


def _enc(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    enc = pc.dictionary_encode(col, null_encoding="encode")  # nulls: one dictionary entry
    return pc.fill_null(enc.dictionary, ""), enc.indices.to_numpy(zero_copy_only=False)


def row_signals(
    table: pa.Table, clients: pa.Array, cfg: FeatureConfig, pats: Patterns
) -> RowSignals:
    n = table.num_rows
    cnt = np.zeros((n, len(COUNTERS)), dtype=np.uint32)
    ts = table.column(R.EVENT_TIME).cast(pa.int64()).to_numpy()
    cenc = pc.dictionary_encode(clients)
    cuniq, cidx = cenc.dictionary, cenc.indices.to_numpy(zero_copy_only=False)
    cnt[:, C["req"]] = 1

    status = pc.fill_null(table.column(R.STATUS), -1).to_numpy().astype(np.int32)
    has = status >= 0
    cnt[:, C["has_status"]] = has
    cnt[:, C["s3xx"]] = (status >= 300) & (status < 400)
    cnt[:, C["s4xx"]] = (status >= 400) & (status < 500)
    cnt[:, C["s404"]] = status == 404
    cnt[:, C["s5xx"]] = status >= 500
    cnt[:, C["auth_fail"]] = (status == 401) | (status == 403)

    muniq, midx = _enc(table.column(R.METHOD))
    mup = pc.utf8_upper(muniq)
    is_get = _u(pc.equal(mup, "GET"))[midx]
    is_head = _u(pc.equal(mup, "HEAD"))[midx]
    is_post = _u(pc.equal(mup, "POST"))[midx]
    cnt[:, C["get"]], cnt[:, C["head"]], cnt[:, C["post"]] = is_get, is_head, is_post
    cnt[:, C["other_method"]] = ~(is_get | is_head | is_post)

    puniq, pidx = _enc(table.column(R.PATH))
    plow = pc.utf8_lower(puniq)
    is_asset = pats.asset(plow)[pidx]
    cnt[:, C["asset"]] = is_asset
    cnt[:, C["robots"]] = _u(pc.equal(plow, "/robots.txt"))[pidx]
    if pats.robots_disallow:
        cnt[:, C["robots_disallowed"]] = pats.disallowed(plow)[pidx]
    norm = pc.replace_substring_regex(plow, r"(.)/+$", r"\1")
    is_login_path = _u(pc.is_in(norm, value_set=pats.login_paths))[pidx]
    login_post = is_login_path & is_post
    cnt[:, C["login_path"]] = is_login_path
    cnt[:, C["login_post"]] = login_post
    fail_codes = np.isin(status, np.asarray(cfg.login_fail_statuses, dtype=np.int32))
    cnt[:, C["login_fail"]] = login_post & fail_codes
    cnt[:, C["health"]] = _u(pc.is_in(plow, value_set=pats.health_paths))[pidx]
    sens_u = pats.sensitive(plow)
    is_sens = sens_u[pidx]
    cnt[:, C["sensitive"]] = is_sens
    depth = pc.count_substring(plow, "/").to_numpy().astype(np.uint32)[pidx]
    cnt[:, C["depth_sum"]] = depth
    cnt[:, C["depth_sq"]] = depth * depth

    quniq, qidx = _enc(table.column(R.QUERY))
    cnt[:, C["has_query"]] = _u(pc.not_equal(quniq, ""))[qidx]
    inj = pats.injection(plow)[pidx] | pats.injection(pc.utf8_lower(quniq))[qidx]
    cnt[:, C["injection"]] = inj

    rcol = table.column(R.REFERER)
    if isinstance(rcol, pa.ChunkedArray):
        rcol = rcol.combine_chunks()
    renc = pc.dictionary_encode(rcol, null_encoding="encode")
    ridx = renc.indices.to_numpy(zero_copy_only=False)
    ref_known = _u(pc.is_valid(renc.dictionary))[ridx]  # ALB logs carry no referer at all
    no_ref = _u(pc.is_in(renc.dictionary, value_set=pa.array(["", "-"])))[ridx]
    cnt[:, C["referer_known"]] = ref_known
    cnt[:, C["no_referer"]] = ref_known & no_ref

    uuniq, uidx = _enc(table.column(R.USER_AGENT))
    ulow = pc.utf8_lower(uuniq)
    cnt[:, C["tool_ua"]] = pats.tool(ulow)[uidx]
    cnt[:, C["browser_ua"]] = _u(pc.match_substring_regex(ulow, _BROWSER_RE))[uidx]
    health_ua = pats.health_agent(ulow)[uidx]
    cnt[:, C["health"]] |= health_ua
    cnt[:, C["declared_bot"]] = pats.declared_bot(ulow)[uidx]
    crawler = pats.crawler_agent(ulow)[uidx]
    declared = crawler >= 0
    cnt[:, C["crawler_ua"]] = declared
    if declared.any():
        nets = pats.crawler_network(cuniq)
        verified = np.zeros(n, dtype=bool)
        verified[declared] = nets[cidx[declared], crawler[declared]]
        cnt[:, C["crawler_verified"]] = verified

    wuniq, widx = _enc(table.column(R.WAF_ACTION))
    wup = pc.utf8_upper(wuniq)
    acted = _u(pc.is_in(wup, value_set=_WAF_ACTED))[widx]
    alb_waf = _u(pc.equal(wup, "WAF"))[widx] & (status == 403)
    cnt[:, C["waf_acted"]] = acted | alb_waf

    template = pc.replace_substring_regex(plow, r"/[0-9a-f]{8}-[0-9a-f-]{27,}", "/{uuid}")
    template = pc.replace_substring_regex(template, r"/[0-9]+", "/{n}")
    bucket = (hash64(template) % np.uint64(cfg.entropy_buckets)).astype(np.int32)[pidx]

    path_h = hash32(norm)[pidx]
    ua_h = hash32(uuniq)[uidx]
    fingerprint = _fingerprints(table, uuniq, uidx)
    probe = (~is_asset) & ((status == 400) | (status == 403) | (status == 404))
    hashes = {
        "path": (np.ones(n, dtype=bool), path_h),
        "ua": (np.ones(n, dtype=bool), ua_h),
        "probe": (probe, path_h),
        "sensitive_path": (is_sens, path_h),
        "fingerprint": (np.ones(n, dtype=bool), fingerprint),
    }
    b_counts, b_hashes = behaviour.signals(
        table, ts, cidx, plow, pidx, login_post, status.astype(np.int64), path_h
    )
    for name, values in b_counts.items():
        cnt[:, C[name]] = values
    hashes.update(b_hashes)
    priority = (
        8 * cnt[:, C["tool_ua"]]
        + 8 * inj
        + 6 * is_sens
        + 4 * cnt[:, C["login_fail"]]
        + 2 * probe
        + cnt[:, C["s4xx"]]
    ).astype(np.int16)
    return RowSignals(ts, cidx.astype(np.int32), cuniq, cnt, bucket, hashes, priority)


def _fingerprints(table: pa.Table, uuniq: pa.Array, uidx: np.ndarray) -> np.ndarray:
    """JA4 where the log has it, else the user-agent family (digit runs folded)."""
    family = pc.replace_substring_regex(pc.utf8_lower(uuniq), r"[0-9]+", "0")
    fp = hash32(family)[uidx]
    ja4 = table.column(R.JA4)
    if ja4.null_count < len(ja4):
        juniq, jidx = _enc(ja4)
        has = _u(pc.not_equal(juniq, ""))[jidx]
        fp = np.where(has, hash32(juniq)[jidx], fp)
    return fp


def _u(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
