"""Shared plumbing without domain logic: clock, registry, errors."""
