"""The demo's traffic: the labelled simulator's stream, cut into log objects that land over time.

Each client's requests go to one of the three logs (most to the ALB, some through CloudFront,
some only in the WAF's own log), so every request is seen exactly once. The stream is cut
into one-minute slices; each slice becomes one object per log, visible ``delay_s`` after the
slice ends — the way ALB and WAF deliver every few minutes, compressed for a demo.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.demo import simulator as sim
from engine.demo.simulator import Simulation
from engine.schema.request import CLIENT_IP, EVENT_TIME

FORMAT_SHARES = (("alb", 0.8), ("cloudfront", 0.1), ("waf", 0.1))
# The demo starts its campaigns early (minutes after the start) so a newcomer sees a flood
# blocked within the first two simulated minutes and proposals waiting soon after; the
# distributed campaigns keep their times (the blast-radius guard's part of the story).
EARLY_STARTS = {
    "volumetric_flood": 0.0,
    "injection_probe": 0.5,
    "scanner_fast": 0.5,
    "scraper": 0.5,
    "attack_tool": 1.0,
    "credential_stuffing": 1.0,
}
DEMO_START_JITTER_MIN = 0.5


@dataclass(frozen=True)
class TimedObject:
    """One log object and the (simulated) epoch second at which it lands in the bucket."""

    available_at: float
    key: str
    data: bytes
    fmt: str
    rows: int


def simulate_demo(*, minutes: int, seed: int, corpora_dir: Path | None = None) -> Simulation:
    """The labelled simulation behind the demo (``small`` scale, at least 30 minutes).

    With ``corpora_dir`` (e.g. ``../shared/corpora``) scanners replay real scan traces;
    without it the demo uses the packaged profiles only, the same on every machine.
    """
    config = sim.preset(
        "small",
        minutes=max(30, minutes),
        corpora_dir=corpora_dir,
        start_jitter_min=DEMO_START_JITTER_MIN,
    )
    campaigns = [
        c.model_copy(update={"start_min": min(c.start_min, EARLY_STARTS.get(c.kind, c.start_min))})
        for c in config.campaigns
    ]
    return sim.simulate(config.model_copy(update={"campaigns": campaigns}), seed)


def format_of_clients(clients: pa.Array) -> np.ndarray:
    """Which log each client's requests appear in (stable: a hash of the address)."""
    digest = np.array(
        [
            int.from_bytes(hashlib.sha256(c.encode()).digest()[:4], "big")
            for c in clients.to_pylist()
        ],
        dtype=np.uint64,
    )
    u = digest / float(2**32)
    bounds = np.cumsum([share for _, share in FORMAT_SHARES])
    return np.searchsorted(bounds, u, side="right")


def timed_objects(
    simulation: Simulation, *, slice_s: int = 60, delay_s: float = 20.0
) -> list[TimedObject]:
    """Cut the simulation into per-slice objects of each log, ordered by arrival."""
    requests: pa.Table = simulation.requests
    clients = pc.unique(requests.column(CLIENT_IP))
    log_of_client = format_of_clients(clients)
    index = pc.index_in(requests.column(CLIENT_IP), clients).to_numpy()
    log_of_row = log_of_client[index]
    ms = pc.cast(requests.column(EVENT_TIME), pa.int64()).to_numpy()
    slice_of_row = ms // (slice_s * 1000)
    out: list[TimedObject] = []
    for s in np.unique(slice_of_row):
        for k, (fmt, _share) in enumerate(FORMAT_SHARES):
            mask = (slice_of_row == s) & (log_of_row == k)
            if not mask.any():
                continue
            part = dataclasses.replace(simulation, requests=requests.filter(pa.array(mask)))
            for obj in sim.render(part, formats=(fmt,)):
                out.append(
                    TimedObject(
                        available_at=(int(s) + 1) * slice_s + delay_s,
                        key=_unique_key(obj.key, int(s)),
                        data=obj.data,
                        fmt=fmt,
                        rows=obj.rows,
                    )
                )
    out.sort(key=lambda o: (o.available_at, o.key))
    return out


def _unique_key(key: str, slice_index: int) -> str:
    """Slices of one delivery interval would share a key: tag the file name with the slice."""
    for ext in (".log.gz", ".gz"):
        if key.endswith(ext):
            return f"{key[: -len(ext)]}-{slice_index}{ext}"
    return f"{key}-{slice_index}"
