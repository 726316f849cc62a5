"""Canonical records shared by every stage: requests, decisions, and the desired WAF state.

This package imports nothing from the rest of the project; every other package imports it.
"""
