"""The enforcer lease's vocabulary: who holds it, the fencing token, and the fence check.

Many engine processes may share one ledger; only the holder of the lease reconciles the WAF.
The lease itself lives in the ledger's database (``engine.decisions.lease``); the enforcer
sees only a ``Fence`` to call right before every AWS write, and the ledger only a
``FencingToken`` to check in the transaction that marks decisions applied. Both raise
``LeaseLost`` when this process no longer holds the lease at the token's epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from engine.core.errors import WafsmithError


class LeaseLost(WafsmithError):
    """This process no longer holds the enforcer lease (or holds an older epoch of it):
    it must not write to AWS or mark decisions applied."""


class LeaseUnavailable(WafsmithError):
    """The lease's database could not be asked: nobody is known to hold the lease here, so
    this process does not enforce until a later attempt succeeds."""


@dataclass(frozen=True, slots=True)
class FencingToken:
    """The lease ``name`` and the ``epoch`` this process acquired it at. Each acquisition
    increments the epoch, so a writer with an older epoch is refused."""

    name: str
    epoch: int


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The lease row as stored: who acquired it, at which epoch, when, last renewed when."""

    name: str
    instance_id: str
    epoch: int
    since: datetime
    renewed_at: datetime


class Fence(Protocol):
    """Called right before a guarded write: returns the token, or raises ``LeaseLost``."""

    def check(self) -> FencingToken: ...
