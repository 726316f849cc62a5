"""The running engine: sources → parsers → features → detectors → ledger → compiler → enforcer.

``loop`` holds ``EngineRunner`` (construction and the ingestion step), ``enforcing`` the
enforcement step and its lease, ``reporting`` the model keeper and the status publisher,
``notices`` what the loop tells people.

``EngineRunner`` is the composition root of ``wafsmith run``. One ``step()`` polls the source,
and for each object: parses it, retains its rows in the request history, folds them into the
analyzer, stores the proposals in the ledger, lets the policy auto-approve what it may, and
only then acknowledges the object (which deletes its SQS message). When new decisions were
approved, when one expires, or every ``enforcement.interval_s``, it compiles the enforceable
decisions and runs one reconciliation cycle. Status records (``engine.status``) go to the
ledger's status store for the API.

Crash safety: the ledger is the truth and WAF its projection (the next cycle converges);
an object is acknowledged only after everything it produced is committed, so a crash
re-delivers it, and re-processing is harmless (history parts are named after the object,
ledger proposals merge). On start the analyzer is warmed from the last hour of history.

Many engines, one enforcer: every engine on a shared ledger ingests, detects and proposes,
but only the holder of the enforcer lease (``engine.decisions.lease``) expires decisions and
reconciles the WAF. The others try to take the lease every ``lease.period_s``; whoever takes
it runs a full cycle first. A lease lost mid-cycle stops the cycle at its next write.
"""

from __future__ import annotations

from engine.runner.loop import WARMUP, EngineRunner, StepReport, default_instance_id

__all__ = ["WARMUP", "EngineRunner", "StepReport", "default_instance_id"]
