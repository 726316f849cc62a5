"""``Service``: one object over the ledger, compiler and enforcer, assembled from its parts.

Each part is a class of methods over the shared ledger and clock (``base.ServiceBase``):
tokens, decisions, status reading, rule preview and backtest, and the admin's policy and
allowlist. This module only assembles them and builds the default service from settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.decisions import Ledger
from engine.decisions.backtest import Backtester
from engine.decisions.errors import LedgerUnavailable
from engine.decisions.history import RequestHistory
from engine.enforcement import RulePreviewer
from engine.schema.decision import Decision
from engine.service.admin import AdminMethods
from engine.service.errors import Unavailable
from engine.service.preview import RuleMethods
from engine.service.sessions import SessionMethods
from engine.service.status import StatusMethods
from engine.service.tokens import TokenMethods
from engine.settings import Settings
from engine.status import EngineStatus, read


class Service(TokenMethods, SessionMethods, StatusMethods, RuleMethods, AdminMethods):
    """Reads and changes through the ledger; previews rules through compiler and enforcer.

    ``previewer`` compiles the enforceable decisions and, when it can reach AWS, plans a
    dry-run cycle; ``backtester`` answers ``backtest``. Both are injected so tests and the
    full engine choose what runs; ``from_settings`` builds the default ones.
    ``lease_name`` is the enforcer lease the status reports; ``instance_id`` is the engine
    beside this API (``wafsmith run``), so the status says whether it is the leader.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        clock: Clock = SYSTEM_CLOCK,
        previewer: Callable[[list[Decision], list[str]], dict[str, Any]] | None = None,
        backtester: Callable[..., dict[str, Any]] | None = None,
        ledger_url: str = "",
        counts_ttl_s: float = 1.0,
        heartbeat_max_age_s: float | None = None,
        lease_name: str = "enforcer",
        instance_id: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.lease_name = lease_name
        self.instance_id = instance_id
        self.heartbeat_max_age_s = heartbeat_max_age_s
        self.clock = clock
        self._previewer = previewer
        self._counts_ttl_s = counts_ttl_s
        self._counts = None
        self._backtester = backtester
        self.ledger_url = ledger_url

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        beside_engine: bool = False,
        instance_id: str | None = None,
    ) -> Service:
        """A service over the ledger (and AWS, for previews) that ``settings`` name.

        ``beside_engine`` (``wafsmith run``): health also requires the engine's heartbeat,
        its status document, to be younger than ``loop.heartbeat_max_age_s``;
        ``instance_id`` names that engine for the lease status.
        """
        url = settings.resolved_database_url
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        ledger = Ledger.open(url, clock=clock)
        previewer = RulePreviewer.from_settings(settings, clock=clock)
        history = RequestHistory(settings.data_dir / "history", clock=clock)
        return cls(
            ledger,
            clock=clock,
            previewer=previewer,
            backtester=Backtester(history),
            ledger_url=_redact(url),
            heartbeat_max_age_s=settings.loop.heartbeat_max_age_s if beside_engine else None,
            lease_name=settings.lease.name,
            instance_id=instance_id,
        )

    def ping(self) -> None:
        """A round trip to the ledger database (raises if it is unreachable)."""
        try:
            self.ledger.ping()
        except LedgerUnavailable as exc:
            raise Unavailable(str(exc)) from exc

    def check_heartbeat(self) -> bool:
        """Raise Unavailable when the engine's last status is older than the bound.

        False when there is no bound to check (the API runs without the engine loop).
        """
        if self.heartbeat_max_age_s is None:
            return False
        engine = read(self.ledger, EngineStatus)
        age = None if engine is None else self._age_s(engine.updated_at)
        if age is None:
            raise Unavailable("the engine has not reported a heartbeat yet")
        if age > self.heartbeat_max_age_s:
            raise Unavailable(
                f"the engine's last heartbeat is {age:.0f} s old "
                f"(more than {self.heartbeat_max_age_s:g} s)"
            )
        return True


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':')[0]}@{tail}"
