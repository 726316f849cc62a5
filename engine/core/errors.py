"""Error types shared across stages."""

from __future__ import annotations


class WafsmithError(Exception):
    """Base of every error wafsmith raises on purpose."""


class ConfigError(WafsmithError, ValueError):
    """Configuration that cannot work; the message names the setting."""
