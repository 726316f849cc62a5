"""Deterministic labelled traffic simulator for the detection benchmark.

    from engine.demo.simulator import preset, simulate, render, view
    sim = simulate(preset("small"), seed=101)   # requests + labels + campaigns
    objects = render(sim)                       # ALB / CloudFront / WAF objects at S3 keys
    write_local(objects, "/tmp/sim")            # or write_s3(objects, s3_client, bucket)

The same (config, seed) always yields byte-identical objects. Labels live in
``sim.labels`` (one row per client), never inside the canonical request schema.
"""

from engine.demo.simulator.config import (
    ATTACK_KINDS,
    BENIGN_KINDS,
    HELDOUT_SEEDS,
    TRAIN_SEEDS,
    CampaignSpec,
    SimConfig,
    preset,
)
from engine.demo.simulator.render import FORMATS, LogObject, render, view, write_local, write_s3
from engine.demo.simulator.simulate import Simulation, simulate

__all__ = [
    "ATTACK_KINDS",
    "BENIGN_KINDS",
    "FORMATS",
    "HELDOUT_SEEDS",
    "TRAIN_SEEDS",
    "CampaignSpec",
    "LogObject",
    "SimConfig",
    "Simulation",
    "preset",
    "render",
    "simulate",
    "view",
    "write_local",
    "write_s3",
]
