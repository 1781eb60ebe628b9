"""The worker's registered models: read from PAYSENTRY_MODEL_REGISTRY at start, and re-read on the Redis
switch message that `paysentry model promote | rollback | shadow` publish, so every worker switches
together. Every switch (and every refused history) goes to `<data dir>/model-audit.jsonl`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from models.registry import RedisStore
from models.serving import ServedModels, SwitchListener, served_from_environment

if TYPE_CHECKING:
    from stream.settings import StreamSettings

log = logging.getLogger(__name__)


def served_models(settings: StreamSettings) -> ServedModels | None:
    served = served_from_environment(settings.data_dir / "model-audit.jsonl")
    if served is None:
        log.info("no model registry (PAYSENTRY_MODEL_REGISTRY): model_score is None, rules on it never fire")
        return None
    registry = served.registry
    if registry is not None and isinstance(registry.store, RedisStore):
        SwitchListener(registry.store.client, served, registry.channel).start()
    return served
