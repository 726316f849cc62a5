"""One SparkSession for every Spark test of the session: a JVM and its Python workers take
tens of seconds to start on a loaded machine, a job on a warm session a few seconds.

``local[2]`` (two executor threads, so the shuffle and the merge across tasks are real),
two shuffle partitions, UI off (``engine.spark.session``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="the `spark` extra is not installed")

from engine.demo.simulator import preset, render, simulate, write_local
from engine.spark.session import spark_session


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = spark_session("local[2]", app_name="wafsmith-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def simulated_logs(tmp_path_factory) -> Path:
    """Ten simulated minutes (seed 11: a training seed) as ALB, CloudFront and WAF objects."""
    root = tmp_path_factory.mktemp("sim")
    write_local(render(simulate(preset("tiny"), 11)), root / "logs")
    return root / "logs"
