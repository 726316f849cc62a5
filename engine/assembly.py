"""How the running engine's parts are built from settings: the source, the online model
trainer, and the offence history that escalation reads from the ledger.

``engine.runner`` composes these; keeping their construction here keeps the loop readable.
The enforcement side (compiler config, reconciler) is built by ``engine.enforcement``.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.core.clock import Clock
from engine.core.errors import ConfigError
from engine.core.logging import log_event
from engine.decisions import Ledger
from engine.schema.features import SPEC_HASH, SPEC_HASH_KEY
from engine.settings import Settings
from engine.sources import SOURCE_CONFIGS, ProcessedStore, Source


def build_source(settings: Settings, *, clock: Clock, store: ProcessedStore) -> Source:
    """The continuous source that ``settings.source`` names."""
    cfg = settings.source
    aws = {
        "endpoint_url": settings.aws.endpoint_url,
        "region": settings.aws.region,
        "quarantine_prefix": cfg.quarantine_prefix,
    }
    if cfg.kind == "sqs":
        model = SOURCE_CONFIGS["sqs"](
            queue_url=cfg.queue_url,
            wait_time_s=cfg.wait_time_s,
            visibility_timeout_s=cfg.visibility_timeout_s,
            **aws,
        )
    elif cfg.kind == "s3_list":
        model = SOURCE_CONFIGS["s3_list"](bucket=cfg.bucket, prefix=cfg.prefix, **aws)
    else:
        model = SOURCE_CONFIGS["local"](paths=[str(p) for p in cfg.paths])
    return model.build(clock=clock, store=store)


def build_trainer(settings: Settings, *, clock: Clock) -> Any:
    """The configured online trainer of the isolation forest (``module:Class``), or None.

    It is loaded by name so that the engine never imports the ``models`` package; it must
    offer ``observe(X, hostile, event_time)`` and ``maybe_refit() -> Path | None``.
    """
    cfg = settings.model
    if not cfg.enabled:
        return None
    module_name, _, class_name = cfg.trainer.partition(":")
    try:
        trainer_cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model.trainer {cfg.trainer!r} cannot be loaded: {exc}") from None
    return trainer_cls(
        capacity=cfg.capacity,
        min_rows=cfg.min_rows,
        refit_every_s=cfg.refit_every_s,
        directory=model_directory(settings),
        clock=clock,
    )


def model_directory(settings: Settings) -> Path:
    return settings.model.directory or settings.data_dir / "models"


def set_aside_stale_artifact(artifact: Path) -> Path | None:
    """Move the online trainer's own artifact aside when it was built for another feature
    spec (an upgrade changed the features): the engine then starts, scores with the starter
    model and refits from the stream, instead of refusing to start on a file it wrote itself.
    The old files keep their bytes under ``<name>.spec-<hash>``; returns the card's new path,
    or None when there was nothing to set aside. A card that cannot be read is left alone
    (the detector's loader refuses it, naming the file)."""
    card_path = artifact.with_suffix(".json")
    try:
        built_for = json.loads(card_path.read_text(encoding="utf-8")).get(SPEC_HASH_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    if built_for == SPEC_HASH:
        return None
    suffix = f".spec-{built_for}"
    for path in (artifact, card_path):
        if path.exists():
            path.replace(path.with_name(path.name + suffix))
    log_event(
        logging.getLogger("wafsmith.engine"), "model_artifact_set_aside", level=logging.WARNING,
        artifact=str(artifact), built_for_spec=built_for, engine_spec=SPEC_HASH,
    )  # fmt: skip
    return card_path.with_name(card_path.name + suffix)


class LedgerOffences:
    """Offence counts for escalation, from the ledger: one query per evaluation of many
    clients (``prefetch``) rather than one per client."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._counts: dict[str, int] = {}

    def prefetch(self, clients: Iterable[str]) -> None:
        self._counts = self.ledger.offence_counts(clients)

    def offences(self, client: str) -> int:
        found = self._counts.get(client)
        return self.ledger.offence_count(client) if found is None else found
