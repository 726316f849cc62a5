"""Canonical records shared by every stage: requests, feature frames, verdicts, decisions and
the desired WAF state.

Every other package imports it. It imports only the standard library, numpy, pyarrow and
the address rules every record validates against (``engine.core.netaddr``, itself a leaf).
"""
