"""The facade the API and dashboard call: one object over the ledger, compiler and enforcer.

``api/`` imports this package (and ``engine.schema``) only, so routes never touch SQL, boto3
or models. Every method returns plain records (``Decision``, ``EvidenceSample``, dicts of JSON
values) and raises the named errors below, which the API maps to 4xx replies.

The parts, one concern each: ``errors`` (the named errors), ``tokens`` (API tokens and
identities), ``decisions`` (reads and state moves), ``status`` (what the running engine
published, through the records of ``engine.status``), ``preview`` (rule preview and
backtest), ``admin`` (policy and allowlist); ``facade`` assembles them into ``Service``.
"""

from engine.core.redact import install_redaction
from engine.decisions import AllowlistEntry, AuditEvent, Page, Policy
from engine.enforcement import RulePreviewer
from engine.service.decisions import DecisionDetail
from engine.service.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
)
from engine.service.facade import Service
from engine.service.status import NOT_REPORTED
from engine.service.tokens import Identity
from engine.service.web import app_options, read_secret_file

__all__ = [
    "NOT_REPORTED",
    "AllowlistEntry",
    "AuditEvent",
    "Conflict",
    "DecisionDetail",
    "Identity",
    "IllegalTransition",
    "InvalidInput",
    "NotFound",
    "Page",
    "Policy",
    "RulePreviewer",
    "Service",
    "ServiceError",
    "Unavailable",
    "app_options",
    "install_redaction",
    "read_secret_file",
]
