"""Shared plumbing: clock, registry, errors, logging, and the one definition of an address
(``netaddr``)."""
