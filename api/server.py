"""The API and dashboard served by uvicorn on a background thread, beside the engine loop.

``wafsmith run`` and ``wafsmith demo`` serve this way; ``wafsmith serve`` runs uvicorn in the
foreground instead. The caller builds the service (and closes its ledger after ``stop``).
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from api.main import create_app
from engine.service import Service


class ApiThread:
    """uvicorn serving ``create_app(service)`` on ``host:port`` from a daemon thread."""

    def __init__(
        self, service: Service, *, host: str, port: int, options: dict[str, Any] | None = None
    ) -> None:
        """``options``: ``create_app``'s keyword options (``engine.service.app_options``)."""
        self.service = service
        app = create_app(service, **(options or {}))
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="wafsmith-api", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ask uvicorn to exit and wait (up to 10 s) for the thread to finish."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
