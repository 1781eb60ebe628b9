"""The rulebook the model tests decide with: the default rules plus one active rule that holds the
payments a promoted model scores at or above a threshold."""

from __future__ import annotations

import shutil
from pathlib import Path

from rules.loader import DEFAULT_RULES_DIR

MODEL_RULE_ID = "model_holds"
MODEL_RULE = """\
groups:
  - name: models
    labels: {{team: risk-models}}
    rules:
      - id: {rule_id}
        description: the promoted model is confident and the amount matters
        severity: high
        action: hold
        on: [payment.released]
        expr: model_score >= {threshold}
        reason: model score {{model_score:.3f}}
        labels: {{typology: model}}
"""


def rulebook_with_model_rule(rules_dir: Path, threshold: float) -> Path:
    """A copy of the default rulebook in `rules_dir` (created) with the model rule at `threshold`."""
    shutil.copytree(DEFAULT_RULES_DIR, rules_dir)
    (rules_dir / "model.rules.yaml").write_text(
        MODEL_RULE.format(rule_id=MODEL_RULE_ID, threshold=threshold), encoding="utf-8"
    )
    return rules_dir
