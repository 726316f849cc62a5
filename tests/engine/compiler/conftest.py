"""Fixtures for compiler tests: a fixed ``now`` and a decision factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from engine.schema.decision import Decision
from tests.support.compiler import NOW, make_decision


@pytest.fixture()
def now() -> datetime:
    return NOW


@pytest.fixture()
def decide() -> Callable[..., Decision]:
    return make_decision
