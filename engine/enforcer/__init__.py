"""enforcer stage: the only code that mutates AWS (WAFv2 and Shield Advanced).

Public API: ``Reconciler`` (``run_cycle``/``plan``), ``Mode``, ``CycleResult``, ``next_expiry``,
the narrow ``WafV2Api``/``ShieldApi`` protocols with boto3 implementations, the recording
``RecordingShieldFake``, ``FaultInjectingWafV2Api`` and ``CallPolicy`` (pacing and retries).
"""

from engine.enforcer.aws_clients import Boto3ShieldApi, Boto3WafV2Api, ShieldApi, WafV2Api
from engine.enforcer.calls import CallPolicy, EnforcerCallError, InvalidParameterError
from engine.enforcer.cycle import Mode
from engine.enforcer.faults import FaultInjectingWafV2Api, SimulatedCrash
from engine.enforcer.reconciler import CycleResult, Reconciler, next_cycle_at, next_expiry
from engine.enforcer.shield_fake import RecordingShieldFake

__all__ = [
    "Boto3ShieldApi",
    "Boto3WafV2Api",
    "CallPolicy",
    "CycleResult",
    "EnforcerCallError",
    "FaultInjectingWafV2Api",
    "InvalidParameterError",
    "Mode",
    "Reconciler",
    "RecordingShieldFake",
    "ShieldApi",
    "SimulatedCrash",
    "WafV2Api",
    "next_cycle_at",
    "next_expiry",
]
