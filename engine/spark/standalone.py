"""A Spark standalone cluster on 127.0.0.1 from the installed PySpark: a master and workers
as child processes (``spark-class ...Master`` / ``...Worker``), for the cluster test and
``benchmarks/bench_scale.py``. Ports are ephemeral: the master's URL is read from its log.
Production clusters are started by their operators (EMR, a ``spark://`` fleet, YARN).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from types import TracebackType

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
_MASTER_URL = re.compile(r"Starting Spark master at (spark://[\w.]+:\d+)")
_REGISTERED = re.compile(r"Successfully registered with master")


class ClusterError(RuntimeError):
    pass


def spark_home() -> Path:
    import pyspark  # the optional ``spark`` extra

    return Path(pyspark.__file__).parent


class LocalCluster:
    """``with LocalCluster(workdir, workers=2) as c: ... c.master_url ...``"""

    def __init__(
        self,
        workdir: Path,
        *,
        workers: int = 2,
        cores_per_worker: int = 1,
        memory_per_worker: str = "1g",
        start_timeout_s: float = 180.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workers = workers
        self.cores_per_worker = cores_per_worker
        self.memory_per_worker = memory_per_worker
        self.start_timeout_s = start_timeout_s
        self.master_url: str | None = None
        self._procs: list[tuple[subprocess.Popen, Path]] = []

    def _spawn(self, name: str, *args: str) -> Path:
        log = self.workdir / f"{name}.log"
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._procs.append((proc, log))
        return log

    def _wait_for(self, log: Path, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            found = pattern.search(log.read_text(errors="replace"))
            if found:
                return found
            if any(p.poll() is not None for p, _ in self._procs):
                break
            time.sleep(0.5)
        tail = log.read_text(errors="replace")[-2000:]
        raise ClusterError(f"{what} did not start within {self.start_timeout_s:.0f}s:\n{tail}")

    def start(self) -> LocalCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self._spawn("master", MASTER_CLASS, "--host", "127.0.0.1", "--port", "0",
                          "--webui-port", "0")
        self.master_url = self._wait_for(log, _MASTER_URL, "the master").group(1)
        logs = []
        for i in range(self.workers):
            work = self.workdir / f"worker-{i}"
            work.mkdir(exist_ok=True)
            logs.append(
                self._spawn(
                    f"worker-{i}", WORKER_CLASS, self.master_url, "--host", "127.0.0.1",
                    "--cores", str(self.cores_per_worker), "--memory", self.memory_per_worker,
                    "--webui-port", "0", "--work-dir", str(work),
                )
            )
        for i, wlog in enumerate(logs):
            self._wait_for(wlog, _REGISTERED, f"worker {i}")
        return self

    def stop(self) -> None:
        for proc, _ in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
