"""One SparkSession configured for wafsmith's jobs.

Executors run the same Python as the driver (``spark.pyspark.python``), Arrow moves the
batches, the UI is off unless asked for, and shuffles use a few partitions (the shuffled data
is partials per client and minute, not requests: small).
"""

from __future__ import annotations

import os
import sys
from typing import Any

DEFAULT_MASTER = "local[*]"


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "wafsmith",
    shuffle_partitions: int = 4,
    conf: dict[str, str] | None = None,
) -> Any:
    """Get or create the session (``master`` ``local[*]`` by default; ``spark://``, ``yarn``
    in production, where ``spark-submit`` usually sets it and ``master`` stays None)."""
    from pyspark.sql import SparkSession  # the optional ``spark`` extra

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the JVM is already up (PYSPARK_GATEWAY_PORT) with its --master.
    if master or not os.environ.get("PYSPARK_GATEWAY_PORT"):
        builder = builder.master(master or DEFAULT_MASTER)
    settings = {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        # Python workers that start slowly on a loaded host must not fail the job (15 s).
        "spark.python.authenticate.socketTimeout": "120s",
    }
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
